//! Sealing an epoch secret to one device's KEM key (security-design.md §4.4; the
//! `SealedSecret`s of a `KeyUpdate`).
//!
//! ```text
//! eph      = fresh X25519 ephemeral (from the caller's RNG), consumed by the exchange
//! ss       = X25519(eph, kem_pub(d))                 -- rejected unless contributory
//! ctx      = lp(group) ‖ lp(author) ‖ lp(salt) ‖ lp(u16_le(index)) ‖ lp(device d) ‖ lp(kem_key_id)
//! k_seal   = derive_key(KDF_SEAL, lp(ss) ‖ lp(eph_pub) ‖ lp(kem_pub) ‖ lp(ctx))
//! ct       = XChaCha20-Poly1305(k_seal, nonce = 0^24, aad = ctx, s)   -- 32 + 16 bytes
//! ```
//!
//! The nonce is the all-zero constant because `k_seal` is single-use: it depends on a fresh
//! ephemeral key, so no two encryptions ever share it (as in HPKE single-shot mode). The
//! context names everything about the epoch-creating op that is known before the op is hashed
//! (its group, author and fresh salt; the op hash itself cannot be included because the sealed
//! boxes are inside the op), plus the recipient's position, device and key id. Binding to the
//! op hash happens one step later, in the epoch root (rule K1).

use std::fmt;

use rand_core::CryptoRngCore;
use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

use super::codec::{Hex, Reader};
use super::epoch::EpochSecret;
use super::kdf::{self, KDF_SEAL};
use super::keys::{DeviceKemSecret, KemKeyId, KemPublicKey, Secret32};
use super::limits::{NONCE_LEN, TAG_LEN};
use super::{aead, CryptoError};

/// Length of a sealed secret's ciphertext: the 32-byte secret and the 16-byte tag.
pub const SEALED_CT_LEN: usize = 32 + TAG_LEN;
/// Encoded length of a [`SealedSecret`]: index 2, key id 8, ephemeral key 32, ciphertext 48.
pub const SEALED_SECRET_LEN: usize = 2 + 8 + 32 + SEALED_CT_LEN;

/// The fixed nonce of single-use sealing keys.
const ZERO_NONCE: [u8; NONCE_LEN] = [0; NONCE_LEN];

/// What a sealed secret is bound to, besides the recipient: fields of the epoch-creating op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealContext {
    /// The group id (the graph layer's `GroupId` bytes).
    pub group: [u8; 32],
    /// The device that creates the epoch (the graph layer's `DeviceId`: its Ed25519 key).
    pub author: [u8; 32],
    /// The `KeyUpdate`'s fresh salt.
    pub salt: [u8; 16],
}

/// One recipient of a sealed secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealRecipient<'a> {
    /// Position of the device in the sorted list of expected recipients (rule K2).
    pub index: u16,
    /// The recipient device id (its Ed25519 verifying key bytes).
    pub device: [u8; 32],
    /// The recipient's current KEM public key.
    pub kem_public: &'a KemPublicKey,
}

/// An epoch secret sealed to one device. Public data (90 bytes on the wire).
///
/// Serializes (serde) as a 90-byte tuple, which postcard writes as exactly
/// [`SealedSecret::to_bytes`]: `u16_le(index) | kem_key_id[8] | eph_pub[32] | ct[48]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SealedSecret {
    index: u16,
    kem_key_id: KemKeyId,
    eph_pub: [u8; 32],
    ct: [u8; SEALED_CT_LEN],
}

impl SealedSecret {
    /// Position of the recipient in the sorted recipient list.
    #[must_use]
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Key id of the KEM key this was sealed to.
    #[must_use]
    pub fn kem_key_id(&self) -> &KemKeyId {
        &self.kem_key_id
    }

    /// The sender's ephemeral X25519 public key.
    #[must_use]
    pub fn eph_pub(&self) -> &[u8; 32] {
        &self.eph_pub
    }

    /// The fixed 90-byte encoding.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; SEALED_SECRET_LEN] {
        let mut out = [0u8; SEALED_SECRET_LEN];
        let parts: [&[u8]; 4] = [
            &self.index.to_le_bytes(),
            self.kem_key_id.as_bytes(),
            &self.eph_pub,
            &self.ct,
        ];
        let mut at = 0;
        for p in parts {
            if let Some(dst) = out.get_mut(at..at + p.len()) {
                dst.copy_from_slice(p);
            }
            at += p.len();
        }
        out
    }

    /// Decodes the fixed 90-byte encoding.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Truncated`] or [`CryptoError::TrailingData`] for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut r = Reader::new(bytes);
        let index = u16::from_le_bytes(r.array::<2>("recipient index")?);
        let kem_key_id = KemKeyId::from_bytes(r.array::<8>("kem key id")?);
        let eph_pub = r.array::<32>("ephemeral public key")?;
        let ct = r.array::<SEALED_CT_LEN>("sealed ciphertext")?;
        r.finish("sealed secret")?;
        Ok(Self {
            index,
            kem_key_id,
            eph_pub,
            ct,
        })
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            index,
            kem_key_id,
            eph_pub,
            ct: _,
        } = self;
        f.debug_struct("SealedSecret")
            .field("index", index)
            .field("kem_key_id", kem_key_id)
            .field("eph_pub", &Hex(eph_pub))
            .finish_non_exhaustive()
    }
}

impl Serialize for SealedSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = self.to_bytes();
        let mut t = serializer.serialize_tuple(SEALED_SECRET_LEN)?;
        for b in &bytes {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for SealedSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SealedSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{SEALED_SECRET_LEN} bytes of a sealed secret")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut bytes = [0u8; SEALED_SECRET_LEN];
                for (i, slot) in bytes.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| A::Error::invalid_length(i, &self))?;
                }
                SealedSecret::from_bytes(&bytes).map_err(A::Error::custom)
            }
        }
        deserializer.deserialize_tuple(SEALED_SECRET_LEN, V)
    }
}

/// The context string `ctx` of the module docs.
fn seal_context(ctx: &SealContext, index: u16, device: &[u8; 32], key_id: &KemKeyId) -> Vec<u8> {
    let fields: [&[u8]; 6] = [
        &ctx.group,
        &ctx.author,
        &ctx.salt,
        &index.to_le_bytes(),
        device,
        key_id.as_bytes(),
    ];
    let mut out = Vec::with_capacity(6 * 4 + 32 * 3 + 16 + 2 + 8);
    for f in fields {
        // Every field is at most 32 bytes.
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

fn seal_key(shared: &[u8; 32], eph_pub: &[u8; 32], kem_pub: &KemPublicKey, ctx: &[u8]) -> Secret32 {
    Secret32::new(kdf::derive_lp(
        KDF_SEAL,
        &[shared, eph_pub, kem_pub.as_bytes(), ctx],
    ))
}

/// Seals `secret` to one recipient device.
///
/// The ephemeral key comes from `rng` and is consumed by the key agreement.
///
/// # Errors
///
/// [`CryptoError::NonContributory`] if the recipient's KEM key is of low order.
pub fn seal_epoch_secret(
    secret: &EpochSecret,
    ctx: &SealContext,
    recipient: &SealRecipient<'_>,
    rng: &mut impl CryptoRngCore,
) -> Result<SealedSecret, CryptoError> {
    let eph = EphemeralSecret::random_from_rng(&mut *rng);
    let eph_pub = PublicKey::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&PublicKey::from(*recipient.kem_public.as_bytes()));
    if !shared.was_contributory() {
        return Err(CryptoError::NonContributory);
    }
    let kem_key_id = recipient.kem_public.key_id();
    let context = seal_context(ctx, recipient.index, &recipient.device, &kem_key_id);
    let key = seal_key(shared.as_bytes(), &eph_pub, recipient.kem_public, &context);
    let mut ct = [0u8; SEALED_CT_LEN];
    let (body, tag_slot) = ct.split_at_mut(32);
    body.copy_from_slice(secret.0.as_bytes());
    let tag = aead::encrypt(key.as_bytes(), &ZERO_NONCE, &context, body)?;
    tag_slot.copy_from_slice(&tag);
    Ok(SealedSecret {
        index: recipient.index,
        kem_key_id,
        eph_pub,
        ct,
    })
}

impl DeviceKemSecret {
    /// Opens a secret sealed to this key, as device `own_device`, in context `ctx`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KemKeyIdMismatch`] if the box names another KEM key (perhaps an older
    /// one of this device), [`CryptoError::NonContributory`] for a low-order ephemeral key,
    /// [`CryptoError::AuthenticationFailed`] for anything else (tampering, wrong context, a
    /// box meant for another device).
    pub fn open_epoch_secret(
        &self,
        sealed: &SealedSecret,
        ctx: &SealContext,
        own_device: &[u8; 32],
    ) -> Result<EpochSecret, CryptoError> {
        let own_id = self.key_id();
        if sealed.kem_key_id != own_id {
            return Err(CryptoError::KemKeyIdMismatch {
                expected: *own_id.as_bytes(),
                found: *sealed.kem_key_id.as_bytes(),
            });
        }
        let shared = self.agree(&sealed.eph_pub)?;
        let context = seal_context(ctx, sealed.index, own_device, &own_id);
        let key = seal_key(&shared, &sealed.eph_pub, self.public_key(), &context);
        let (body, tag) = sealed.ct.split_at(32);
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(body);
        let mut tag_arr = [0u8; TAG_LEN];
        tag_arr.copy_from_slice(tag);
        aead::decrypt(
            key.as_bytes(),
            &ZERO_NONCE,
            &context,
            secret.as_mut(),
            &tag_arr,
        )?;
        Ok(EpochSecret::from_bytes(secret))
    }
}
