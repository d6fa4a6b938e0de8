//! Contact cards: what another member needs to add a device (security-design.md §4.1).
//!
//! ```text
//! offset len  field
//!  0      2   magic "CC"
//!  2      1   version = 1
//!  3      1   suite = 1
//!  4     32   device Ed25519 verifying key (= DeviceId)
//! 36     32   X25519 KEM public key
//! 68      8   kem_key_id = BLAKE3(kem_pub)[..8]
//! 76      1   expiry flag: 0 = none, 1 = present
//! 77      8   expiry, u64 little-endian (only if the flag is 1)
//!  …     64   Ed25519 signature over SIG_CONTACT_CARD ‖ all preceding bytes
//! ```
//!
//! 141 bytes without expiry, 149 with. The expiry is an opaque number the application
//! interprets (a Unix time, a counter): the library has no clock. Decoding is strict: exact
//! length, known flag values, a key id that matches the key, a KEM key of full order, a
//! verifying key of full order, and `verify_strict`.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::codec::{read_preamble, Reader};
use super::kdf::SIG_CONTACT_CARD;
use super::keys::{DeviceKemSecret, KemKeyId, KemPublicKey};
use super::CryptoError;

/// Magic of a contact card.
pub const CARD_MAGIC: [u8; 2] = *b"CC";
/// Longest contact card (with expiry).
pub const MAX_CARD_LEN: usize = 2 + 1 + 1 + 32 + 32 + 8 + 1 + 8 + 64;

/// The content of a contact card before signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactCard {
    /// The device's current KEM public key.
    pub kem_public: KemPublicKey,
    /// Optional expiry, interpreted by the application.
    pub expiry: Option<u64>,
}

impl ContactCard {
    /// Signs the card with the device's Ed25519 key, which becomes the card's device key.
    #[must_use]
    pub fn sign(&self, device: &SigningKey) -> VerifiedContactCard {
        let device_key = device.verifying_key();
        let kem_key_id = self.kem_public.key_id();
        let mut bytes = Vec::with_capacity(MAX_CARD_LEN);
        bytes.extend_from_slice(&CARD_MAGIC);
        bytes.extend_from_slice(&[super::VERSION, super::SUITE]);
        bytes.extend_from_slice(device_key.as_bytes());
        bytes.extend_from_slice(self.kem_public.as_bytes());
        bytes.extend_from_slice(kem_key_id.as_bytes());
        match self.expiry {
            None => bytes.push(0),
            Some(t) => {
                bytes.push(1);
                bytes.extend_from_slice(&t.to_le_bytes());
            }
        }
        let sig = device.sign(&signed_message(&bytes));
        bytes.extend_from_slice(&sig.to_bytes());
        VerifiedContactCard {
            device_key,
            card: *self,
            kem_key_id,
            bytes,
        }
    }

    /// Decodes and verifies a card received from anyone.
    ///
    /// # Errors
    ///
    /// A decoding error for malformed bytes; [`CryptoError::KemKeyIdMismatch`],
    /// [`CryptoError::LowOrderKemKey`], [`CryptoError::InvalidVerifyingKey`] or
    /// [`CryptoError::InvalidSignature`] for a well-formed card that must not be used.
    pub fn verify(bytes: &[u8]) -> Result<VerifiedContactCard, CryptoError> {
        if bytes.len() > MAX_CARD_LEN {
            return Err(CryptoError::TooLarge {
                len: bytes.len(),
                max: MAX_CARD_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        read_preamble(&mut r, "contact card", CARD_MAGIC)?;
        let device = r.array::<32>("device key")?;
        let kem_public = KemPublicKey::from_bytes(r.array::<32>("kem public key")?);
        let kem_key_id = KemKeyId::from_bytes(r.array::<8>("kem key id")?);
        let expiry = match r.u8("expiry flag")? {
            0 => None,
            1 => Some(u64::from_le_bytes(r.array::<8>("expiry")?)),
            value => {
                return Err(CryptoError::InvalidFlag {
                    what: "expiry",
                    value,
                })
            }
        };
        let body_len = r.offset();
        let sig = Signature::from_bytes(&r.array::<64>("signature")?);
        r.finish("contact card")?;

        if kem_public.key_id() != kem_key_id {
            return Err(CryptoError::KemKeyIdMismatch {
                expected: *kem_public.key_id().as_bytes(),
                found: *kem_key_id.as_bytes(),
            });
        }
        if kem_public.is_low_order() {
            return Err(CryptoError::LowOrderKemKey);
        }
        let device_key =
            VerifyingKey::from_bytes(&device).map_err(|_| CryptoError::InvalidVerifyingKey)?;
        if device_key.is_weak() {
            return Err(CryptoError::InvalidVerifyingKey);
        }
        let body = bytes.get(..body_len).unwrap_or_default();
        device_key
            .verify_strict(&signed_message(body), &sig)
            .map_err(|_| CryptoError::InvalidSignature)?;
        Ok(VerifiedContactCard {
            device_key,
            card: ContactCard { kem_public, expiry },
            kem_key_id,
            bytes: bytes.to_vec(),
        })
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIG_CONTACT_CARD.len() + body.len());
    m.extend_from_slice(SIG_CONTACT_CARD);
    m.extend_from_slice(body);
    m
}

/// A contact card whose signature and fields were checked, or that this device signed.
/// Only [`ContactCard::sign`] and [`ContactCard::verify`] make one.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedContactCard {
    device_key: VerifyingKey,
    card: ContactCard,
    kem_key_id: KemKeyId,
    bytes: Vec<u8>,
}

impl VerifiedContactCard {
    /// The device's Ed25519 verifying key (its `DeviceId`).
    #[must_use]
    pub fn device_key(&self) -> &VerifyingKey {
        &self.device_key
    }

    /// The device's KEM public key.
    #[must_use]
    pub fn kem_public(&self) -> &KemPublicKey {
        &self.card.kem_public
    }

    /// The KEM key id.
    #[must_use]
    pub fn kem_key_id(&self) -> &KemKeyId {
        &self.kem_key_id
    }

    /// The expiry, for the application to interpret.
    #[must_use]
    pub fn expiry(&self) -> Option<u64> {
        self.card.expiry
    }

    /// The exact signed bytes, to send or store.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for VerifiedContactCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            device_key,
            card,
            kem_key_id,
            bytes: _,
        } = self;
        f.debug_struct("VerifiedContactCard")
            .field("device_key", &super::codec::Hex(device_key.as_bytes()))
            .field("kem_key_id", kem_key_id)
            .field("expiry", &card.expiry)
            .finish_non_exhaustive()
    }
}

impl DeviceKemSecret {
    /// Signs a contact card for this KEM key with the device's signing key.
    #[must_use]
    pub fn contact_card(&self, device: &SigningKey, expiry: Option<u64>) -> VerifiedContactCard {
        ContactCard {
            kem_public: *self.public_key(),
            expiry,
        }
        .sign(device)
    }
}
