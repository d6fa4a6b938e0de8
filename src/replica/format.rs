//! What a replica keeps in its [`Storage`](crate::store::Storage), and how.
//!
//! Everything is sealed with [`StorageKey::seal`] under the application's key, bound to a
//! context naming its kind and the device (so a record cannot pass for a snapshot, nor one
//! device's store for another's). Inside, postcard encodings of the types below; every
//! decoder is strict and bounded by the store's own limits (records up to
//! [`MAX_RECORD_LEN`](crate::store::MAX_RECORD_LEN), snapshots up to
//! [`MAX_SNAPSHOT_LEN`](crate::store::MAX_SNAPSHOT_LEN)).
//!
//! * blob `device`: format version, the Ed25519 seed and the X25519 KEM secret.
//! * record: one [`Step`] (what one call changed in a member) or one input kept by a device
//!   still waiting for its welcome.
//! * snapshot: an [`Image`] of the member, or of the joiner's kept input.

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::error::ReplicaError;
use super::outbox::{Outgoing, Recipient};
use crate::crypto::{CryptoError, EpochId, StorageKey};
use crate::graph::{DeviceId, GroupId, NodeHash, Skeleton};
use crate::group::{DeviceSecrets, Entry};

/// Version of every structure in this module.
pub(crate) const FORMAT_VERSION: u8 = 1;
/// Name of the device blob.
pub(crate) const DEVICE_BLOB: &str = "device";

const CTX_DEVICE: &[u8] = b"sealdoc replica v1 device";
const CTX_RECORD: &[u8] = b"sealdoc replica v1 record";
const CTX_SNAPSHOT: &[u8] = b"sealdoc replica v1 snapshot";

/// What a sealed item is, for its context.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Record,
    Snapshot,
}

fn context(kind: Kind, device: &DeviceId) -> Vec<u8> {
    let label = match kind {
        Kind::Record => CTX_RECORD,
        Kind::Snapshot => CTX_SNAPSHOT,
    };
    let mut c = Vec::with_capacity(label.len() + 32);
    c.extend_from_slice(label);
    c.extend_from_slice(device.as_bytes());
    c
}

// ---- Device blob --------------------------------------------------------------------------

/// What the device was made for: a device blob alone in a store means something different
/// for each (a creator's snapshot was never written; a joiner is waiting for its welcome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Intent {
    /// `Replica::create`: the member's first snapshot follows the blob.
    Create = 1,
    /// `Replica::new_joiner`: nothing follows until the welcome.
    Join = 2,
}

/// Length of the device blob's plaintext: version, intent, seed, KEM secret.
const DEVICE_PLAINTEXT_LEN: usize = 1 + 1 + 32 + 32;

/// Seals the device's two secrets: `version | intent | seed[32] | kem[32]`.
pub(crate) fn seal_device(
    key: &StorageKey,
    intent: Intent,
    seed: &[u8; 32],
    kem: &[u8; 32],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, ReplicaError> {
    let mut pt = Zeroizing::new(Vec::with_capacity(DEVICE_PLAINTEXT_LEN));
    pt.push(FORMAT_VERSION);
    pt.push(intent as u8);
    pt.extend_from_slice(seed);
    pt.extend_from_slice(kem);
    Ok(key.seal(CTX_DEVICE, &pt, rng)?)
}

/// Opens the device blob: `(intent, (seed, kem))`.
pub(crate) fn open_device(
    key: &StorageKey,
    bytes: &[u8],
) -> Result<(Intent, DeviceSecrets), ReplicaError> {
    let pt = key.open(CTX_DEVICE, bytes).map_err(|e| match e {
        CryptoError::AuthenticationFailed => ReplicaError::WrongKey,
        other => ReplicaError::Corrupt {
            what: "device blob",
            detail: other.to_string(),
        },
    })?;
    let corrupt = |detail: &str| ReplicaError::Corrupt {
        what: "device blob",
        detail: detail.to_owned(),
    };
    if pt.first() != Some(&FORMAT_VERSION) {
        return Err(ReplicaError::UnsupportedFormat {
            found: pt.first().copied().unwrap_or(0),
        });
    }
    if pt.len() != DEVICE_PLAINTEXT_LEN {
        return Err(corrupt("wrong length"));
    }
    let intent = match pt[1] {
        1 => Intent::Create,
        2 => Intent::Join,
        _ => return Err(corrupt("unknown intent")),
    };
    let mut seed = Zeroizing::new([0u8; 32]);
    let mut kem = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&pt[2..34]);
    kem.copy_from_slice(&pt[34..66]);
    Ok((intent, (seed, kem)))
}

// ---- Records and snapshots ----------------------------------------------------------------

/// A graph entry as stored.
#[derive(Serialize, Deserialize)]
pub(crate) enum StoredEntry {
    Node(Vec<u8>),
    Skeleton(Vec<u8>),
}

impl StoredEntry {
    pub(crate) fn from_entry(e: &Entry) -> Result<Self, ReplicaError> {
        Ok(match e {
            Entry::Node(b) => StoredEntry::Node(b.clone()),
            Entry::Skeleton(s) => StoredEntry::Skeleton(s.encode()?),
        })
    }

    pub(crate) fn into_entry(self) -> Result<Entry, ReplicaError> {
        Ok(match self {
            StoredEntry::Node(b) => Entry::Node(b),
            StoredEntry::Skeleton(b) => {
                Entry::Skeleton(Skeleton::decode(&b).map_err(|e| ReplicaError::Corrupt {
                    what: "stored skeleton",
                    detail: e.to_string(),
                })?)
            }
        })
    }
}

/// An epoch secret as stored (inside sealed data only).
#[derive(Serialize, Deserialize, Zeroize)]
pub(crate) struct StoredSecret {
    pub epoch: [u8; 32],
    pub secret: [u8; 32],
}

impl Drop for StoredSecret {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl StoredSecret {
    pub(crate) fn new(epoch: &EpochId, secret: &[u8; 32]) -> Self {
        StoredSecret {
            epoch: *epoch.as_bytes(),
            secret: *secret,
        }
    }

    pub(crate) fn take(&self) -> (EpochId, Zeroizing<[u8; 32]>) {
        (EpochId::from_bytes(self.epoch), Zeroizing::new(self.secret))
    }
}

/// An outbox message as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredOutgoing {
    pub id: u64,
    /// `None`: the group.
    pub to: Option<[u8; 32]>,
    pub bytes: Vec<u8>,
}

impl From<&Outgoing> for StoredOutgoing {
    fn from(o: &Outgoing) -> Self {
        StoredOutgoing {
            id: o.id,
            to: match o.to {
                Recipient::Group => None,
                Recipient::Device(d) => Some(*d.as_bytes()),
            },
            bytes: o.bytes.clone(),
        }
    }
}

impl From<StoredOutgoing> for Outgoing {
    fn from(o: StoredOutgoing) -> Self {
        Outgoing {
            id: o.id,
            to: o.to.map_or(Recipient::Group, |d| {
                Recipient::Device(DeviceId::from_bytes(d))
            }),
            bytes: o.bytes,
        }
    }
}

/// What one call changed in a member.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Step {
    /// New graph entries, in the order applied.
    pub entries: Vec<StoredEntry>,
    /// Epoch secrets learned.
    pub secrets: Vec<StoredSecret>,
    /// Input that is waiting (for dependencies, a key, more chunks): fed again on reopen.
    pub waiting: Vec<Vec<u8>>,
    /// Messages added to the outbox.
    pub outgoing: Vec<StoredOutgoing>,
    /// Outbox messages the application reported sent.
    pub sent: Vec<u64>,
}

impl Step {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && self.secrets.is_empty()
            && self.waiting.is_empty()
            && self.outgoing.is_empty()
            && self.sent.is_empty()
    }
}

/// One record.
#[derive(Serialize, Deserialize)]
pub(crate) enum RecordBody {
    /// Input kept by a device waiting for its welcome (a welcome chunk, or group traffic).
    JoinerInput(Vec<u8>),
    /// What one call changed in the member.
    Step(Step),
}

/// A member, as saved in a snapshot.
#[derive(Serialize, Deserialize)]
pub(crate) struct MemberImage {
    pub group: [u8; 32],
    pub joined_at: Option<[u8; 32]>,
    pub entries: Vec<StoredEntry>,
    pub secrets: Vec<StoredSecret>,
    /// Nodes in the causal buffer.
    pub waiting_nodes: Vec<Vec<u8>>,
    /// Parked group envelopes, and direct envelopes of unfinished bundles.
    pub waiting_envelopes: Vec<Vec<u8>>,
    pub outbox: Vec<StoredOutgoing>,
    pub next_outgoing: u64,
}

impl MemberImage {
    pub(crate) fn group(&self) -> GroupId {
        GroupId::from_bytes(self.group)
    }

    pub(crate) fn joined_at(&self) -> Option<NodeHash> {
        self.joined_at.map(NodeHash::from_bytes)
    }
}

/// A snapshot.
#[derive(Serialize, Deserialize)]
pub(crate) enum Image {
    /// A device waiting for its welcome: the input it keeps.
    Joining { inputs: Vec<Vec<u8>> },
    /// A member.
    Member(MemberImage),
}

/// Encodes and seals `value` (the plaintext encoding is wiped after sealing).
pub(crate) fn seal<T: Serialize>(
    key: &StorageKey,
    kind: Kind,
    device: &DeviceId,
    value: &T,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, ReplicaError> {
    let mut pt = Zeroizing::new(vec![FORMAT_VERSION]);
    postcard::to_io(value, &mut *pt).map_err(|e| ReplicaError::Internal(encode_err(&e)))?;
    Ok(key.seal(&context(kind, device), &pt, rng)?)
}

fn encode_err(_: &postcard::Error) -> &'static str {
    "encoding stored state failed"
}

/// Opens and decodes what [`seal`] made. A wrong key or tampered bytes give
/// [`ReplicaError::Corrupt`] (the device blob, opened first, already told a wrong key apart).
pub(crate) fn open<T: for<'de> Deserialize<'de>>(
    key: &StorageKey,
    kind: Kind,
    device: &DeviceId,
    bytes: &[u8],
    what: &'static str,
) -> Result<T, ReplicaError> {
    let pt = key
        .open(&context(kind, device), bytes)
        .map_err(|e| ReplicaError::Corrupt {
            what,
            detail: e.to_string(),
        })?;
    let (&version, body) = pt.split_first().ok_or(ReplicaError::Corrupt {
        what,
        detail: "empty".to_owned(),
    })?;
    if version != FORMAT_VERSION {
        return Err(ReplicaError::UnsupportedFormat { found: version });
    }
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| ReplicaError::Corrupt {
        what,
        detail: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(ReplicaError::Corrupt {
            what,
            detail: format!("{} trailing bytes", rest.len()),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    fn key() -> StorageKey {
        StorageKey::from_bytes(Zeroizing::new([9; 32]))
    }

    fn device() -> DeviceId {
        DeviceId::from_bytes([3; 32])
    }

    #[test]
    fn a_step_round_trips_and_is_bound_to_its_kind_and_device() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let step = RecordBody::Step(Step {
            entries: vec![StoredEntry::Node(vec![1, 2, 3])],
            secrets: vec![StoredSecret::new(&EpochId::from_bytes([5; 32]), &[6; 32])],
            waiting: vec![vec![7; 10]],
            outgoing: vec![StoredOutgoing {
                id: 4,
                to: Some([8; 32]),
                bytes: vec![9; 3],
            }],
            sent: vec![1, 2],
        });
        let sealed = seal(&key(), Kind::Record, &device(), &step, &mut rng).unwrap();
        let back: RecordBody = open(&key(), Kind::Record, &device(), &sealed, "record").unwrap();
        let RecordBody::Step(s) = back else {
            panic!("not a step")
        };
        assert_eq!(s.sent, [1, 2]);
        assert_eq!(s.outgoing[0].id, 4);
        assert_eq!(s.secrets[0].take().1.as_ref(), &[6; 32]);
        // The same bytes do not open as a snapshot, for another device, or under another key.
        assert!(matches!(
            open::<RecordBody>(&key(), Kind::Snapshot, &device(), &sealed, "x"),
            Err(ReplicaError::Corrupt { .. })
        ));
        let other = DeviceId::from_bytes([4; 32]);
        assert!(open::<RecordBody>(&key(), Kind::Record, &other, &sealed, "x").is_err());
        let wrong = StorageKey::from_bytes(Zeroizing::new([1; 32]));
        assert!(open::<RecordBody>(&wrong, Kind::Record, &device(), &sealed, "x").is_err());
        // No plaintext of the record is visible in the sealed bytes.
        assert!(!sealed.windows(10).any(|w| w == [7; 10]));
    }

    #[test]
    fn the_device_blob_round_trips_and_a_wrong_key_is_named() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let blob = seal_device(&key(), Intent::Join, &[1; 32], &[2; 32], &mut rng).unwrap();
        let (intent, (seed, kem)) = open_device(&key(), &blob).unwrap();
        assert_eq!((intent, *seed, *kem), (Intent::Join, [1; 32], [2; 32]));
        let wrong = StorageKey::from_bytes(Zeroizing::new([1; 32]));
        assert!(matches!(
            open_device(&wrong, &blob),
            Err(ReplicaError::WrongKey)
        ));
        let mut cut = blob.clone();
        cut.truncate(10);
        assert!(open_device(&key(), &cut).is_err());
    }

    #[test]
    fn a_newer_format_version_is_named() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let sealed = key()
            .seal(
                &context(Kind::Record, &device()),
                &[FORMAT_VERSION + 1, 0],
                &mut rng,
            )
            .unwrap();
        assert!(matches!(
            open::<RecordBody>(&key(), Kind::Record, &device(), &sealed, "record"),
            Err(ReplicaError::UnsupportedFormat { found }) if found == FORMAT_VERSION + 1
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Authentic but arbitrary plaintext (what a buggy or older writer could leave) decodes
        /// to a typed error or a value, never a panic or a huge allocation.
        #[test]
        fn arbitrary_sealed_plaintext_never_panics(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            seed in any::<u64>(),
        ) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut pt = vec![FORMAT_VERSION];
            pt.extend_from_slice(&body);
            for kind in [Kind::Record, Kind::Snapshot] {
                let sealed = key().seal(&context(kind, &device()), &pt, &mut rng).unwrap();
                let _ = open::<RecordBody>(&key(), kind, &device(), &sealed, "record");
                let _ = open::<Image>(&key(), kind, &device(), &sealed, "snapshot");
            }
        }

        /// Arbitrary bytes where sealed data is expected: an error, never a panic.
        #[test]
        fn arbitrary_sealed_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(open::<RecordBody>(&key(), Kind::Record, &device(), &bytes, "record").is_err());
            prop_assert!(open_device(&key(), &bytes).is_err());
        }
    }
}
