//! Bounded buffers of the receive pipeline that sit before authentication: envelopes parked
//! for an epoch not known yet (`BY_EPOCH` of security-design.md §4.7), the hashes of envelopes
//! already processed, and bundles being reassembled from chunks.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::error::{GroupError, PeerMisbehaved};
use super::limits::{MAX_ASSEMBLIES, MAX_ASSEMBLY_BYTES, MAX_BUNDLE_BYTES};
use super::wire::Chunk;
use crate::crypto::EpochIdPrefix;
use crate::graph::DeviceId;

/// The hash identifying an envelope: BLAKE3 of its exact bytes.
pub(crate) type EnvelopeId = [u8; 32];

pub(crate) fn envelope_id(bytes: &[u8]) -> EnvelopeId {
    *blake3::hash(bytes).as_bytes()
}

/// Envelope hashes already processed, oldest forgotten first.
#[derive(Debug)]
pub(crate) struct Seen {
    set: HashSet<EnvelopeId>,
    order: VecDeque<EnvelopeId>,
    max: usize,
}

impl Seen {
    pub(crate) fn new(max: usize) -> Self {
        Seen {
            set: HashSet::new(),
            order: VecDeque::new(),
            max: max.max(1),
        }
    }

    pub(crate) fn contains(&self, id: &EnvelopeId) -> bool {
        self.set.contains(id)
    }

    pub(crate) fn insert(&mut self, id: EnvelopeId) {
        if self.set.insert(id) {
            self.order.push_back(id);
            while self.order.len() > self.max {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// One parked envelope.
#[derive(Debug)]
pub(crate) struct ParkedEnvelope {
    pub bytes: Vec<u8>,
    /// The epoch it is charged to (its first epoch this member lacked).
    pub epoch: EpochIdPrefix,
    /// True if the epoch was known but its key was not (retry when the key arrives); false
    /// if the epoch was unknown (retry when it becomes known).
    pub keyless: bool,
    arrival: u64,
}

/// Envelopes waiting for an epoch's key, bounded in count and bytes, in total and per epoch;
/// the oldest go first. They are unauthenticated, so the bound is all that stops junk: a
/// transport that floods the park can push real envelopes out, which catch-up then repairs.
#[derive(Debug)]
pub(crate) struct Park {
    by_id: HashMap<EnvelopeId, ParkedEnvelope>,
    order: BTreeMap<u64, EnvelopeId>,
    per_epoch: HashMap<EpochIdPrefix, BTreeMap<u64, EnvelopeId>>,
    bytes: usize,
    next: u64,
    max_count: usize,
    max_bytes: usize,
    max_per_epoch: usize,
}

impl Park {
    pub(crate) fn new(max_count: usize, max_bytes: usize, max_per_epoch: usize) -> Self {
        Park {
            by_id: HashMap::new(),
            order: BTreeMap::new(),
            per_epoch: HashMap::new(),
            bytes: 0,
            next: 0,
            max_count: max_count.max(1),
            max_bytes,
            max_per_epoch: max_per_epoch.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn contains(&self, id: &EnvelopeId) -> bool {
        self.by_id.contains_key(id)
    }

    /// Parks `bytes` (already known not to be parked) under `epoch`, evicting the oldest as
    /// the bounds require. An envelope larger than the byte budget is not parked.
    pub(crate) fn park(
        &mut self,
        id: EnvelopeId,
        bytes: &[u8],
        epoch: EpochIdPrefix,
        keyless: bool,
    ) {
        let size = bytes.len();
        if size > self.max_bytes {
            return;
        }
        while self
            .per_epoch
            .get(&epoch)
            .is_some_and(|m| m.len() >= self.max_per_epoch)
        {
            let Some(old) = self
                .per_epoch
                .get(&epoch)
                .and_then(|m| m.values().next().copied())
            else {
                break;
            };
            self.remove(&old);
        }
        while !self.by_id.is_empty()
            && (self.by_id.len() >= self.max_count || self.bytes + size > self.max_bytes)
        {
            let Some(old) = self.order.values().next().copied() else {
                break;
            };
            self.remove(&old);
        }
        let arrival = self.next;
        self.next += 1;
        self.order.insert(arrival, id);
        self.per_epoch.entry(epoch).or_default().insert(arrival, id);
        self.bytes += size;
        self.by_id.insert(
            id,
            ParkedEnvelope {
                bytes: bytes.to_vec(),
                epoch,
                keyless,
                arrival,
            },
        );
    }

    pub(crate) fn get(&self, id: &EnvelopeId) -> Option<&ParkedEnvelope> {
        self.by_id.get(id)
    }

    pub(crate) fn remove(&mut self, id: &EnvelopeId) -> Option<ParkedEnvelope> {
        let p = self.by_id.remove(id)?;
        self.order.remove(&p.arrival);
        if let Some(m) = self.per_epoch.get_mut(&p.epoch) {
            m.remove(&p.arrival);
            if m.is_empty() {
                self.per_epoch.remove(&p.epoch);
            }
        }
        self.bytes -= p.bytes.len();
        Some(p)
    }

    /// Ids of parked envelopes, oldest first.
    /// The bytes of every parked envelope, oldest first.
    pub(crate) fn parked_bytes(&self) -> Vec<Vec<u8>> {
        self.order
            .values()
            .filter_map(|id| self.by_id.get(id))
            .map(|p| p.bytes.clone())
            .collect()
    }

    pub(crate) fn ids(&self) -> Vec<EnvelopeId> {
        self.order.values().copied().collect()
    }
}

/// A bundle being reassembled.
#[derive(Debug)]
struct Assembly {
    total: u32,
    chunks: BTreeMap<u32, Vec<u8>>,
    bytes: usize,
    arrival: u64,
}

/// Bundles being reassembled from chunks, keyed by sender and bundle id; bounded in number and
/// bytes, oldest dropped first.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    open: HashMap<(DeviceId, [u8; 32]), Assembly>,
    bytes: usize,
    next: u64,
}

/// What adding one chunk gave.
pub(crate) enum Assembled {
    /// More chunks needed.
    Partial { received: usize, total: usize },
    /// The chunk was already held.
    Duplicate,
    /// The whole bundle, its hash checked.
    Complete(Vec<u8>),
}

impl Assembler {
    pub(crate) fn add(&mut self, sender: DeviceId, chunk: Chunk) -> Result<Assembled, GroupError> {
        let key = (sender, chunk.bundle);
        let max_chunk = MAX_BUNDLE_BYTES;
        if chunk.data.len() > max_chunk {
            return Err(PeerMisbehaved::BadChunks("chunk larger than a bundle").into());
        }
        if let Some(a) = self.open.get(&key) {
            if a.total != chunk.total {
                return Err(PeerMisbehaved::BadChunks("chunks disagree on the total").into());
            }
            if a.chunks.contains_key(&chunk.index) {
                return Ok(Assembled::Duplicate);
            }
            if a.bytes + chunk.data.len() > MAX_BUNDLE_BYTES {
                self.drop_key(&key);
                return Err(PeerMisbehaved::BadChunks("bundle too large").into());
            }
        } else {
            while self.open.len() >= MAX_ASSEMBLIES {
                self.drop_oldest();
            }
            let arrival = self.next;
            self.next += 1;
            self.open.insert(
                key,
                Assembly {
                    total: chunk.total,
                    chunks: BTreeMap::new(),
                    bytes: 0,
                    arrival,
                },
            );
        }
        while self.bytes + chunk.data.len() > MAX_ASSEMBLY_BYTES && self.open.len() > 1 {
            self.drop_oldest_except(&key);
        }
        let len = chunk.data.len();
        let Some(a) = self.open.get_mut(&key) else {
            return Err(PeerMisbehaved::BadChunks("bundle dropped").into());
        };
        a.chunks.insert(chunk.index, chunk.data);
        a.bytes += len;
        self.bytes += len;
        let (received, total) = (a.chunks.len(), a.total as usize);
        if received < total {
            return Ok(Assembled::Partial { received, total });
        }
        let Some(a) = self.open.remove(&key) else {
            return Err(PeerMisbehaved::BadChunks("bundle dropped").into());
        };
        self.bytes -= a.bytes;
        let mut whole = Vec::with_capacity(a.bytes);
        for (_, c) in a.chunks {
            whole.extend_from_slice(&c);
        }
        if *blake3::hash(&whole).as_bytes() != chunk.bundle {
            return Err(PeerMisbehaved::BadChunks("bundle hash mismatch").into());
        }
        Ok(Assembled::Complete(whole))
    }

    fn drop_key(&mut self, key: &(DeviceId, [u8; 32])) {
        if let Some(a) = self.open.remove(key) {
            self.bytes -= a.bytes;
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(key) = self
            .open
            .iter()
            .min_by_key(|(_, a)| a.arrival)
            .map(|(k, _)| *k)
        {
            self.drop_key(&key);
        }
    }

    fn drop_oldest_except(&mut self, keep: &(DeviceId, [u8; 32])) {
        if let Some(key) = self
            .open
            .iter()
            .filter(|(k, _)| *k != keep)
            .min_by_key(|(_, a)| a.arrival)
            .map(|(k, _)| *k)
        {
            self.drop_key(&key);
        }
    }
}
