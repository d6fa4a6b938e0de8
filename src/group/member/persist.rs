//! Saving and restoring a [`Member`] for the replica's store (crate-internal).
//!
//! A member is saved as what it was built from, not as its in-memory structures: the graph's
//! entries in the order they were applied (signed nodes, and skeletons for a `FutureOnly`
//! joiner), the epoch secrets it holds, and the input still waiting (nodes in the causal
//! buffer, parked envelopes). Restoring feeds the entries through the same validation as any
//! node, except the signature check (they were verified before they were stored, and the store
//! authenticates them under the application's storage key), so the membership fold, epochs,
//! whiteout and document come out exactly as a replica with the same nodes computes them.

use super::*;
use crate::graph::Skeleton;

/// A device's two secrets: the Ed25519 seed and the X25519 KEM secret.
pub(crate) type DeviceSecrets = (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>);

/// One entry of the graph, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A signed node, as received or made.
    Node(Vec<u8>),
    /// An opaque node (a `FutureOnly` joiner's view of history before its join).
    Skeleton(Skeleton),
}

/// The input a member still waits on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Waiting {
    /// Signed nodes in the causal buffer, oldest first.
    pub nodes: Vec<Vec<u8>>,
    /// Parked group envelopes, oldest first.
    pub envelopes: Vec<Vec<u8>>,
}

impl Member {
    /// An empty member of `group`: no node applied yet. The restore path fills it.
    pub(crate) fn empty(
        device: Device,
        kem: DeviceKemSecret,
        config: Config,
        group: GroupId,
        joined_at: Option<NodeHash>,
    ) -> Member {
        let me = device.id();
        Member {
            inner: SignedDoc::with_limits(device, group, config.graph_limits()),
            kem,
            state: GroupState::new(group, me),
            config,
            seen: Seen::new(MAX_SEEN_ENVELOPES),
            park: Park::new(
                config.parked_envelopes,
                config.parked_bytes,
                config.parked_per_epoch,
            ),
            assembler: Assembler::default(),
            joined_at,
            unsent: Outbound::default(),
            forwarded: HashSet::new(),
            held_forwards: VecDeque::new(),
            forward_gen: None,
            danger_skip_local_checks: false,
            whiteout_gen: 0,
        }
    }

    /// The device's secret keys, for the replica's encrypted device blob.
    pub(crate) fn device_secrets(&self) -> DeviceSecrets {
        (self.inner.device.seed(), self.kem.to_secret_bytes())
    }

    /// Moves on whenever the membership is resolved again (a control op applied): a caller
    /// that saw the same value has seen the same members and roles.
    pub(crate) fn membership_gen(&self) -> u64 {
        self.state.resolution_gen
    }

    /// Moves on whenever an epoch secret is learned or replaced: a caller that saw the same
    /// value has seen the same [`Member::epoch_secrets`].
    pub(crate) fn key_gen(&self) -> u64 {
        self.state.root_gen
    }

    /// How many entries the graph holds (entries are only ever appended).
    pub(crate) fn entry_count(&self) -> usize {
        self.inner.log().len()
    }

    /// The graph's entries from position `from` on, in the order they were applied.
    pub(crate) fn entries_from(&self, from: usize) -> Result<Vec<Entry>, GroupError> {
        let log = self.inner.log();
        let mut out = Vec::with_capacity(log.len().saturating_sub(from));
        for h in log.hashes().skip(from) {
            let entry = match log.node_bytes(&h) {
                Some(b) if !log.is_opaque(&h) => Entry::Node(b.to_vec()),
                _ => Entry::Skeleton(log.skeleton(&h).ok_or(PeerMisbehaved::UnknownNode(h))?),
            };
            out.push(entry);
        }
        Ok(out)
    }

    /// Every epoch secret this member holds, by epoch id.
    pub(crate) fn epoch_secrets(&self) -> Vec<(EpochId, Zeroizing<[u8; 32]>)> {
        let mut out = Vec::new();
        let mut e = 0u32;
        while let Some(rec) = self.state.epoch(e) {
            if let Some(s) = self.state.secret(e) {
                out.push((rec.id, s.to_bytes()));
            }
            e += 1;
        }
        out
    }

    /// The input still waiting: causal buffer and parked envelopes.
    pub(crate) fn waiting(&self) -> Waiting {
        Waiting {
            nodes: self.inner.log().buffered_bytes(),
            envelopes: self.park.parked_bytes(),
        }
    }

    /// Applies stored entries, in order, without verifying signatures again.
    ///
    /// # Errors
    ///
    /// The first entry that does not apply (the store is then not what this replica wrote).
    pub(crate) fn restore_entries(&mut self, entries: &[Entry]) -> Result<(), GroupError> {
        for entry in entries {
            match entry {
                Entry::Node(b) => {
                    let node = SignedNode::decode(b).map_err(|e| GroupError::Graph(e.into()))?;
                    self.state.last_error = None;
                    let mut ga = GroupApply {
                        state: &mut self.state,
                        doc: &mut self.inner.doc,
                        skipped: &mut self.inner.skipped,
                        whiteout: &mut self.inner.whiteout,
                        kem: &self.kem,
                    };
                    match self.inner.log.receive_stored(node, &mut ga) {
                        Ok(Outcome::Applied(_) | Outcome::Duplicate) => {}
                        Ok(Outcome::Pending { .. }) => {
                            return Err(GraphError::Internal("stored node out of order").into())
                        }
                        Err(e) => return Err(self.graph_error(e)),
                    }
                }
                Entry::Skeleton(s) => {
                    self.inner.log.insert_skeleton(s)?;
                    self.state.opaque = true;
                }
            }
        }
        // A removal among these entries may void content applied before it (whiteout).
        self.settle_whiteout();
        Ok(())
    }

    /// Records stored epoch secrets (those the graph alone does not give: forwarded ones), in
    /// the order stored. Secrets of epochs the graph does not have, or whose key the graph
    /// gives, are ignored. A restored secret is provisional again, as a forwarded secret is
    /// until an envelope confirms it: a later stored secret for the same epoch (a forward
    /// that replaced it) replaces it.
    pub(crate) fn restore_secrets(&mut self, secrets: Vec<(EpochId, Zeroizing<[u8; 32]>)>) {
        let from_graph: HashSet<u32> = (0..self.state.epochs.len() as u32)
            .filter(|&e| self.state.has_root(e))
            .collect();
        for (id, bytes) in secrets {
            if let Some(e) = self.state.epoch_by_id(&id) {
                if !from_graph.contains(&e) {
                    let _ = self
                        .state
                        .learn_forwarded(e, EpochSecret::from_bytes(bytes));
                }
            }
        }
    }

    /// Feeds nodes that were waiting in the causal buffer again after a restore (they wait
    /// again, or apply if what they waited for is now here). A node now refused is dropped:
    /// it would be refused anyway.
    pub(crate) fn restore_waiting(&mut self, nodes: &[Vec<u8>]) {
        for b in nodes {
            let _ = self.receive_node(b);
        }
        while self.backlog() > 0 {
            let _ = self.drain();
        }
    }
}

/// A member can move to another thread (an application's sync task, a UI worker).
#[allow(dead_code)]
fn member_is_send() {
    fn send<T: std::marker::Send>() {}
    send::<Member>();
    send::<super::super::Joiner>();
}
