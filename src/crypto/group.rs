//! The group envelope (security-design.md §4.3): what the transport sees of every group op.
//!
//! ```text
//! offset        len   field
//!  0             2    magic "EC"
//!  2             1    version = 1
//!  3             1    suite = 1 (Ed25519 / X25519 / XChaCha20-Poly1305 / BLAKE3)
//!  4             1    kind: 1 = group (DAG op), 3 = ephemeral (presence, cursors)
//!  5            16    group_tag
//! 21             1    n = number of epochs, 1..=4
//! 22          16·n    epoch id prefixes, strictly increasing
//! 22+16n        24    nonce
//! 46+16n        32    commitment
//! 78+16n         …    ciphertext of u32_le(len) ‖ plaintext ‖ zero padding, then tag[16]
//! ```
//!
//! The header layout is what postcard would write for these fields (one-byte varint for
//! `n <= 4`, fixed arrays raw); the ciphertext runs to the end of the envelope. The AEAD's
//! associated data is the exact received header, bytes `0 .. 78+16n`.
//!
//! * Key: [`GroupKeys`] for exactly the header's epochs.
//! * Nonce (hedged): `BLAKE3_keyed(k_nonce, lp(r) ‖ lp(H(header[..22+16n])) ‖
//!   lp(H(plaintext)))[..24]`, `r` = 32 bytes from the caller's RNG. A repeated RNG state
//!   (VM snapshot, fork) still gives distinct nonces for distinct messages.
//! * Commitment: `BLAKE3_keyed(k_commit, "commit" ‖ nonce)`, compared in constant time before
//!   the AEAD is touched, so an envelope opens under one key only.
//! * Padding: see [`padded_body_len`](super::padded_body_len); the ciphertext plus tag is at
//!   least 256 bytes.
//!
//! Receiving is two steps, so the caller can look up keys in between:
//! [`parse_group_header`] (strict, no allocation, size checked first), then [`open_group`].

use std::fmt;

use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::codec::{read_preamble, Hex, Reader};
use super::epoch::{EpochIdPrefix, EpochList, GroupKeys, GroupTag};
use super::kdf::{self, KEYED_COMMIT};
use super::limits::{
    group_header_len, EnvelopeLimits, COMMITMENT_LEN, GROUP_HEADER_FIXED_LEN, MAX_HEADER_EPOCHS,
    MIN_PADDED_BODY, NONCE_LEN,
};
use super::padding::{body_len, push_framed, unframe};
use super::{aead, CryptoError};

/// Magic of every envelope.
pub const ENVELOPE_MAGIC: [u8; 2] = *b"EC";

/// The kinds of envelope (byte 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EnvelopeKind {
    /// A group envelope carrying a DAG op (kind 1).
    Group,
    /// A direct envelope sealed to one device (kind 2).
    Direct,
    /// A group envelope carrying ephemeral data outside the DAG (kind 3).
    Ephemeral,
}

impl EnvelopeKind {
    /// The kind byte on the wire.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Group => 1,
            Self::Direct => 2,
            Self::Ephemeral => 3,
        }
    }

    fn from_byte(b: u8) -> Result<Self, CryptoError> {
        match b {
            1 => Ok(Self::Group),
            2 => Ok(Self::Direct),
            3 => Ok(Self::Ephemeral),
            found => Err(CryptoError::UnexpectedKind { found }),
        }
    }

    /// Checks size, magic, version and suite, and returns the kind, so a receiver can choose
    /// the decoder.
    ///
    /// # Errors
    ///
    /// [`CryptoError::TooLarge`], [`CryptoError::Truncated`], [`CryptoError::BadMagic`],
    /// [`CryptoError::UnsupportedVersion`], [`CryptoError::UnsupportedSuite`],
    /// [`CryptoError::UnexpectedKind`].
    pub fn peek(bytes: &[u8], limits: &EnvelopeLimits) -> Result<Self, CryptoError> {
        limits.check_len(bytes.len())?;
        let mut r = Reader::new(bytes);
        read_preamble(&mut r, "envelope", ENVELOPE_MAGIC)?;
        Self::from_byte(r.u8("kind")?)
    }
}

/// Which of the two group envelope kinds to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKind {
    /// Kind 1: a DAG op.
    Group,
    /// Kind 3: ephemeral data (presence, cursors), not part of the DAG.
    Ephemeral,
}

impl GroupKind {
    fn envelope_kind(self) -> EnvelopeKind {
        match self {
            Self::Group => EnvelopeKind::Group,
            Self::Ephemeral => EnvelopeKind::Ephemeral,
        }
    }
}

/// The header fields a sender chooses; the epochs come from the [`GroupKeys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupHeaderFields {
    /// Group op or ephemeral data.
    pub kind: GroupKind,
    /// Routing tag: usually [`GroupKeys::epoch_tag`].
    pub group_tag: GroupTag,
}

/// A strictly parsed group envelope header, borrowing the envelope. Public data.
#[derive(Clone, Copy)]
pub struct GroupHeader<'a> {
    kind: GroupKind,
    group_tag: GroupTag,
    epochs: EpochList,
    nonce: [u8; NONCE_LEN],
    commitment: [u8; COMMITMENT_LEN],
    header: &'a [u8],
    body: &'a [u8],
}

impl<'a> GroupHeader<'a> {
    /// Group op or ephemeral data.
    #[must_use]
    pub fn kind(&self) -> GroupKind {
        self.kind
    }

    /// The routing tag.
    #[must_use]
    pub fn group_tag(&self) -> &GroupTag {
        &self.group_tag
    }

    /// The epoch id prefixes (1 to 4, strictly increasing): look up these epochs' roots and
    /// derive [`GroupKeys`] from them.
    #[must_use]
    pub fn epochs(&self) -> &[EpochIdPrefix] {
        self.epochs.as_slice()
    }

    /// The exact header bytes (the associated data).
    #[must_use]
    pub fn header_bytes(&self) -> &'a [u8] {
        self.header
    }

    /// The ciphertext and tag.
    #[must_use]
    pub fn ciphertext(&self) -> &'a [u8] {
        self.body
    }
}

impl fmt::Debug for GroupHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            kind,
            group_tag,
            epochs,
            nonce,
            commitment: _,
            header: _,
            body,
        } = self;
        f.debug_struct("GroupHeader")
            .field("kind", kind)
            .field("group_tag", group_tag)
            .field("epochs", &epochs.as_slice())
            .field("nonce", &Hex(nonce))
            .field("ciphertext_len", &body.len())
            .finish_non_exhaustive()
    }
}

/// Parses a group (or ephemeral) envelope header strictly, without allocating.
///
/// # Errors
///
/// [`CryptoError::TooLarge`] (checked first), then, in wire order:
/// [`CryptoError::Truncated`], [`CryptoError::BadMagic`], [`CryptoError::UnsupportedVersion`],
/// [`CryptoError::UnsupportedSuite`], [`CryptoError::UnexpectedKind`] (anything but 1 or 3),
/// [`CryptoError::EpochCount`], [`CryptoError::EpochsNotSorted`],
/// [`CryptoError::CiphertextTooShort`].
pub fn parse_group_header<'a>(
    bytes: &'a [u8],
    limits: &EnvelopeLimits,
) -> Result<GroupHeader<'a>, CryptoError> {
    limits.check_len(bytes.len())?;
    let mut r = Reader::new(bytes);
    read_preamble(&mut r, "group envelope", ENVELOPE_MAGIC)?;
    let kind = match EnvelopeKind::from_byte(r.u8("kind")?)? {
        EnvelopeKind::Group => GroupKind::Group,
        EnvelopeKind::Ephemeral => GroupKind::Ephemeral,
        other => {
            return Err(CryptoError::UnexpectedKind {
                found: other.to_byte(),
            })
        }
    };
    let group_tag = GroupTag::from_bytes(r.array("group tag")?);
    let n = usize::from(r.u8("epoch count")?);
    if n == 0 || n > MAX_HEADER_EPOCHS {
        return Err(CryptoError::EpochCount {
            found: n,
            max: MAX_HEADER_EPOCHS,
        });
    }
    let mut epochs = EpochList::EMPTY;
    for _ in 0..n {
        let p = EpochIdPrefix::from_bytes(r.array("epoch id prefix")?);
        epochs.push(p).map_err(|()| CryptoError::EpochsNotSorted)?;
    }
    let nonce = r.array::<NONCE_LEN>("nonce")?;
    let commitment = r.array::<COMMITMENT_LEN>("commitment")?;
    let header_len = r.offset();
    let body = r.rest();
    if body.len() < MIN_PADDED_BODY {
        return Err(CryptoError::CiphertextTooShort {
            len: body.len(),
            min: MIN_PADDED_BODY,
        });
    }
    Ok(GroupHeader {
        kind,
        group_tag,
        epochs,
        nonce,
        commitment,
        header: bytes.get(..header_len).unwrap_or_default(),
        body,
    })
}

/// Seals `plaintext` into a group envelope under `keys`.
///
/// `rng` supplies the 32 bytes `r` of the hedged nonce.
///
/// # Errors
///
/// [`CryptoError::PlaintextTooLarge`] if the plaintext does not fit under `limits`.
pub fn seal_group(
    keys: &GroupKeys,
    fields: &GroupHeaderFields,
    plaintext: &[u8],
    limits: &EnvelopeLimits,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CryptoError> {
    let header_len = group_header_len(keys.epochs().len());
    let max_body = limits.max_envelope().saturating_sub(header_len);
    let body_len = body_len(plaintext.len(), max_body)?;
    let mut r = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(r.as_mut());
    seal_with_body(keys, fields, plaintext, &r, header_len + body_len, |out| {
        push_framed(out, plaintext, body_len);
    })
}

/// Builds the header, then lets `write_body` append the padded plaintext, then encrypts it in
/// place. `nonce_plaintext` is what the hedged nonce hashes.
pub(crate) fn seal_with_body(
    keys: &GroupKeys,
    fields: &GroupHeaderFields,
    nonce_plaintext: &[u8],
    r: &[u8; 32],
    total_len: usize,
    write_body: impl FnOnce(&mut Vec<u8>),
) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(total_len);
    out.extend_from_slice(&ENVELOPE_MAGIC);
    out.extend_from_slice(&[
        super::VERSION,
        super::SUITE,
        fields.kind.envelope_kind().to_byte(),
    ]);
    out.extend_from_slice(fields.group_tag.as_bytes());
    let epochs = keys.epochs();
    // GroupKeys holds 1..=MAX_HEADER_EPOCHS epochs, so the count fits in a byte.
    out.push(epochs.len() as u8);
    for p in epochs {
        out.extend_from_slice(p.as_bytes());
    }
    debug_assert_eq!(out.len(), GROUP_HEADER_FIXED_LEN + 16 * epochs.len());
    let header_hash = kdf::hash(&out);
    let plaintext_hash = kdf::hash(nonce_plaintext);
    let full = kdf::keyed_lp(keys.nonce_key(), &[r, &header_hash, &plaintext_hash]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&full[..NONCE_LEN]);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(kdf::keyed(keys.commit_key(), KEYED_COMMIT, &nonce).as_ref());
    let header_len = out.len();
    write_body(&mut out);
    let (aad, body) = out.split_at_mut(header_len);
    let tag = aead::encrypt(keys.aead_key(), &nonce, aad, body)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens a parsed group envelope with the keys for its epochs.
///
/// # Errors
///
/// [`CryptoError::AuthenticationFailed`] (opaque) if the keys are for other epochs, the
/// commitment does not match, or the AEAD fails; then, for an authentic envelope,
/// [`CryptoError::PlaintextLengthOutOfRange`] or [`CryptoError::NonZeroPadding`].
pub fn open_group(
    header: &GroupHeader<'_>,
    keys: &GroupKeys,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if header.epochs() != keys.epochs() {
        return Err(CryptoError::AuthenticationFailed);
    }
    let expected = kdf::keyed(keys.commit_key(), KEYED_COMMIT, &header.nonce);
    if !bool::from(expected.as_slice().ct_eq(&header.commitment)) {
        return Err(CryptoError::AuthenticationFailed);
    }
    let (ct, tag) = aead::split_tag(header.body).ok_or(CryptoError::AuthenticationFailed)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    aead::decrypt(keys.aead_key(), &header.nonce, header.header, &mut buf, tag)?;
    unframe(buf)
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::super::epoch::{EpochRoot, EpochSecret};
    use super::super::limits::TAG_LEN;
    use super::*;

    fn keys() -> GroupKeys {
        let s = EpochSecret::from_bytes(Zeroizing::new([1; 32]));
        let root = EpochRoot::derive(&s, &[2; 32], &[3; 32]);
        match GroupKeys::derive(&[&root]) {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }

    fn fields(keys: &GroupKeys) -> GroupHeaderFields {
        GroupHeaderFields {
            kind: GroupKind::Group,
            group_tag: keys.epoch_tag(),
        }
    }

    #[test]
    fn round_trip_and_minimum_size() {
        let k = keys();
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        let limits = EnvelopeLimits::default();
        let env = seal_group(&k, &fields(&k), b"hi", &limits, &mut rng).unwrap_or_default();
        assert_eq!(env.len(), group_header_len(1) + MIN_PADDED_BODY);
        let h = parse_group_header(&env, &limits);
        let out = h.and_then(|h| open_group(&h, &k)).ok();
        assert_eq!(out.as_deref().map(Vec::as_slice), Some(&b"hi"[..]));
    }

    #[test]
    fn non_zero_padding_is_its_own_error() {
        let k = keys();
        let limits = EnvelopeLimits::default();
        let body = MIN_PADDED_BODY;
        let env = seal_with_body(&k, &fields(&k), b"x", &[0; 32], 0, |out| {
            push_framed(out, b"x", body);
            if let Some(last) = out.last_mut() {
                *last = 7;
            }
        })
        .unwrap_or_default();
        let r = parse_group_header(&env, &limits).and_then(|h| open_group(&h, &k));
        assert!(matches!(r, Err(CryptoError::NonZeroPadding)));

        let env = seal_with_body(&k, &fields(&k), b"x", &[0; 32], 0, |out| {
            let start = out.len();
            push_framed(out, b"x", body);
            out[start..start + 4].copy_from_slice(&1000u32.to_le_bytes());
        })
        .unwrap_or_default();
        let r = parse_group_header(&env, &limits).and_then(|h| open_group(&h, &k));
        assert!(matches!(
            r,
            Err(CryptoError::PlaintextLengthOutOfRange { declared: 1000, available })
                if available == body - TAG_LEN - 4
        ));
    }

    #[test]
    fn largest_plaintext_fills_the_limit_exactly() {
        let k = keys();
        let limits = EnvelopeLimits::default();
        let max = limits.max_envelope() - group_header_len(1) - TAG_LEN - 4;
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        let pt = vec![0xab; max];
        let env = seal_group(&k, &fields(&k), &pt, &limits, &mut rng).unwrap_or_default();
        assert_eq!(env.len(), limits.max_envelope());
        let big = vec![0xab; max + 1];
        assert!(matches!(
            seal_group(&k, &fields(&k), &big, &limits, &mut rng),
            Err(CryptoError::PlaintextTooLarge { .. })
        ));
    }
}
