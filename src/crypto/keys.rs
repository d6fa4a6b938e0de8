//! Device key-agreement keys (X25519), local storage keys and recovery secrets.
//!
//! A device has two unrelated key pairs (security-design.md §4.1): an Ed25519 signing key,
//! owned by the graph layer and passed to this module as an [`ed25519_dalek::SigningKey`]
//! where needed, and the X25519 *KEM key* defined here, which others use to seal epoch secrets
//! and direct envelopes to the device. The KEM key is generated on its own (or derived from a
//! recovery secret under its own label), never converted from the Ed25519 key.

use std::fmt;

use ed25519_dalek::SigningKey;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use super::codec::{read_preamble, Hex, Reader};
use super::kdf::{
    self, KDF_RECOVERY_KEM, KDF_RECOVERY_SIG, KDF_STORAGE_AEAD, KDF_STORAGE_DATA, KDF_STORAGE_NONCE,
};
use super::limits::{NONCE_LEN, TAG_LEN};
use super::{aead, CryptoError};

/// 32 secret bytes on the heap, wiped on drop. The building block of every secret type here:
/// boxing keeps the bytes at one address for their whole life, so moving the owner does not
/// leave copies behind.
pub(crate) struct Secret32(Box<[u8; 32]>);

impl Secret32 {
    pub(crate) fn new(bytes: Zeroizing<[u8; 32]>) -> Self {
        let mut boxed = Box::new([0u8; 32]);
        boxed.copy_from_slice(bytes.as_ref());
        Self(boxed)
    }

    pub(crate) fn random(rng: &mut impl CryptoRngCore) -> Self {
        let mut boxed = Box::new([0u8; 32]);
        rng.fill_bytes(boxed.as_mut());
        Self(boxed)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for Secret32 {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// An X25519 public key of a device (its "KEM key"). Public data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KemPublicKey([u8; 32]);

impl KemPublicKey {
    /// Wraps 32 bytes. No check happens here; [`KemPublicKey::is_low_order`] and the
    /// contributory check of every key agreement reject bad keys where they matter.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `BLAKE3(kem_pub)[..8]`: a short name for the key, carried in sealed secrets and contact
    /// cards so that a device knows which of its KEM keys to use.
    #[must_use]
    pub fn key_id(&self) -> KemKeyId {
        let h = kdf::hash(&self.0);
        let mut id = [0u8; 8];
        id.copy_from_slice(&h[..8]);
        KemKeyId(id)
    }

    /// Whether the key has low order, so that every X25519 agreement with it gives the all-zero
    /// output whatever the other secret is (RFC 7748 §6.1). Such a key is useless and would
    /// make sealing to it fail; contact cards carrying one are rejected.
    #[must_use]
    pub fn is_low_order(&self) -> bool {
        // X25519 clamps every scalar to a multiple of the cofactor 8, so multiplying a point
        // whose order divides 8 by any scalar gives the identity (all-zero u-coordinate). The
        // scalar below is public and arbitrary; only the result's zero-ness matters.
        x25519_dalek::x25519([0x5a; 32], self.0) == [0u8; 32]
    }
}

impl fmt::Debug for KemPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KemPublicKey").field(&Hex(&self.0)).finish()
    }
}

/// The first 8 bytes of BLAKE3 of a [`KemPublicKey`]. Public data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KemKeyId([u8; 8]);

impl KemKeyId {
    /// Wraps 8 bytes read from the wire.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    /// The 8 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Debug for KemKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KemKeyId").field(&Hex(&self.0)).finish()
    }
}

/// A device's X25519 static secret (security-design.md §4.1, `kem`).
///
/// Secret: boxed, wiped on drop, never printed, not `Clone`, not `Serialize`. The only
/// persisted form is [`DeviceKemSecret::to_encrypted`] under a caller-held [`StorageKey`].
pub struct DeviceKemSecret {
    secret: Box<StaticSecret>,
    public: KemPublicKey,
}

/// Magic of an encrypted KEM secret ("encrypted key").
pub const STORAGE_MAGIC: [u8; 2] = *b"EK";
/// Storage blob kind: an X25519 device KEM secret.
pub const STORAGE_KIND_KEM: u8 = 1;
/// Storage blob kind: caller data sealed with [`StorageKey::seal`].
pub const STORAGE_KIND_DATA: u8 = 2;
/// Bytes [`StorageKey::seal`] adds to the plaintext: magic 2, version 1, suite 1, kind 1,
/// nonce 24, tag 16.
pub const STORAGE_DATA_OVERHEAD: usize = 2 + 1 + 1 + 1 + NONCE_LEN + TAG_LEN;
/// Length of [`DeviceKemSecret::to_encrypted`] output: magic 2, version 1, suite 1, kind 1,
/// key id 8, nonce 24, ciphertext 32, tag 16.
pub const ENCRYPTED_KEM_SECRET_LEN: usize = 2 + 1 + 1 + 1 + 8 + NONCE_LEN + 32 + TAG_LEN;
/// Bytes of the storage blob before the nonce (its associated data ends after the nonce).
const STORAGE_PREFIX_LEN: usize = 2 + 1 + 1 + 1 + 8;

impl DeviceKemSecret {
    /// A fresh KEM key from the caller's RNG.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self::from_static(StaticSecret::random_from_rng(rng))
    }

    /// Builds the key from secret bytes (recovery derivation, storage import).
    pub(crate) fn from_secret_bytes(bytes: &Zeroizing<[u8; 32]>) -> Self {
        Self::from_static(StaticSecret::from(**bytes))
    }

    /// The secret bytes, for the replica's store (which keeps them only sealed under the
    /// application's storage key).
    pub(crate) fn to_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    fn from_static(secret: StaticSecret) -> Self {
        let secret = Box::new(secret);
        let public = KemPublicKey(PublicKey::from(secret.as_ref()).to_bytes());
        Self { secret, public }
    }

    /// The public half, to publish in a contact card or a `DeviceKeyUpdate` op.
    #[must_use]
    pub fn public_key(&self) -> &KemPublicKey {
        &self.public
    }

    /// The key id of the public half.
    #[must_use]
    pub fn key_id(&self) -> KemKeyId {
        self.public.key_id()
    }

    /// X25519 with a peer's public key, rejecting non-contributory results.
    pub(crate) fn agree(&self, their: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*their));
        if !shared.was_contributory() {
            return Err(CryptoError::NonContributory);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }

    /// Encrypts the secret under `key` for local storage (SIV-style deterministic key wrap).
    ///
    /// Layout ([`ENCRYPTED_KEM_SECRET_LEN`] bytes): `"EK" | version | suite | kind=1 |
    /// kem_key_id[8] | nonce[24] | XChaCha20-Poly1305(secret)[32] | tag[16]`, associated data =
    /// everything up to and including the nonce. The nonce is
    /// `BLAKE3_keyed(k_nonce, lp(prefix) ‖ lp(secret))[..24]`, a PRF of the wrapped secret, so
    /// no RNG is needed and distinct secrets get distinct nonces; wrapping the same secret
    /// twice gives the same bytes, which reveals only that.
    #[must_use]
    pub fn to_encrypted(&self, key: &StorageKey) -> Vec<u8> {
        let secret = Zeroizing::new(self.secret.to_bytes());
        let k_aead = kdf::derive(KDF_STORAGE_AEAD, key.0.as_bytes());
        let k_nonce = kdf::derive(KDF_STORAGE_NONCE, key.0.as_bytes());

        let mut out = Vec::with_capacity(ENCRYPTED_KEM_SECRET_LEN);
        out.extend_from_slice(&STORAGE_MAGIC);
        out.extend_from_slice(&[super::VERSION, super::SUITE, STORAGE_KIND_KEM]);
        out.extend_from_slice(self.key_id().as_bytes());
        let full = kdf::keyed_lp(&k_nonce, &[&out, secret.as_ref()]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&full[..NONCE_LEN]);
        out.extend_from_slice(&nonce);
        let aad_len = out.len();
        out.extend_from_slice(secret.as_ref());
        let (aad, body) = out.split_at_mut(aad_len);
        match aead::encrypt(&k_aead, &nonce, aad, body) {
            Ok(tag) => out.extend_from_slice(&tag),
            // A 32-byte buffer cannot exceed the AEAD's length limit; never leave the
            // plaintext in the output if that invariant were broken.
            Err(_) => out.zeroize(),
        }
        out
    }

    /// Decrypts a secret stored with [`DeviceKemSecret::to_encrypted`].
    ///
    /// # Errors
    ///
    /// Decoding errors for malformed input, [`CryptoError::AuthenticationFailed`] for a wrong
    /// key or tampered bytes, [`CryptoError::KemKeyIdMismatch`] if the authentic blob names
    /// another key id than the secret inside it.
    pub fn from_encrypted(bytes: &[u8], key: &StorageKey) -> Result<Self, CryptoError> {
        if bytes.len() > ENCRYPTED_KEM_SECRET_LEN {
            return Err(CryptoError::TrailingData {
                what: "encrypted KEM secret",
                extra: bytes.len() - ENCRYPTED_KEM_SECRET_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        read_preamble(&mut r, "encrypted KEM secret", STORAGE_MAGIC)?;
        let kind = r.u8("kind")?;
        if kind != STORAGE_KIND_KEM {
            return Err(CryptoError::UnexpectedKind { found: kind });
        }
        let key_id = KemKeyId(r.array::<8>("kem key id")?);
        let nonce = r.array::<NONCE_LEN>("nonce")?;
        let ct = r.array::<32>("ciphertext")?;
        let tag = r.array::<TAG_LEN>("tag")?;
        r.finish("encrypted KEM secret")?;
        let aad = bytes
            .get(..STORAGE_PREFIX_LEN + NONCE_LEN)
            .ok_or(CryptoError::AuthenticationFailed)?;

        let k_aead = kdf::derive(KDF_STORAGE_AEAD, key.0.as_bytes());
        let mut secret = Zeroizing::new(ct);
        aead::decrypt(&k_aead, &nonce, aad, secret.as_mut(), &tag)?;
        let out = Self::from_secret_bytes(&secret);
        if out.key_id() != key_id {
            return Err(CryptoError::KemKeyIdMismatch {
                expected: out.key_id().0,
                found: key_id.0,
            });
        }
        Ok(out)
    }
}

impl fmt::Debug for DeviceKemSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { secret: _, public } = self;
        f.debug_struct("DeviceKemSecret")
            .field("key_id", &public.key_id())
            .finish_non_exhaustive()
    }
}

/// A key that wraps secrets for local storage, held by the application (OS keychain, a
/// passphrase KDF, a hardware token). Secret: boxed, wiped on drop, never printed.
pub struct StorageKey(Secret32);

impl StorageKey {
    /// Takes ownership of 32 key bytes (the caller should wipe its own copies).
    #[must_use]
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(Secret32::new(bytes))
    }

    /// A fresh random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(Secret32::random(rng))
    }
}

impl StorageKey {
    /// Encrypts `plaintext` for local storage, bound to `context` (the caller's name for what
    /// and whose it is, e.g. a label and a device id; the same `context` is needed to open).
    ///
    /// Layout: `"EK" | version | suite | kind=2 | nonce[24] | XChaCha20-Poly1305(plaintext) |
    /// tag[16]` under `derive_key(KDF_STORAGE_DATA, storage_key)`, with associated data =
    /// everything before the ciphertext followed by `context`. The nonce is random: the same
    /// key seals many records, so it must not repeat (24 bytes make collisions negligible).
    ///
    /// # Errors
    ///
    /// [`CryptoError::PlaintextTooLarge`] only past the AEAD's limit (256 GiB).
    pub fn seal(
        &self,
        context: &[u8],
        plaintext: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CryptoError> {
        let k = kdf::derive(KDF_STORAGE_DATA, self.0.as_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(plaintext.len() + STORAGE_DATA_OVERHEAD);
        out.extend_from_slice(&STORAGE_MAGIC);
        out.extend_from_slice(&[super::VERSION, super::SUITE, STORAGE_KIND_DATA]);
        out.extend_from_slice(&nonce);
        let mut aad = Vec::with_capacity(out.len() + context.len());
        aad.extend_from_slice(&out);
        aad.extend_from_slice(context);
        let start = out.len();
        out.extend_from_slice(plaintext);
        match aead::encrypt(&k, &nonce, &aad, &mut out[start..]) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(out)
            }
            Err(e) => {
                out.zeroize();
                Err(e)
            }
        }
    }

    /// Decrypts what [`StorageKey::seal`] made with the same key and `context`.
    ///
    /// # Errors
    ///
    /// Decoding errors for malformed input (too short, wrong magic, version, suite or kind),
    /// [`CryptoError::AuthenticationFailed`] for a wrong key, a wrong context or tampered
    /// bytes.
    pub fn open(&self, context: &[u8], bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let mut r = Reader::new(bytes);
        read_preamble(&mut r, "sealed storage data", STORAGE_MAGIC)?;
        let kind = r.u8("kind")?;
        if kind != STORAGE_KIND_DATA {
            return Err(CryptoError::UnexpectedKind { found: kind });
        }
        let nonce = r.array::<NONCE_LEN>("nonce")?;
        let prefix_len = STORAGE_DATA_OVERHEAD - TAG_LEN;
        let (head, body) = bytes
            .split_at_checked(prefix_len)
            .ok_or(CryptoError::AuthenticationFailed)?;
        let (ct, tag) = aead::split_tag(body).ok_or(CryptoError::AuthenticationFailed)?;
        let mut aad = Vec::with_capacity(head.len() + context.len());
        aad.extend_from_slice(head);
        aad.extend_from_slice(context);
        let k = kdf::derive(KDF_STORAGE_DATA, self.0.as_bytes());
        let mut out = Zeroizing::new(ct.to_vec());
        aead::decrypt(&k, &nonce, &aad, &mut out, tag)?;
        Ok(out)
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(_) = self;
        f.debug_struct("StorageKey").finish_non_exhaustive()
    }
}

/// A 256-bit recovery secret (security-design.md §4.1): deterministically derives a *recovery
/// device* (Ed25519 signing key and X25519 KEM key under independent labels) that is added to
/// groups as a normal member. Secret: boxed, wiped on drop, never printed.
pub struct RecoverySecret(Secret32);

impl RecoverySecret {
    /// A fresh random recovery secret.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(Secret32::random(rng))
    }

    /// Takes ownership of 32 secret bytes (for instance decoded from recovery words).
    #[must_use]
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(Secret32::new(bytes))
    }

    /// A copy of the secret bytes, to show to the user. The copy is wiped when the returned
    /// value drops; anything the caller copies out of it is not.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.0.as_bytes())
    }

    /// The recovery device's Ed25519 signing key:
    /// `derive_key(KDF_RECOVERY_SIG, secret)` used as the Ed25519 seed.
    #[must_use]
    pub fn signing_key(&self) -> SigningKey {
        let seed = kdf::derive(KDF_RECOVERY_SIG, self.0.as_bytes());
        SigningKey::from_bytes(&seed)
    }

    /// The recovery device's X25519 KEM key: `derive_key(KDF_RECOVERY_KEM, secret)`.
    #[must_use]
    pub fn kem_secret(&self) -> DeviceKemSecret {
        let seed = kdf::derive(KDF_RECOVERY_KEM, self.0.as_bytes());
        DeviceKemSecret::from_secret_bytes(&seed)
    }
}

impl fmt::Debug for RecoverySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(_) = self;
        f.debug_struct("RecoverySecret").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    /// `StorageKey::open` on data read back from disk: a round trip opens; every truncation,
    /// an extension, every single-bit flip, another context, another key and an oversized
    /// input are typed errors (opening is pure: nothing else to change).
    #[test]
    fn sealed_storage_data_refuses_damage_with_typed_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let key = StorageKey::generate(&mut rng);
        let sealed = key.seal(b"ctx", b"sealed at rest", &mut rng).unwrap();
        assert_eq!(sealed.len(), 14 + STORAGE_DATA_OVERHEAD);
        assert_eq!(&key.open(b"ctx", &sealed).unwrap()[..], b"sealed at rest");
        for len in 0..sealed.len() {
            let e = key.open(b"ctx", &sealed[..len]).unwrap_err();
            assert!(
                matches!(
                    e,
                    CryptoError::Truncated { .. } | CryptoError::AuthenticationFailed
                ),
                "cut to {len}: {e:?}"
            );
        }
        let extended = [&sealed[..], &[0]].concat();
        assert!(matches!(
            key.open(b"ctx", &extended),
            Err(CryptoError::AuthenticationFailed)
        ));
        for bit in 0..sealed.len() * 8 {
            let mut b = sealed.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let e = key.open(b"ctx", &b).unwrap_err();
            let expected = match bit / 8 {
                0 | 1 => matches!(e, CryptoError::BadMagic { .. }),
                2 => matches!(e, CryptoError::UnsupportedVersion { .. }),
                3 => matches!(e, CryptoError::UnsupportedSuite { .. }),
                4 => matches!(e, CryptoError::UnexpectedKind { .. }),
                _ => matches!(e, CryptoError::AuthenticationFailed),
            };
            assert!(expected, "bit {bit}: {e:?}");
        }
        assert!(matches!(
            key.open(b"other", &sealed),
            Err(CryptoError::AuthenticationFailed)
        ));
        let other = StorageKey::generate(&mut rng);
        assert!(matches!(
            other.open(b"ctx", &sealed),
            Err(CryptoError::AuthenticationFailed)
        ));
        let mut huge = sealed[..STORAGE_DATA_OVERHEAD - TAG_LEN].to_vec();
        huge.resize(4 * 1024 * 1024, 0xa5);
        assert!(matches!(
            key.open(b"ctx", &huge),
            Err(CryptoError::AuthenticationFailed)
        ));
    }

    #[test]
    fn low_order_points_are_detected() {
        // u = 0 and u = 1 are low-order points (both on libsodium's blocklist); a generated
        // key is not.
        let zero = KemPublicKey::from_bytes([0; 32]);
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(zero.is_low_order());
        assert!(KemPublicKey::from_bytes(one).is_low_order());
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        assert!(!DeviceKemSecret::generate(&mut rng)
            .public_key()
            .is_low_order());
    }

    #[test]
    fn storage_round_trip_and_wrong_key() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let kem = DeviceKemSecret::generate(&mut rng);
        let key = StorageKey::generate(&mut rng);
        let blob = kem.to_encrypted(&key);
        assert_eq!(blob.len(), ENCRYPTED_KEM_SECRET_LEN);
        let back = DeviceKemSecret::from_encrypted(&blob, &key).ok();
        assert_eq!(back.map(|k| k.public), Some(kem.public));
        let other = StorageKey::generate(&mut rng);
        assert!(matches!(
            DeviceKemSecret::from_encrypted(&blob, &other),
            Err(CryptoError::AuthenticationFailed)
        ));
    }
}
