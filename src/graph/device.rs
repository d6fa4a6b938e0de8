//! A device's signing identity (security-design.md §4.1).

use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use rand_core::CryptoRngCore;

use super::error::GraphError;
use super::id::DeviceId;
use super::wire::{frame, NodeBody, NODE_LABEL, SIGNATURE_LEN};

/// A device: an Ed25519 signing key. Its verifying key is its [`DeviceId`], the author id of
/// every node it signs.
///
/// The key lives in a `Box` and is zeroized on drop (`ed25519-dalek`'s `zeroize` feature);
/// `Debug` shows only the id. There is no `Clone` and no `Serialize`: persisting a device is
/// the storage layer's job, through an encrypted form.
///
/// A device must not run on two replicas at once: both would sign different nodes with the
/// same sequence number, which every other replica reports as equivocation.
pub struct Device {
    key: Box<SigningKey>,
}

impl Device {
    /// A new device with a key from `rng` (for example `rand_core::OsRng`).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Device {
            key: Box::new(SigningKey::generate(rng)),
        }
    }

    /// The device whose Ed25519 secret key is `seed`. The same seed always gives the same
    /// device. The caller's copy of the seed is not zeroized here.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Device {
            key: Box::new(SigningKey::from_bytes(seed)),
        }
    }

    /// The device's public identity.
    pub fn id(&self) -> DeviceId {
        DeviceId::from_bytes(self.key.verifying_key().to_bytes())
    }

    /// Encodes and signs `body`, returning the signed node's bytes.
    ///
    /// Low level: [`SignedDoc::change`](super::SignedDoc::change) builds and signs nodes for
    /// you. This signs whatever it is given, even a body naming another author, so that tools
    /// and tests can craft any node; receivers validate everything.
    ///
    /// # Errors
    ///
    /// [`GraphError::Internal`] if encoding fails (it cannot).
    pub fn sign(&self, body: &NodeBody) -> Result<Vec<u8>, GraphError> {
        let body = body.encode()?;
        frame(&body, &self.sign_body(&body))
    }

    /// The Ed25519 secret key (the seed [`Device::from_seed`] takes back), for the replica's
    /// store, which keeps it only encrypted under the application's storage key.
    pub(crate) fn seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.key.to_bytes())
    }

    /// The signing key, for the group layer's contact cards and direct envelopes (each under
    /// its own signature label, so no signature can pass for another kind).
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs `NODE_LABEL ‖ body`.
    pub(crate) fn sign_body(&self, body: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut msg = Vec::with_capacity(NODE_LABEL.len() + body.len());
        msg.extend_from_slice(NODE_LABEL);
        msg.extend_from_slice(body);
        self.key.sign(&msg).to_bytes()
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field forces a decision about whether it may be shown.
        let Self { key: _ } = self;
        f.debug_struct("Device").field("id", &self.id()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_id_and_never_the_secret() {
        let seed = [0x5a; 32];
        let d = Device::from_seed(&seed);
        let s = format!("{d:?}");
        assert!(s.starts_with("Device { id: DeviceId("), "{s}");
        assert!(!s.contains("5a5a"), "{s}");
        assert!(!s.to_lowercase().contains("secret"), "{s}");
    }

    #[test]
    fn debug_output_is_pinned() {
        let d = Device::from_seed(&[0x5a; 32]);
        insta::assert_snapshot!(format!("{d:?}"), @"Device { id: DeviceId(0d755075…) }");
    }

    #[test]
    fn same_seed_same_id() {
        assert_eq!(
            Device::from_seed(&[1; 32]).id(),
            Device::from_seed(&[1; 32]).id()
        );
        assert_ne!(
            Device::from_seed(&[1; 32]).id(),
            Device::from_seed(&[2; 32]).id()
        );
    }
}
