//! Size limits, each checked before allocation or any cryptographic work (security-design.md
//! §4.9), and the wire constants they are computed from.

use super::CryptoError;

/// Default largest envelope, in bytes: 32 KiB.
///
/// Base64url of 32 KiB plus JSON framing fits one Matrix event, whose limit is 65 536 bytes
/// (security-design.md §4.3, §4.9). Lower it for chat transports with smaller caps.
pub const DEFAULT_MAX_ENVELOPE: usize = 32 * 1024;

/// Largest envelope any configuration may accept: 1 MiB.
///
/// Enough for email attachments; bigger payloads (snapshots, large pastes) are chunked blobs
/// referenced by hash. Also bounds every allocation an envelope can cause.
pub const MAX_ENVELOPE_CEILING: usize = 1024 * 1024;

/// Smallest configurable envelope limit: 1 KiB.
///
/// Must hold the largest group header ([`MAX_GROUP_HEADER_LEN`], 142 bytes) plus the smallest
/// padded body ([`MIN_PADDED_BODY`], 256 bytes), so that every plaintext the padding rule
/// accepts still fits; 1 KiB leaves room for a useful payload.
pub const MIN_MAX_ENVELOPE: usize = 1024;

/// Most epoch ids a group envelope header may name (concurrent epoch heads).
///
/// Bounds the merge-KDF work per envelope; with more heads the sender first issues a merge
/// `KeyUpdate` (security-design.md rule K4).
pub const MAX_HEADER_EPOCHS: usize = 4;

/// Smallest padded body (ciphertext plus tag), in bytes.
///
/// Short messages (a checkbox toggle, a cursor move) all look alike on the wire.
pub const MIN_PADDED_BODY: usize = 256;

/// Length of the Poly1305 tag that ends every ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of an XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of a group envelope's key commitment.
pub const COMMITMENT_LEN: usize = 32;
/// Length of a group tag.
pub const GROUP_TAG_LEN: usize = 16;
/// Length of an epoch id prefix in a group envelope header.
pub const EPOCH_PREFIX_LEN: usize = 16;
/// Length of the plaintext length prefix inside every padded body (u32, little-endian).
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Bytes of a group header before the epoch list: magic, version, suite, kind, group tag,
/// epoch count.
pub(crate) const GROUP_HEADER_FIXED_LEN: usize = 2 + 1 + 1 + 1 + GROUP_TAG_LEN + 1;

/// Length of a group envelope header naming `epochs` epochs.
pub(crate) const fn group_header_len(epochs: usize) -> usize {
    GROUP_HEADER_FIXED_LEN + epochs * EPOCH_PREFIX_LEN + NONCE_LEN + COMMITMENT_LEN
}

/// Largest group envelope header (four epochs): 142 bytes.
pub const MAX_GROUP_HEADER_LEN: usize = group_header_len(MAX_HEADER_EPOCHS);

/// Length of a direct envelope header: magic, version, suite, kind, ephemeral public key,
/// nonce.
pub const DIRECT_HEADER_LEN: usize = 2 + 1 + 1 + 1 + 32 + NONCE_LEN;

// Every configurable limit holds the largest header plus the smallest padded body.
const _: () = assert!(MAX_GROUP_HEADER_LEN + MIN_PADDED_BODY <= MIN_MAX_ENVELOPE);
const _: () = assert!(DIRECT_HEADER_LEN + MIN_PADDED_BODY <= MIN_MAX_ENVELOPE);

/// Envelope size limits in force for one replica.
///
/// Build with [`EnvelopeLimits::default`] (32 KiB) or [`EnvelopeLimits::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeLimits {
    max_envelope: usize,
}

impl EnvelopeLimits {
    /// Limits with the given largest envelope size.
    ///
    /// # Errors
    ///
    /// [`CryptoError::LimitOutOfRange`] unless
    /// `MIN_MAX_ENVELOPE <= max_envelope <= MAX_ENVELOPE_CEILING`.
    pub fn new(max_envelope: usize) -> Result<Self, CryptoError> {
        if !(MIN_MAX_ENVELOPE..=MAX_ENVELOPE_CEILING).contains(&max_envelope) {
            return Err(CryptoError::LimitOutOfRange {
                requested: max_envelope,
                min: MIN_MAX_ENVELOPE,
                max: MAX_ENVELOPE_CEILING,
            });
        }
        Ok(Self { max_envelope })
    }

    /// The largest envelope, in bytes, that is produced or accepted.
    #[must_use]
    pub fn max_envelope(&self) -> usize {
        self.max_envelope
    }

    /// Rejects input longer than the limit, before anything else is looked at.
    pub(crate) fn check_len(&self, len: usize) -> Result<(), CryptoError> {
        if len > self.max_envelope {
            return Err(CryptoError::TooLarge {
                len,
                max: self.max_envelope,
            });
        }
        Ok(())
    }
}

impl Default for EnvelopeLimits {
    fn default() -> Self {
        Self {
            max_envelope: DEFAULT_MAX_ENVELOPE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_range_are_rejected() {
        assert!(EnvelopeLimits::new(MIN_MAX_ENVELOPE - 1).is_err());
        assert!(EnvelopeLimits::new(MAX_ENVELOPE_CEILING + 1).is_err());
        assert!(EnvelopeLimits::new(MAX_ENVELOPE_CEILING).is_ok());
        assert_eq!(EnvelopeLimits::default().max_envelope(), 32 * 1024);
    }

    #[test]
    fn smallest_limit_fits_largest_header_and_smallest_body() {
        assert_eq!(MAX_GROUP_HEADER_LEN, 142);
        assert_eq!(DIRECT_HEADER_LEN, 61);
    }
}
