//! Thin wrappers over XChaCha20-Poly1305 (detached, in place) that map every failure to the
//! crate's errors. Keys are passed by reference and the cipher instance, which holds a copy of
//! the key, zeroizes itself on drop (`chacha20poly1305` implements `ZeroizeOnDrop`).

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};

use super::limits::{NONCE_LEN, TAG_LEN};
use super::CryptoError;

/// Encrypts `buf` in place and returns the tag.
pub(crate) fn encrypt(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; TAG_LEN], CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let tag = cipher
        .encrypt_in_place_detached(&XNonce::from(*nonce), aad, buf)
        // Only fails for buffers beyond 256 GiB, far past MAX_ENVELOPE_CEILING.
        .map_err(|_| CryptoError::PlaintextTooLarge {
            len: buf.len(),
            max: super::MAX_ENVELOPE_CEILING,
        })?;
    Ok(tag.into())
}

/// Verifies the tag and decrypts `buf` in place. On failure `buf` is left as ciphertext and
/// the opaque [`CryptoError::AuthenticationFailed`] is returned.
pub(crate) fn decrypt(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_in_place_detached(&XNonce::from(*nonce), aad, buf, &Tag::from(*tag))
        .map_err(|_| CryptoError::AuthenticationFailed)
}

/// Splits `ciphertext ‖ tag`.
pub(crate) fn split_tag(body: &[u8]) -> Option<(&[u8], &[u8; TAG_LEN])> {
    body.split_last_chunk::<TAG_LEN>()
}
