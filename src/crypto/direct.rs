//! The direct envelope (security-design.md §4.3): a signed message sealed to one device's KEM
//! key, for welcomes and epoch-secret forwards.
//!
//! ```text
//! envelope:
//! offset len  field
//!  0      2   magic "EC"
//!  2      1   version = 1
//!  3      1   suite = 1
//!  4      1   kind = 2
//!  5     32   eph_pub: sender's ephemeral X25519 key
//! 37     24   nonce
//! 61      …   ciphertext of u32_le(len) ‖ signed body ‖ zero padding, then tag[16]
//!
//! signed body (the plaintext):
//!  0      1   body version = 1
//!  1     32   group id
//! 33     32   sender device (Ed25519 verifying key)
//! 65     32   recipient device id
//! 97      8   recipient kem_key_id
//! 105     1   content type (chosen by the group layer: welcome, forward, …)
//! 106     4   payload length, u32 little-endian
//! 110     n   payload
//! 110+n  64   Ed25519 signature over SIG_DIRECT ‖ bytes 0 .. 110+n
//! ```
//!
//! Keys (HPKE-like base mode, single-shot):
//!
//! ```text
//! ss      = X25519(eph, kem_pub)                    -- rejected unless contributory
//! k       = derive_key(KDF_DIRECT, lp(ss) ‖ lp(eph_pub) ‖ lp(kem_pub) ‖ lp(envelope[0..5]))
//! k_aead  = derive_key(KDF_DIRECT_AEAD, k);   k_nonce = derive_key(KDF_DIRECT_NONCE, k)
//! nonce   = BLAKE3_keyed(k_nonce, lp(r) ‖ lp(H(signed body)))[..24],  r from the caller's RNG
//! aad     = envelope[0..61]
//! ```
//!
//! `k` is single-use already (fresh ephemeral); the hedged nonce also covers an RNG that
//! repeats its state, which would repeat the ephemeral key too.
//!
//! The body names the recipient device and KEM key id and is signed by the sender, so a
//! recipient cannot re-seal a welcome it received to somebody else: the new recipient sees a
//! body addressed to another device and rejects it ([`CryptoError::RecipientMismatch`]).

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

use super::card::VerifiedContactCard;
use super::codec::{read_preamble, Hex, Reader};
use super::group::{EnvelopeKind, ENVELOPE_MAGIC};
use super::kdf::{self, KDF_DIRECT, KDF_DIRECT_AEAD, KDF_DIRECT_NONCE, SIG_DIRECT};
use super::keys::{DeviceKemSecret, KemKeyId, KemPublicKey, Secret32};
use super::limits::{EnvelopeLimits, DIRECT_HEADER_LEN, MIN_PADDED_BODY, NONCE_LEN};
use super::padding::{body_len, push_framed, unframe};
use super::{aead, CryptoError};

/// Version byte of the signed body inside a direct envelope.
pub const DIRECT_BODY_VERSION: u8 = 1;
/// Bytes of a signed body besides the payload: fields 110, signature 64.
pub const DIRECT_BODY_OVERHEAD: usize = 1 + 32 + 32 + 32 + 8 + 1 + 4 + 64;

/// The device a direct envelope is sealed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectRecipient<'a> {
    /// The recipient's device id (Ed25519 verifying key bytes).
    pub device: [u8; 32],
    /// The recipient's current KEM key.
    pub kem_public: &'a KemPublicKey,
}

impl<'a> From<&'a VerifiedContactCard> for DirectRecipient<'a> {
    fn from(card: &'a VerifiedContactCard) -> Self {
        Self {
            device: card.device_key().to_bytes(),
            kem_public: card.kem_public(),
        }
    }
}

/// What a direct envelope says, besides who sends it to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectContent<'a> {
    /// The group the message belongs to.
    pub group: [u8; 32],
    /// Application-defined content type, authenticated (e.g. welcome or forward).
    pub content_type: u8,
    /// The payload.
    pub payload: &'a [u8],
}

/// Signs `content` as `sender`, addressed to `recipient`, and seals it to the recipient's KEM
/// key.
///
/// # Errors
///
/// [`CryptoError::PlaintextTooLarge`] if it does not fit under `limits`;
/// [`CryptoError::NonContributory`] if the recipient's KEM key is of low order.
pub fn seal_direct(
    sender: &SigningKey,
    recipient: &DirectRecipient<'_>,
    content: &DirectContent<'_>,
    limits: &EnvelopeLimits,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CryptoError> {
    let max_payload = limits
        .max_envelope()
        .saturating_sub(DIRECT_HEADER_LEN + DIRECT_BODY_OVERHEAD + 4 + 16);
    if content.payload.len() > max_payload {
        return Err(CryptoError::PlaintextTooLarge {
            len: content.payload.len(),
            max: max_payload,
        });
    }
    let signed = sign_body(sender, recipient, content);
    seal_signed_body(&signed, recipient.kem_public, limits, rng)
}

/// `body ‖ signature`, in a zeroizing buffer.
fn sign_body(
    sender: &SigningKey,
    recipient: &DirectRecipient<'_>,
    content: &DirectContent<'_>,
) -> Zeroizing<Vec<u8>> {
    let mut m = Zeroizing::new(Vec::with_capacity(
        SIG_DIRECT.len() + DIRECT_BODY_OVERHEAD + content.payload.len(),
    ));
    m.extend_from_slice(SIG_DIRECT);
    m.push(DIRECT_BODY_VERSION);
    m.extend_from_slice(&content.group);
    m.extend_from_slice(sender.verifying_key().as_bytes());
    m.extend_from_slice(&recipient.device);
    m.extend_from_slice(recipient.kem_public.key_id().as_bytes());
    m.push(content.content_type);
    // seal_direct checked the payload against the envelope limit (at most 1 MiB).
    let len = u32::try_from(content.payload.len()).unwrap_or(u32::MAX);
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(content.payload);
    let sig = sender.sign(&m);
    m.extend_from_slice(&sig.to_bytes());
    m.drain(..SIG_DIRECT.len());
    m
}

/// Seals an already signed body to a KEM key. Crate-private: the public path always signs a
/// body naming the recipient; tests use this to play a malicious re-sealer.
pub(crate) fn seal_signed_body(
    signed: &[u8],
    kem_public: &KemPublicKey,
    limits: &EnvelopeLimits,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CryptoError> {
    let max_body = limits.max_envelope().saturating_sub(DIRECT_HEADER_LEN);
    let body_len = body_len(signed.len(), max_body)?;

    let eph = EphemeralSecret::random_from_rng(&mut *rng);
    let eph_pub = PublicKey::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&PublicKey::from(*kem_public.as_bytes()));
    if !shared.was_contributory() {
        return Err(CryptoError::NonContributory);
    }

    let mut out = Vec::with_capacity(DIRECT_HEADER_LEN + body_len);
    out.extend_from_slice(&ENVELOPE_MAGIC);
    out.extend_from_slice(&[super::VERSION, super::SUITE, EnvelopeKind::Direct.to_byte()]);
    let (k_aead, k_nonce) = direct_keys(shared.as_bytes(), &eph_pub, kem_public, &out);
    out.extend_from_slice(&eph_pub);
    let mut r = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(r.as_mut());
    let full = kdf::keyed_lp(k_nonce.as_bytes(), &[r.as_ref(), &kdf::hash(signed)]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&full[..NONCE_LEN]);
    out.extend_from_slice(&nonce);
    push_framed(&mut out, signed, body_len);
    let (aad, body) = out.split_at_mut(DIRECT_HEADER_LEN);
    let tag = aead::encrypt(k_aead.as_bytes(), &nonce, aad, body)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

fn direct_keys(
    shared: &[u8; 32],
    eph_pub: &[u8; 32],
    kem_public: &KemPublicKey,
    ctx: &[u8],
) -> (Secret32, Secret32) {
    let k = kdf::derive_lp(KDF_DIRECT, &[shared, eph_pub, kem_public.as_bytes(), ctx]);
    (
        Secret32::new(kdf::derive(KDF_DIRECT_AEAD, k.as_ref())),
        Secret32::new(kdf::derive(KDF_DIRECT_NONCE, k.as_ref())),
    )
}

/// An authentic direct message addressed to this device.
///
/// The signature was checked with `verify_strict` under the embedded sender key; whether that
/// sender may send this (is a member, an admin, …) is for the group layer to decide.
pub struct DirectMessage {
    group: [u8; 32],
    sender: VerifyingKey,
    recipient: [u8; 32],
    kem_key_id: KemKeyId,
    content_type: u8,
    payload: Zeroizing<Vec<u8>>,
}

impl DirectMessage {
    /// The group the sender named.
    #[must_use]
    pub fn group(&self) -> &[u8; 32] {
        &self.group
    }

    /// The sender device, whose signature verified.
    #[must_use]
    pub fn sender(&self) -> &VerifyingKey {
        &self.sender
    }

    /// The recipient device (always the opener).
    #[must_use]
    pub fn recipient(&self) -> &[u8; 32] {
        &self.recipient
    }

    /// The recipient KEM key id (always the opener's key).
    #[must_use]
    pub fn kem_key_id(&self) -> &KemKeyId {
        &self.kem_key_id
    }

    /// The content type.
    #[must_use]
    pub fn content_type(&self) -> u8 {
        self.content_type
    }

    /// The payload (may hold secrets: it is wiped when the message drops).
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Takes the payload out.
    #[must_use]
    pub fn into_payload(self) -> Zeroizing<Vec<u8>> {
        self.payload
    }
}

impl fmt::Debug for DirectMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            group,
            sender,
            recipient,
            kem_key_id,
            content_type,
            payload,
        } = self;
        f.debug_struct("DirectMessage")
            .field("group", &Hex(group))
            .field("sender", &Hex(sender.as_bytes()))
            .field("recipient", &Hex(recipient))
            .field("kem_key_id", kem_key_id)
            .field("content_type", content_type)
            .field("payload_len", &payload.len())
            .finish_non_exhaustive()
    }
}

/// Opens a direct envelope with this device's KEM key, as device `own_device`.
///
/// # Errors
///
/// Decoding errors for a malformed envelope (size first); [`CryptoError::NonContributory`]
/// for a low-order ephemeral key; [`CryptoError::AuthenticationFailed`] (opaque) if the
/// envelope was not sealed to this key or was tampered with; then, for an authentic envelope:
/// padding errors, body decoding errors, [`CryptoError::InvalidVerifyingKey`],
/// [`CryptoError::InvalidSignature`], [`CryptoError::RecipientMismatch`] (signed for another
/// device: a re-sealed message), [`CryptoError::KemKeyIdMismatch`].
pub fn open_direct(
    bytes: &[u8],
    kem: &DeviceKemSecret,
    own_device: &[u8; 32],
    limits: &EnvelopeLimits,
) -> Result<DirectMessage, CryptoError> {
    limits.check_len(bytes.len())?;
    let mut r = Reader::new(bytes);
    read_preamble(&mut r, "direct envelope", ENVELOPE_MAGIC)?;
    let kind = r.u8("kind")?;
    if kind != EnvelopeKind::Direct.to_byte() {
        return Err(CryptoError::UnexpectedKind { found: kind });
    }
    let ctx_len = r.offset();
    let eph_pub = r.array::<32>("ephemeral public key")?;
    let nonce = r.array::<NONCE_LEN>("nonce")?;
    let body = r.rest();
    if body.len() < MIN_PADDED_BODY {
        return Err(CryptoError::CiphertextTooShort {
            len: body.len(),
            min: MIN_PADDED_BODY,
        });
    }
    let ctx = bytes.get(..ctx_len).unwrap_or_default();
    let aad = bytes.get(..DIRECT_HEADER_LEN).unwrap_or_default();

    let shared = kem.agree(&eph_pub)?;
    let (k_aead, _) = direct_keys(&shared, &eph_pub, kem.public_key(), ctx);
    let (ct, tag) = aead::split_tag(body).ok_or(CryptoError::AuthenticationFailed)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    aead::decrypt(k_aead.as_bytes(), &nonce, aad, &mut buf, tag)?;
    let signed = unframe(buf)?;
    let msg = parse_signed_body(&signed)?;
    if msg.recipient != *own_device {
        return Err(CryptoError::RecipientMismatch);
    }
    let own_id = kem.key_id();
    if msg.kem_key_id != own_id {
        return Err(CryptoError::KemKeyIdMismatch {
            expected: *own_id.as_bytes(),
            found: *msg.kem_key_id.as_bytes(),
        });
    }
    Ok(msg)
}

/// Decodes a signed body strictly and verifies its signature.
fn parse_signed_body(signed: &[u8]) -> Result<DirectMessage, CryptoError> {
    let mut r = Reader::new(signed);
    let version = r.u8("direct body version")?;
    if version != DIRECT_BODY_VERSION {
        return Err(CryptoError::UnsupportedVersion {
            what: "direct body",
            expected: DIRECT_BODY_VERSION,
            found: version,
        });
    }
    let group = r.array::<32>("group")?;
    let sender = r.array::<32>("sender")?;
    let recipient = r.array::<32>("recipient")?;
    let kem_key_id = KemKeyId::from_bytes(r.array::<8>("kem key id")?);
    let content_type = r.u8("content type")?;
    let len = u32::from_le_bytes(r.array::<4>("payload length")?) as usize;
    let payload = r.take("payload", len)?;
    let signed_len = r.offset();
    let sig = Signature::from_bytes(&r.array::<64>("signature")?);
    r.finish("direct body")?;

    let sender = VerifyingKey::from_bytes(&sender).map_err(|_| CryptoError::InvalidVerifyingKey)?;
    if sender.is_weak() {
        return Err(CryptoError::InvalidVerifyingKey);
    }
    let mut message = Zeroizing::new(Vec::with_capacity(SIG_DIRECT.len() + signed_len));
    message.extend_from_slice(SIG_DIRECT);
    message.extend_from_slice(signed.get(..signed_len).unwrap_or_default());
    sender
        .verify_strict(&message, &sig)
        .map_err(|_| CryptoError::InvalidSignature)?;
    Ok(DirectMessage {
        group,
        sender,
        recipient,
        kem_key_id,
        content_type,
        payload: Zeroizing::new(payload.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    #[test]
    fn resealed_body_is_rejected_by_the_new_recipient() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let sender = SigningKey::from_bytes(&[1; 32]);
        let a_sig = SigningKey::from_bytes(&[2; 32]);
        let b_sig = SigningKey::from_bytes(&[3; 32]);
        let a_kem = DeviceKemSecret::generate(&mut rng);
        let b_kem = DeviceKemSecret::generate(&mut rng);
        let limits = EnvelopeLimits::default();
        let to_a = DirectRecipient {
            device: a_sig.verifying_key().to_bytes(),
            kem_public: a_kem.public_key(),
        };
        let content = DirectContent {
            group: [9; 32],
            content_type: 1,
            payload: b"welcome",
        };
        let signed = sign_body(&sender, &to_a, &content);
        let env =
            seal_signed_body(&signed, b_kem.public_key(), &limits, &mut rng).unwrap_or_default();
        let r = open_direct(&env, &b_kem, &b_sig.verifying_key().to_bytes(), &limits);
        assert!(matches!(r, Err(CryptoError::RecipientMismatch)));
    }
}
