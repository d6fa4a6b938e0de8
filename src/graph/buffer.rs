//! The causal buffer: verified nodes waiting for dependencies (security-design.md §4.7,
//! `BY_DEP`).
//!
//! Bounded per author and in total, by count and by bytes; when a new node does not fit, the
//! oldest parked nodes go first (the author's own oldest for the per-author bound). An evicted
//! node is simply forgotten: it was never applied, and catch-up (`Want`) asks for it again
//! once its dependencies can be satisfied. Only nodes whose signature verified are parked, so
//! the per-author bound is a bound on what that author really sent: a forger cannot push a
//! member's nodes out by claiming to be them.

use std::collections::{BTreeMap, HashMap};

use super::id::{DeviceId, NodeHash};
use super::limits::{Limits, MAX_NODE_SIZE};
use super::node::VerifiedNode;

/// One parked node.
#[derive(Debug)]
pub(crate) struct Parked {
    pub node: VerifiedNode,
    /// Dependencies not yet applied. Empty once the node is ready.
    pub waiting: Vec<NodeHash>,
    arrival: u64,
    size: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Buffer {
    nodes: HashMap<NodeHash, Parked>,
    /// Missing dependency → parked nodes waiting for it.
    waiters: HashMap<NodeHash, Vec<NodeHash>>,
    /// Arrival number → node, oldest first.
    order: BTreeMap<u64, NodeHash>,
    /// Per author: arrival number → node.
    per_author: HashMap<DeviceId, BTreeMap<u64, NodeHash>>,
    bytes: usize,
    next_arrival: u64,
}

impl Buffer {
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn contains(&self, h: &NodeHash) -> bool {
        self.nodes.contains_key(h)
    }

    pub(crate) fn parked(&self) -> impl Iterator<Item = &Parked> {
        self.nodes.values()
    }

    /// The bytes of every parked node, oldest first.
    pub(crate) fn parked_bytes(&self) -> Vec<Vec<u8>> {
        self.order
            .values()
            .filter_map(|h| self.nodes.get(h))
            .map(|p| p.node.as_bytes().to_vec())
            .collect()
    }

    /// Number of nodes parked for `author`.
    pub(crate) fn author_len(&self, author: &DeviceId) -> usize {
        self.per_author.get(author).map_or(0, BTreeMap::len)
    }

    /// Parks `node`, which waits for `missing` (non-empty, none applied), evicting the oldest
    /// nodes as `limits` require. Returns the evicted hashes.
    pub(crate) fn park(
        &mut self,
        node: VerifiedNode,
        missing: Vec<NodeHash>,
        limits: &Limits,
    ) -> Vec<NodeHash> {
        let author = node.author();
        let size = node.as_bytes().len();
        let mut evicted = Vec::new();
        let per_author = limits.pending_per_author.max(1);
        while self.author_len(&author) >= per_author {
            let Some(oldest) = self
                .per_author
                .get(&author)
                .and_then(|m| m.values().next().copied())
            else {
                break;
            };
            self.remove(&oldest);
            evicted.push(oldest);
        }
        let total = limits.pending_nodes.max(1);
        // A budget below one node would make parking impossible; raise it to one node.
        let bytes = limits.pending_bytes.max(MAX_NODE_SIZE);
        while !self.nodes.is_empty() && (self.nodes.len() >= total || self.bytes + size > bytes) {
            let Some(oldest) = self.order.values().next().copied() else {
                break;
            };
            self.remove(&oldest);
            evicted.push(oldest);
        }
        let hash = node.hash();
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        for m in &missing {
            self.waiters.entry(*m).or_default().push(hash);
        }
        self.order.insert(arrival, hash);
        self.per_author
            .entry(author)
            .or_default()
            .insert(arrival, hash);
        self.bytes += size;
        self.nodes.insert(
            hash,
            Parked {
                node,
                waiting: missing,
                arrival,
                size,
            },
        );
        evicted
    }

    /// Removes a parked node (applied, evicted or invalid), with every index entry of it.
    pub(crate) fn remove(&mut self, h: &NodeHash) -> Option<Parked> {
        let p = self.nodes.remove(h)?;
        self.order.remove(&p.arrival);
        let author = p.node.author();
        if let Some(m) = self.per_author.get_mut(&author) {
            m.remove(&p.arrival);
            if m.is_empty() {
                self.per_author.remove(&author);
            }
        }
        for w in &p.waiting {
            if let Some(list) = self.waiters.get_mut(w) {
                list.retain(|x| x != h);
                if list.is_empty() {
                    self.waiters.remove(w);
                }
            }
        }
        self.bytes -= p.size;
        Some(p)
    }

    /// `dep` was applied: every node waiting for it waits for one dependency less. Returns
    /// the nodes that became ready.
    pub(crate) fn satisfied(&mut self, dep: &NodeHash) -> Vec<NodeHash> {
        let mut ready = Vec::new();
        for h in self.waiters.remove(dep).unwrap_or_default() {
            if let Some(p) = self.nodes.get_mut(&h) {
                p.waiting.retain(|w| w != dep);
                if p.waiting.is_empty() {
                    ready.push(h);
                }
            }
        }
        ready
    }

    /// `dep` was rejected: the nodes waiting for it (they are invalid too).
    pub(crate) fn dependents(&self, dep: &NodeHash) -> Vec<NodeHash> {
        self.waiters.get(dep).cloned().unwrap_or_default()
    }
}
