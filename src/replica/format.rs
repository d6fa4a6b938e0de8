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

/// Seals the device's two secrets: `version | seed[32] | kem[32]`.
pub(crate) fn seal_device(
    key: &StorageKey,
    seed: &[u8; 32],
    kem: &[u8; 32],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, ReplicaError> {
    let mut pt = Zeroizing::new(Vec::with_capacity(65));
    pt.push(FORMAT_VERSION);
    pt.extend_from_slice(seed);
    pt.extend_from_slice(kem);
    Ok(key.seal(CTX_DEVICE, &pt, rng)?)
}

/// Opens the device blob: `(seed, kem)`.
pub(crate) fn open_device(key: &StorageKey, bytes: &[u8]) -> Result<DeviceSecrets, ReplicaError> {
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
    if pt.len() != 65 {
        return Err(corrupt("wrong length"));
    }
    if pt[0] != FORMAT_VERSION {
        return Err(ReplicaError::UnsupportedFormat { found: pt[0] });
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    let mut kem = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&pt[1..33]);
    kem.copy_from_slice(&pt[33..65]);
    Ok((seed, kem))
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
