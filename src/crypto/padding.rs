//! Length hiding: the Padmé bucket function and the framing of padded plaintexts.
//!
//! Every padded body (group and direct envelopes) is
//!
//! ```text
//! u32_le(len(plaintext)) ‖ plaintext ‖ 0x00 … 0x00
//! ```
//!
//! encrypted, and the ciphertext including its 16-byte tag is exactly
//! [`padded_body_len`]`(4 + len(plaintext) + 16)` bytes long, or the space left under the
//! envelope limit if that is smaller. The length prefix makes the framing independent of what
//! the plaintext is (the group layer puts a postcard `SignedOp` there, the direct envelope a
//! signed body). The receiver checks, after authentication, that the declared length fits and
//! that every padding byte is zero (as MLS does), so each plaintext has exactly one padded
//! form under a given size.
//!
//! The receiver does not insist that the body length is the bucket the receiver would have
//! chosen: the cap depends on the *sender's* limit, which the receiver does not know. That is
//! not malleability, since the whole body is authenticated.

use zeroize::Zeroizing;

use super::limits::{LENGTH_PREFIX_LEN, MIN_PADDED_BODY, TAG_LEN};
use super::CryptoError;

/// Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication
/// with PURBs", PETS 2019): rounds `len` up so that only the top `O(log log len)` bits of the
/// length remain visible, with at most about 12 % overhead (at most 6.25 % from 256 bytes on).
#[must_use]
pub const fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    // E = floor(log2 len) >= 1; S = floor(log2 E) + 1 = bit length of E <= E.
    let e = usize::BITS - 1 - len.leading_zeros();
    let s = u32::BITS - e.leading_zeros();
    let last_bits = e - s;
    let mask = (1usize << last_bits) - 1;
    match len.checked_add(mask) {
        Some(v) => v & !mask,
        // Only reachable for lengths near usize::MAX, which no envelope limit admits.
        None => len,
    }
}

/// The padded body length (ciphertext plus tag) for an unpadded body of `len` bytes: the
/// Padmé bucket, at least [`MIN_PADDED_BODY`].
#[must_use]
pub const fn padded_body_len(len: usize) -> usize {
    if len < MIN_PADDED_BODY {
        MIN_PADDED_BODY
    } else {
        padme(len)
    }
}

/// Bytes a body needs besides the plaintext: length prefix and tag.
const OVERHEAD: usize = LENGTH_PREFIX_LEN + TAG_LEN;

/// The padded body length (ciphertext plus tag) for `plaintext_len` bytes when at most
/// `max_body` bytes are available.
pub(crate) fn body_len(plaintext_len: usize, max_body: usize) -> Result<usize, CryptoError> {
    let too_large = CryptoError::PlaintextTooLarge {
        len: plaintext_len,
        max: max_body.saturating_sub(OVERHEAD),
    };
    let needed = plaintext_len
        .checked_add(OVERHEAD)
        .ok_or(too_large.clone())?;
    if needed > max_body || plaintext_len > u32::MAX as usize {
        return Err(too_large);
    }
    Ok(padded_body_len(needed).min(max_body))
}

/// Appends `u32_le(len) ‖ plaintext ‖ zeros` so that `body_len - TAG_LEN` bytes are added.
/// `body_len` comes from [`body_len`], so it has room for the prefix and the plaintext.
pub(crate) fn push_framed(out: &mut Vec<u8>, plaintext: &[u8], body_len: usize) {
    let start = out.len();
    // body_len() checked that the length fits in a u32.
    let len = u32::try_from(plaintext.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(plaintext);
    out.resize(start + body_len.saturating_sub(TAG_LEN), 0);
}

/// Removes the framing from an authenticated, decrypted body and returns the plaintext.
///
/// # Errors
///
/// [`CryptoError::PlaintextLengthOutOfRange`] or [`CryptoError::NonZeroPadding`].
pub(crate) fn unframe(mut padded: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let Some((prefix, rest)) = padded.split_first_chunk::<LENGTH_PREFIX_LEN>() else {
        return Err(CryptoError::PlaintextLengthOutOfRange {
            declared: 0,
            available: 0,
        });
    };
    let declared = u32::from_le_bytes(*prefix) as usize;
    let available = rest.len();
    let Some(padding) = rest.get(declared..) else {
        return Err(CryptoError::PlaintextLengthOutOfRange {
            declared,
            available,
        });
    };
    // The padding is authenticated data the sender chose; it is not secret, so an ordinary
    // (early-exit) comparison is fine here.
    if padding.iter().any(|&b| b != 0) {
        return Err(CryptoError::NonZeroPadding);
    }
    padded.copy_within(LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + declared, 0);
    // The bytes past `declared` stay in the allocation until drop, where `Zeroizing` wipes the
    // whole capacity.
    padded.truncate(declared);
    Ok(padded)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn padme_matches_the_paper_examples() {
        // From the PURBs paper: 9 bits of length leak at most O(log log L) bits.
        assert_eq!(padme(0), 0);
        assert_eq!(padme(1), 1);
        assert_eq!(padme(256), 256);
        assert_eq!(padme(257), 272);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(10_000), 10_240);
        assert_eq!(padded_body_len(20), 256);
    }

    #[test]
    fn body_len_caps_at_the_space_available() {
        assert_eq!(body_len(0, 1000).ok(), Some(256));
        // 900 + 20 = 920 -> bucket 928 fits; 970 + 20 -> bucket 992 > 980 -> capped.
        assert_eq!(body_len(900, 1000).ok(), Some(928));
        assert_eq!(body_len(960, 980).ok(), Some(980));
        assert!(matches!(
            body_len(961, 980),
            Err(CryptoError::PlaintextTooLarge { len: 961, max: 960 })
        ));
    }

    #[test]
    fn framing_round_trips_and_rejects_bad_padding() {
        let mut out = Vec::new();
        push_framed(&mut out, b"hello", 256);
        assert_eq!(out.len(), 240);
        let plain = unframe(Zeroizing::new(out.clone())).ok();
        assert_eq!(plain.as_deref().map(Vec::as_slice), Some(&b"hello"[..]));

        let mut bad = out.clone();
        bad[100] = 1;
        assert!(matches!(
            unframe(Zeroizing::new(bad)),
            Err(CryptoError::NonZeroPadding)
        ));

        let mut long = out;
        long[..4].copy_from_slice(&237u32.to_le_bytes());
        assert!(matches!(
            unframe(Zeroizing::new(long)),
            Err(CryptoError::PlaintextLengthOutOfRange {
                declared: 237,
                available: 236
            })
        ));
    }

    proptest! {
        #[test]
        fn bucket_is_at_least_input_and_minimum(len in 0usize..=2 * 1024 * 1024) {
            let b = padded_body_len(len);
            prop_assert!(b >= len);
            prop_assert!(b >= MIN_PADDED_BODY);
        }

        #[test]
        fn bucket_is_monotone(a in 0usize..=2 * 1024 * 1024, d in 0usize..4096) {
            prop_assert!(padded_body_len(a) <= padded_body_len(a + d));
        }

        #[test]
        fn bucket_overhead_is_bounded(len in MIN_PADDED_BODY..=2 * 1024 * 1024) {
            let b = padded_body_len(len);
            // Padmé's worst case is below 12 %; from 256 bytes on it is at most 6.25 %.
            prop_assert!((b - len) * 100 <= len * 12, "len {} bucket {}", len, b);
            prop_assert!((b - len) * 16 <= len, "len {} bucket {}", len, b);
        }

        #[test]
        fn bucket_is_idempotent(len in 0usize..=2 * 1024 * 1024) {
            let b = padded_body_len(len);
            prop_assert_eq!(padded_body_len(b), b);
        }

        #[test]
        fn unframe_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = unframe(Zeroizing::new(bytes));
        }
    }

    #[test]
    fn bucket_is_monotone_exhaustively_up_to_one_mebibyte() {
        let mut prev = 0;
        for len in 0..=1024 * 1024 {
            let b = padded_body_len(len);
            assert!(b >= prev, "not monotone at {len}");
            prev = b;
        }
    }
}
