//! The log: DAG, causal buffer, rejected set and evidence, with the receive pipeline.

use std::collections::{BTreeSet, HashSet, VecDeque};

use super::buffer::Buffer;
use super::dag::{Dag, GraphPast, Shape};
use super::error::GraphError;
use super::id::{DeviceId, GroupId, NodeHash};
use super::limits::{
    Limits, MAX_ANSWER_BYTES, MAX_ANSWER_NODES, MAX_HAVE_HEADS, MAX_REMEMBERED_INVALID, MAX_WANT,
};
use super::node::{KeyCache, SignedNode, VerifiedNode};
use super::skeleton::Skeleton;
use super::sync::{Have, Want};
use super::wire::NodeBody;

/// The state a [`Log`] feeds: it applies each node's payload once the node is verified,
/// causally ready and valid against its causal past.
///
/// This is the extension point for the layers above. [`SignedDoc`](super::SignedDoc) applies
/// [`Payload::Crdt`](super::Payload::Crdt) to a [`Doc`](crate::doc::Doc); the group layer
/// ([`crate::group`]) wraps it, decodes its own [`Payload::Group`](super::Payload::Group)
/// kinds (membership, keys), and runs its validation rules here, with [`Ready::past`] to ask
/// causal questions.
pub trait Apply {
    /// What applying one node produces (for a document: its patches).
    type Effect;

    /// Applies `node`, or refuses it. On `Err` the state must be unchanged; the node is then
    /// invalid, and its hash is remembered so it is never offered again.
    ///
    /// # Errors
    ///
    /// Whatever makes the payload invalid.
    fn apply(&mut self, node: &Ready<'_>) -> Result<Self::Effect, GraphError>;
}

/// A node ready to apply: signature verified, dependencies applied, graph rules passed.
#[derive(Debug)]
pub struct Ready<'a> {
    node: &'a VerifiedNode,
    dag: &'a Dag,
    past: GraphPast<'a>,
}

/// What the log knows about an applied node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeInfo {
    /// The node's hash.
    pub hash: NodeHash,
    /// Its author.
    pub author: DeviceId,
    /// The author's sequence number.
    pub seq: u64,
    /// Lamport counter of its first op.
    pub lamport: u64,
    /// Number of document operations it carries.
    pub op_count: u32,
    /// True if only the node's skeleton is known (see [`Log::insert_skeleton`]): its content
    /// was never seen.
    pub opaque: bool,
}

impl Ready<'_> {
    /// The node's hash.
    pub fn hash(&self) -> NodeHash {
        self.node.hash()
    }

    /// The node's body.
    pub fn body(&self) -> &NodeBody {
        self.node.body()
    }

    /// The node's causal past (its ancestors), exact even across forks.
    pub fn past(&self) -> &GraphPast<'_> {
        &self.past
    }

    /// An applied node, by hash (for resolving references in the payload).
    pub fn lookup(&self, hash: &NodeHash) -> Option<NodeInfo> {
        info(self.dag, hash)
    }
}

fn info(dag: &Dag, hash: &NodeHash) -> Option<NodeInfo> {
    let e = dag.get(hash)?;
    Some(NodeInfo {
        hash: *hash,
        author: dag.author(e.author)?,
        seq: e.seq,
        lamport: e.lamport,
        op_count: e.ops,
        opaque: e.opaque,
    })
}

/// Result of [`Log::receive`].
#[derive(Debug, PartialEq)]
#[must_use]
#[non_exhaustive]
pub enum Outcome<E> {
    /// The node was applied, followed by any parked nodes it unblocked (within the drain
    /// budget); their effects, in order.
    Applied(Vec<E>),
    /// The node is parked until these dependencies (not yet applied; some may be parked
    /// themselves) are applied. [`Log::want`] lists what to ask peers for.
    Pending {
        /// Dependencies not yet applied.
        missing: Vec<NodeHash>,
    },
    /// The node was already applied or parked; nothing changed.
    Duplicate,
}

/// Result of [`Log::drain`].
#[derive(Debug, PartialEq)]
#[must_use]
#[non_exhaustive]
pub struct Drained<E> {
    /// Effects of the nodes applied, in order.
    pub effects: Vec<E>,
    /// Ready nodes still waiting for a later call.
    pub remaining: usize,
}

/// Hashes of rejected nodes, oldest forgotten first.
#[derive(Debug, Default)]
struct Rejected {
    set: HashSet<NodeHash>,
    order: VecDeque<NodeHash>,
}

impl Rejected {
    fn insert(&mut self, h: NodeHash) {
        if self.set.insert(h) {
            self.order.push_back(h);
            while self.order.len() > MAX_REMEMBERED_INVALID {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// Two or more different, validly signed nodes by one author with one sequence number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub struct Equivocation {
    /// The author who signed them.
    pub author: DeviceId,
    /// The sequence number they share.
    pub seq: u64,
    /// Their hashes, sorted ascending (at least two).
    pub nodes: Vec<NodeHash>,
}

/// The signed operation graph of one group on one replica.
///
/// Holds the DAG of applied nodes (with heads, per-author chains and equivocation evidence),
/// the causal buffer of verified nodes waiting for dependencies, and the hashes of rejected
/// nodes. It does not own the state the nodes build: every call that may apply nodes takes an
/// [`Apply`].
///
/// # Call order
///
/// * [`Log::receive`] for every node that arrives. It applies the node and then parked nodes
///   it unblocks, at most [`Limits::drain_per_call`] nodes in all.
/// * If [`Log::ready_len`] is then non-zero, call [`Log::drain`] (each call does at most the
///   same budget of work) until it is zero. Nothing else drains leftover work.
/// * Catch-up: send [`Log::have`] now and then, and [`Log::want`] when nodes are parked;
///   answer peers with [`Log::answer_have`] and [`Log::answer_want`].
#[derive(Debug)]
pub struct Log {
    group: GroupId,
    limits: Limits,
    dag: Dag,
    buffer: Buffer,
    rejected: Rejected,
    /// Parked nodes whose dependencies are all applied, in the order they became ready.
    ready: VecDeque<NodeHash>,
    keys: KeyCache,
}

impl Log {
    /// An empty log for `group` with default [`Limits`].
    pub fn new(group: GroupId) -> Self {
        Self::with_limits(group, Limits::default())
    }

    /// An empty log with the given budgets.
    pub fn with_limits(group: GroupId, limits: Limits) -> Self {
        Log {
            group,
            limits,
            dag: Dag::default(),
            buffer: Buffer::default(),
            rejected: Rejected::default(),
            ready: VecDeque::new(),
            keys: KeyCache::default(),
        }
    }

    // ---- Getters --------------------------------------------------------------------------

    /// The group.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The budgets.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Number of applied nodes.
    pub fn len(&self) -> usize {
        self.dag.len()
    }

    /// True if no node was applied.
    pub fn is_empty(&self) -> bool {
        self.dag.len() == 0
    }

    /// True if node `hash` was applied.
    pub fn contains(&self, hash: &NodeHash) -> bool {
        self.dag.contains(hash)
    }

    /// An applied node.
    pub fn info(&self, hash: &NodeHash) -> Option<NodeInfo> {
        info(&self.dag, hash)
    }

    /// The bytes of an applied node, exactly as received or made (`None` for an opaque node).
    pub fn node_bytes(&self, hash: &NodeHash) -> Option<&[u8]> {
        self.dag
            .get(hash)
            .filter(|e| !e.opaque)
            .map(|e| &e.bytes[..])
    }

    /// True if node `ancestor` is node `of` or in its causal past (both applied or opaque).
    pub fn is_ancestor(&self, ancestor: &NodeHash, of: &NodeHash) -> bool {
        match (self.dag.idx(ancestor), self.dag.idx(of)) {
            (Some(a), Some(b)) => self.dag.is_ancestor(a, b),
            _ => false,
        }
    }

    /// True if `hash` is an opaque node (only its skeleton is known).
    pub fn is_opaque(&self, hash: &NodeHash) -> bool {
        self.dag.get(hash).is_some_and(|e| e.opaque)
    }

    /// The skeleton of an applied or opaque node.
    pub fn skeleton(&self, hash: &NodeHash) -> Option<Skeleton> {
        let e = self.dag.get(hash)?;
        let deps = e
            .deps
            .iter()
            .filter_map(|&i| self.dag.entry(i).map(|d| d.hash))
            .collect();
        Some(Skeleton::new(
            e.hash,
            self.dag.author(e.author)?,
            e.seq,
            e.lamport,
            e.ops,
            deps,
        ))
    }

    /// Whether `node` names this log's group: its group field is the log's group, or the node
    /// is the group's genesis (group field [`GroupId::GENESIS`], hash equal to the group id).
    fn check_group(&self, node: &SignedNode) -> Result<(), GraphError> {
        let found = node.body().group;
        if found == self.group || (found == GroupId::GENESIS && self.group.is_genesis(&node.hash()))
        {
            return Ok(());
        }
        Err(GraphError::WrongGroup {
            expected: self.group,
            found,
        })
    }

    /// Hashes of all applied nodes, in the order they were applied (a topological order).
    pub fn hashes(&self) -> impl Iterator<Item = NodeHash> + '_ {
        self.dag.entries().iter().map(|e| e.hash)
    }

    /// The heads: applied nodes no applied node depends on, sorted.
    pub fn heads(&self) -> Vec<NodeHash> {
        self.dag.heads().iter().copied().collect()
    }

    /// Every equivocation seen: same author and sequence number, different nodes. Sorted, so
    /// two replicas that applied the same nodes report the same evidence.
    pub fn evidence(&self) -> Vec<Equivocation> {
        let mut out: Vec<Equivocation> = self
            .dag
            .forks()
            .map(|(author, seq, nodes)| Equivocation {
                author,
                seq,
                nodes: nodes.to_vec(),
            })
            .collect();
        out.sort();
        out
    }

    /// Number of parked nodes.
    pub fn pending_len(&self) -> usize {
        self.buffer.len()
    }

    /// Bytes of parked nodes.
    pub fn pending_bytes(&self) -> usize {
        self.buffer.bytes()
    }

    /// Number of parked nodes by `author`.
    pub fn pending_len_of(&self, author: &DeviceId) -> usize {
        self.buffer.author_len(author)
    }

    /// True if `hash` is parked.
    pub fn is_pending(&self, hash: &NodeHash) -> bool {
        self.buffer.contains(hash)
    }

    /// Parked nodes ready to apply, waiting for [`Log::drain`].
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// True if `hash` was rejected as invalid (and is still remembered).
    pub fn is_invalid(&self, hash: &NodeHash) -> bool {
        self.rejected.set.contains(hash)
    }

    /// Number of rejected hashes remembered.
    pub fn invalid_len(&self) -> usize {
        self.rejected.set.len()
    }

    // ---- Receiving ------------------------------------------------------------------------

    /// Handles one signed node from a peer (untrusted bytes).
    ///
    /// In order: strict decoding; duplicate (applied or parked) → `Duplicate`; rejected before
    /// → `KnownInvalid`; group; `verify_strict`; a rejected dependency → invalid; missing
    /// dependencies → parked, `Pending`; validation against the causal past and `state`'s
    /// [`Apply::apply`] → applied, then parked nodes it unblocked are drained (at most
    /// [`Limits::drain_per_call`] nodes in all, this one included; see [`Log::drain`]).
    ///
    /// # Errors
    ///
    /// A [`GraphError`]; nothing changed, except that an invalid node's hash (and those of
    /// parked nodes depending on it) is remembered.
    pub fn receive<A: Apply>(
        &mut self,
        bytes: &[u8],
        state: &mut A,
    ) -> Result<Outcome<A::Effect>, GraphError> {
        self.receive_decoded(SignedNode::decode(bytes)?, state)
    }

    /// [`Log::receive`] for a node the caller has already decoded (the group layer decodes it
    /// to check its context first; decoding and hashing it again would be wasted work).
    ///
    /// # Errors
    ///
    /// As for [`Log::receive`], less the decoding errors.
    pub fn receive_decoded<A: Apply>(
        &mut self,
        node: SignedNode,
        state: &mut A,
    ) -> Result<Outcome<A::Effect>, GraphError> {
        self.receive_checked(node, state, true)
    }

    /// [`Log::receive_decoded`] for a node read back from this replica's own store, which
    /// verified its signature before keeping it: the signature is not verified again (the
    /// dominant cost of reopening a large replica). Every other rule is checked.
    pub(crate) fn receive_stored<A: Apply>(
        &mut self,
        node: SignedNode,
        state: &mut A,
    ) -> Result<Outcome<A::Effect>, GraphError> {
        self.receive_checked(node, state, false)
    }

    fn receive_checked<A: Apply>(
        &mut self,
        node: SignedNode,
        state: &mut A,
        verify: bool,
    ) -> Result<Outcome<A::Effect>, GraphError> {
        let hash = node.hash();
        if self.dag.contains(&hash) || self.buffer.contains(&hash) {
            return Ok(Outcome::Duplicate);
        }
        if self.is_invalid(&hash) {
            return Err(GraphError::KnownInvalid { hash });
        }
        self.check_group(&node)?;
        let node = if verify {
            node.verify_cached(&mut self.keys)?
        } else {
            node.stored()
        };
        if let Some(&dep) = node.body().deps.iter().find(|d| self.is_invalid(d)) {
            self.reject(hash);
            return Err(GraphError::DependsOnInvalid { dep });
        }
        let missing: Vec<NodeHash> = node
            .body()
            .deps
            .iter()
            .filter(|d| !self.dag.contains(d))
            .copied()
            .collect();
        if !missing.is_empty() {
            let _evicted = self.buffer.park(node, missing.clone(), &self.limits);
            return Ok(Outcome::Pending { missing });
        }
        let mut effects = vec![self.integrate(node, state)?];
        let budget = self.limits.drain_per_call.max(1) - 1;
        self.drain_up_to(state, budget, &mut effects);
        Ok(Outcome::Applied(effects))
    }

    /// Applies parked nodes that became ready, at most [`Limits::drain_per_call`] of them.
    /// Call it while [`Log::ready_len`] is non-zero; only this method finishes work that
    /// `receive` left over. Invalid nodes met on the way are rejected and remembered.
    pub fn drain<A: Apply>(&mut self, state: &mut A) -> Drained<A::Effect> {
        let mut effects = Vec::new();
        self.drain_up_to(state, self.limits.drain_per_call.max(1), &mut effects);
        Drained {
            effects,
            remaining: self.ready.len(),
        }
    }

    fn drain_up_to<A: Apply>(
        &mut self,
        state: &mut A,
        budget: usize,
        effects: &mut Vec<A::Effect>,
    ) {
        let mut done = 0;
        while done < budget {
            let Some(h) = self.ready.pop_front() else {
                break;
            };
            // Evicted or rejected since it became ready: nothing to do.
            let Some(parked) = self.buffer.remove(&h) else {
                continue;
            };
            done += 1;
            if let Ok(e) = self.integrate(parked.node, state) {
                effects.push(e);
            }
        }
    }

    /// Validates and applies a node whose dependencies are all applied; on success inserts it
    /// and queues the parked nodes it unblocks; on failure rejects it (except for
    /// [`GraphError::NotApplied`], which drops it without remembering it).
    fn integrate<A: Apply>(
        &mut self,
        node: VerifiedNode,
        state: &mut A,
    ) -> Result<A::Effect, GraphError> {
        let hash = node.hash();
        let checked = match self.dag.check(&Shape::of(&node)) {
            Ok(c) => c,
            Err(e) => {
                self.reject(hash);
                return Err(e);
            }
        };
        let result = {
            let ready = Ready {
                node: &node,
                dag: &self.dag,
                past: self.dag.past(&checked),
            };
            state.apply(&ready)
        };
        match result {
            Ok(effect) => {
                self.dag.insert(node, checked);
                self.ready.extend(self.buffer.satisfied(&hash));
                Ok(effect)
            }
            Err(e @ GraphError::NotApplied(_)) => Err(e),
            Err(e) => {
                self.reject(hash);
                Err(e)
            }
        }
    }

    /// Remembers `hash` as invalid, and every parked node that depends on it, transitively.
    fn reject(&mut self, hash: NodeHash) {
        let mut work = vec![hash];
        while let Some(h) = work.pop() {
            self.rejected.insert(h);
            for d in self.buffer.dependents(&h) {
                if self.buffer.remove(&d).is_some() {
                    work.push(d);
                }
            }
        }
    }

    /// The signed bytes of every node waiting in the causal buffer, oldest first (for the
    /// replica's snapshot: they are fed again on restore).
    pub(crate) fn buffered_bytes(&self) -> Vec<Vec<u8>> {
        self.buffer.parked_bytes()
    }

    /// Inserts a node this replica just made and applied itself (its payload is already in
    /// the state). Checked like any other node, except that its signature (made by `signer`
    /// a moment ago) is not verified again.
    pub(crate) fn insert_local(
        &mut self,
        bytes: &[u8],
        signer: &DeviceId,
    ) -> Result<NodeHash, GraphError> {
        let node = SignedNode::decode(bytes)?;
        self.check_group(&node)?;
        let node = node.signed_by_us(signer)?;
        if self.dag.contains(&node.hash()) {
            return Err(GraphError::Internal("local node already in the graph"));
        }
        let hash = node.hash();
        let checked = self.dag.check(&Shape::of(&node))?;
        self.dag.insert(node, checked);
        self.ready.extend(self.buffer.satisfied(&hash));
        Ok(hash)
    }

    /// Inserts a node's skeleton: the node is then in the graph as an *opaque* node, known by
    /// its place but not its content (see [`Skeleton`]). Returns `false` if the node was already in the graph.
    ///
    /// A skeleton cannot be authenticated: call this only with skeletons from a source the
    /// caller trusts (the group layer takes them only from the welcome an admin signed). Its
    /// structure is checked like a node's: every dependency applied, the sequence, previous
    /// node and Lamport rules. Nothing is applied to any state; opaque nodes are never offered
    /// to peers and never replayed.
    ///
    /// # Errors
    ///
    /// [`GraphError::MissingDependency`], or the graph rule broken; nothing changes.
    pub fn insert_skeleton(&mut self, s: &Skeleton) -> Result<bool, GraphError> {
        if self.dag.contains(&s.hash) {
            return Ok(false);
        }
        if let Some(&dep) = s.deps.iter().find(|d| !self.dag.contains(d)) {
            return Err(GraphError::MissingDependency { dep });
        }
        let shape = Shape {
            hash: s.hash,
            author: s.author,
            seq: s.seq,
            lamport: s.lamport,
            lamport_end: s.lamport_end(),
            ops: s.ops,
            deps: &s.deps,
        };
        let checked = self.dag.check(&shape)?;
        // A parked copy of the node itself is superseded by the skeleton.
        let _ = self.buffer.remove(&s.hash);
        self.dag.insert_shape(&shape, checked, true);
        self.ready.extend(self.buffer.satisfied(&s.hash));
        Ok(true)
    }

    /// What a local node by `author` must carry: its sequence number and its dependencies
    /// (the heads plus the author's previous node, sorted and unique).
    pub(crate) fn local_deps(
        &self,
        author: &DeviceId,
    ) -> Result<(u64, Option<NodeHash>, Vec<NodeHash>), GraphError> {
        let latest = self.dag.latest_of(author);
        let seq = latest
            .map_or(0, |l| l.0)
            .checked_add(1)
            .ok_or(GraphError::CounterOverflow)?;
        let prev = latest.map(|l| l.1);
        let mut deps: BTreeSet<NodeHash> = self.dag.heads().clone();
        deps.extend(prev);
        Ok((seq, prev, deps.into_iter().collect()))
    }

    /// 1 + the greatest last counter among `deps`.
    pub(crate) fn lamport_after(&self, deps: &[NodeHash]) -> Result<u64, GraphError> {
        self.dag.lamport_after(deps)
    }

    /// The Lamport counter the next local node by `author` will carry (merge nodes, if any,
    /// do not change it).
    pub(crate) fn next_lamport(&self, author: &DeviceId) -> Result<u64, GraphError> {
        let (_, _, deps) = self.local_deps(author)?;
        self.dag.lamport_after(&deps)
    }

    /// Feeds every applied node, in order, to `state` again (to rebuild it from the graph).
    /// Opaque nodes are skipped.
    pub(crate) fn replay<A: Apply>(&self, state: &mut A) -> Result<(), GraphError> {
        for e in self.dag.entries().iter().filter(|e| !e.opaque) {
            let node = SignedNode::decode(&e.bytes)?.verify()?;
            let checked = self.dag.check_existing(e);
            let ready = Ready {
                node: &node,
                dag: &self.dag,
                past: self.dag.past(&checked),
            };
            state.apply(&ready)?;
        }
        Ok(())
    }

    // ---- Catch-up -------------------------------------------------------------------------

    /// My heads, for a peer to answer with what I lack. With more than
    /// [`MAX_HAVE_HEADS`] heads, a subset: the answer is then a
    /// superset of what is missing.
    pub fn have(&self) -> Have {
        Have {
            group: self.group,
            heads: self
                .dag
                .heads()
                .iter()
                .take(MAX_HAVE_HEADS)
                .copied()
                .collect(),
        }
    }

    /// The nodes a peer that sent `have` lacks: every applied node not in the causal past of
    /// its heads (heads this replica does not know are ignored), in an order in which they can
    /// be applied, at most [`MAX_ANSWER_NODES`] nodes and
    /// [`MAX_ANSWER_BYTES`] bytes (at least one node). The peer
    /// applies them and sends a new `Have` for the rest.
    ///
    /// # Errors
    ///
    /// [`GraphError::WrongGroup`].
    pub fn answer_have(&self, have: &Have) -> Result<Vec<Vec<u8>>, GraphError> {
        if have.group != self.group {
            return Err(GraphError::WrongGroup {
                expected: self.group,
                found: have.group,
            });
        }
        let theirs: BTreeSet<NodeHash> = have.heads.iter().copied().collect();
        if self.dag.heads().iter().all(|h| theirs.contains(h)) {
            return Ok(Vec::new());
        }
        let known = have.heads.iter().filter_map(|h| self.dag.idx(h));
        let seen = self.dag.mark_past(known);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (e, _) in self
            .dag
            .entries()
            .iter()
            .zip(&seen)
            .filter(|(e, s)| !**s && !e.opaque)
        {
            if out.len() >= MAX_ANSWER_NODES
                || (!out.is_empty() && bytes + e.bytes.len() > MAX_ANSWER_BYTES)
            {
                break;
            }
            bytes += e.bytes.len();
            out.push(e.bytes.to_vec());
        }
        Ok(out)
    }

    /// The dependencies parked nodes wait for that are neither applied, parked nor rejected:
    /// what to ask peers for. At most [`MAX_WANT`], sorted.
    pub fn want(&self) -> Want {
        let mut hashes = BTreeSet::new();
        for p in self.buffer.parked() {
            for w in &p.waiting {
                if !self.dag.contains(w) && !self.buffer.contains(w) && !self.is_invalid(w) {
                    hashes.insert(*w);
                }
            }
        }
        Want {
            group: self.group,
            hashes: hashes.into_iter().take(MAX_WANT).collect(),
        }
    }

    /// The bytes of the wanted nodes this replica has applied (parked nodes are not sent: they
    /// are not validated yet; opaque nodes have no bytes), at most [`MAX_ANSWER_BYTES`] (at
    /// least one node).
    ///
    /// # Errors
    ///
    /// [`GraphError::WrongGroup`].
    pub fn answer_want(&self, want: &Want) -> Result<Vec<Vec<u8>>, GraphError> {
        if want.group != self.group {
            return Err(GraphError::WrongGroup {
                expected: self.group,
                found: want.group,
            });
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for b in want.hashes.iter().filter_map(|h| self.node_bytes(h)) {
            if !out.is_empty() && bytes + b.len() > MAX_ANSWER_BYTES {
                break;
            }
            bytes += b.len();
            out.push(b.to_vec());
        }
        Ok(out)
    }
}
