//! The crypto layer's error type.

use thiserror::Error;

/// Why a crypto operation or a decoder rejected its input.
///
/// Three families, kept apart on purpose:
///
/// * **Malformed input** (most variants): the bytes do not follow the wire format. These are
///   detected before any secret key is touched and say exactly what was wrong.
/// * **[`AuthenticationFailed`](CryptoError::AuthenticationFailed)**: the one opaque variant
///   for every failed key commitment and every failed AEAD tag. It never says which check
///   failed, because that would tell an attacker which key or which byte it got wrong.
/// * **Authenticated but unacceptable content** (non-zero padding, a direct message for
///   somebody else, a bad signature): only a holder of the key can produce these, so the
///   group layer may treat them as evidence against a member.
///
/// Caller mistakes that never depend on untrusted bytes (a bad limit, a bad epoch head set)
/// have their own variants too.
#[derive(Debug, Error, Clone)]
#[non_exhaustive]
pub enum CryptoError {
    /// The input is longer than the limit, checked before anything else.
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The input ended before a field could be read.
    #[error("input truncated: {what} needs {needed} bytes at offset {offset}, {available} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// Bytes were left over after a fixed-layout structure.
    #[error("{extra} trailing bytes after a complete {what}")]
    TrailingData {
        /// The structure that was complete.
        what: &'static str,
        /// Number of bytes left over.
        extra: usize,
    },
    /// The first two bytes are not the expected magic.
    #[error("bad magic: expected {expected:02x?}, found {found:02x?}")]
    BadMagic {
        /// The magic of this structure.
        expected: [u8; 2],
        /// The bytes found.
        found: [u8; 2],
    },
    /// Unknown format version.
    #[error("unsupported version of {what}: expected {expected}, found {found}")]
    UnsupportedVersion {
        /// The structure whose version is wrong.
        what: &'static str,
        /// The version this library speaks.
        expected: u8,
        /// The version found.
        found: u8,
    },
    /// Unknown cipher suite.
    #[error("unsupported cipher suite: expected {expected}, found {found}")]
    UnsupportedSuite {
        /// The suite this library speaks.
        expected: u8,
        /// The suite found.
        found: u8,
    },
    /// An envelope kind byte that is unknown, or not the kind this decoder handles.
    #[error("unexpected envelope kind {found}")]
    UnexpectedKind {
        /// The kind byte found.
        found: u8,
    },
    /// A group envelope header names no epoch or more than
    /// [`MAX_HEADER_EPOCHS`](super::MAX_HEADER_EPOCHS).
    #[error("group envelope names {found} epochs, expected 1..={max}")]
    EpochCount {
        /// Number of epochs in the header.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// The epoch id prefixes of a header are not strictly increasing.
    #[error("epoch ids in the header are not sorted and unique")]
    EpochsNotSorted,
    /// The ciphertext is shorter than the smallest padded body.
    #[error("ciphertext of {len} bytes is shorter than the minimum of {min}")]
    CiphertextTooShort {
        /// Length of the ciphertext including its tag.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// A flag byte that must be 0 or 1 was neither.
    #[error("invalid flag {value} for {what}")]
    InvalidFlag {
        /// The field.
        what: &'static str,
        /// The byte found.
        value: u8,
    },
    /// Opaque: a key commitment or an AEAD tag did not verify.
    ///
    /// Either the bytes were corrupted or forged, or the wrong key (wrong epoch, wrong group,
    /// wrong device) was used. Deliberately says no more.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// After authentication, the padding after the plaintext was not all zero.
    #[error("non-zero padding after an authenticated plaintext")]
    NonZeroPadding,
    /// After authentication, the embedded plaintext length does not fit the padded body.
    #[error("declared plaintext length {declared} exceeds the {available} bytes available")]
    PlaintextLengthOutOfRange {
        /// The declared length.
        declared: usize,
        /// Bytes available after the length prefix.
        available: usize,
    },
    /// The plaintext does not fit into an envelope under the current limit.
    #[error("plaintext of {len} bytes does not fit; at most {max} bytes fit this envelope")]
    PlaintextTooLarge {
        /// Plaintext length.
        len: usize,
        /// Largest plaintext that fits.
        max: usize,
    },
    /// An X25519 exchange gave the all-zero output: the peer's public key is of low order.
    #[error("non-contributory X25519 key agreement (low-order public key)")]
    NonContributory,
    /// A KEM public key of low order (it would make every key agreement non-contributory).
    #[error("X25519 public key is of low order")]
    LowOrderKemKey,
    /// An Ed25519 verifying key that does not decode or is of small order.
    #[error("invalid Ed25519 verifying key")]
    InvalidVerifyingKey,
    /// An Ed25519 signature that does not verify under `verify_strict`.
    #[error("invalid signature")]
    InvalidSignature,
    /// A KEM key id that does not match the key it names or the key used to open.
    #[error("KEM key id mismatch: expected {expected:02x?}, found {found:02x?}")]
    KemKeyIdMismatch {
        /// The key id of the key at hand.
        expected: [u8; 8],
        /// The key id in the input.
        found: [u8; 8],
    },
    /// An authentic direct message names another recipient device than the opener.
    #[error("direct message is addressed to another device")]
    RecipientMismatch,
    /// A limit outside the supported range (caller mistake).
    #[error("limit {requested} outside the supported range {min}..={max}")]
    LimitOutOfRange {
        /// The requested value.
        requested: usize,
        /// Smallest supported value.
        min: usize,
        /// Largest supported value.
        max: usize,
    },
    /// Group keys asked for zero or too many epoch heads (caller mistake).
    #[error("{found} epoch heads given, expected 1..={max}")]
    EpochHeadCount {
        /// Number of heads given.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// Group keys asked for two heads with the same epoch id prefix (caller mistake).
    #[error("two epoch heads share the same epoch id prefix")]
    DuplicateEpoch,
}
