//! The hash-linked DAG of applied nodes, and exact causal-past queries over it.
//!
//! Nodes are stored in an arena in the order they were applied, which is a topological order
//! (a node is applied only after all its dependencies). Each node keeps its dependencies as
//! arena indexes and a *version vector*: for each author, the greatest sequence number among
//! that author's nodes in the node's causal past, itself included.
//!
//! Causal-past queries are answered by [`GraphPast`], whose docs explain why they are exact.

use std::cell::RefCell;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};

use super::error::GraphError;
use super::id::{DeviceId, NodeHash};
use super::node::VerifiedNode;
use crate::doc::{ActorId, CausalPast};

/// Index of a node in the arena.
pub(crate) type Idx = u32;

/// A version vector: `(author index, greatest sequence number)`, sorted by author index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Vv(Box<[(u32, u64)]>);

impl Vv {
    pub(crate) fn get(&self, author: u32) -> u64 {
        self.0
            .binary_search_by_key(&author, |e| e.0)
            .map_or(0, |i| self.0.get(i).map_or(0, |e| e.1))
    }

    /// Entry-wise maximum of `vvs`, plus `extra`.
    fn merge<'a>(vvs: impl Iterator<Item = &'a Vv>, extra: Option<(u32, u64)>) -> Vv {
        let mut all: Vec<(u32, u64)> = vvs.flat_map(|v| v.0.iter().copied()).chain(extra).collect();
        // Sorted by author, greatest sequence first, then keep the first of each author.
        all.sort_unstable_by(|x, y| x.0.cmp(&y.0).then(y.1.cmp(&x.1)));
        all.dedup_by_key(|e| e.0);
        Vv(all.into_boxed_slice())
    }
}

/// One applied node.
#[derive(Debug)]
pub(crate) struct Entry {
    pub hash: NodeHash,
    pub author: u32,
    pub seq: u64,
    pub lamport: u64,
    /// Counter of the last op; `lamport − 1` for a merge node.
    pub lamport_end: u64,
    pub ops: u32,
    pub deps: Box<[Idx]>,
    /// Version vector of the node's causal past, itself included.
    pub vv: Vv,
    /// The signed node exactly as received, to answer catch-up requests. Empty for an
    /// opaque node (a skeleton: structure known, content never seen).
    pub bytes: Box<[u8]>,
    /// True for a skeleton.
    pub opaque: bool,
}

/// The structure of a node that [`Dag::check`] validates and [`Dag::insert`] records: all a
/// node contributes to the graph besides its bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape<'a> {
    pub hash: NodeHash,
    pub author: DeviceId,
    pub seq: u64,
    pub lamport: u64,
    pub lamport_end: u64,
    pub ops: u32,
    pub deps: &'a [NodeHash],
}

impl<'a> Shape<'a> {
    pub(crate) fn of(node: &'a VerifiedNode) -> Self {
        let body = node.body();
        Shape {
            hash: node.hash(),
            author: body.author,
            seq: body.seq,
            lamport: body.lamport,
            lamport_end: body.lamport_end(),
            // At most MAX_OPS_PER_NODE.
            ops: u32::try_from(body.op_count()).unwrap_or(u32::MAX),
            deps: &body.deps,
        }
    }
}

/// What [`Dag::check`] learned about a node that passed: its place in the graph.
#[derive(Debug)]
pub(crate) struct Checked {
    deps: Box<[Idx]>,
    /// Version vector of the node's dependencies (the node itself not included).
    vv_deps: Vv,
}

/// The DAG of applied nodes.
#[derive(Debug, Default)]
pub(crate) struct Dag {
    nodes: Vec<Entry>,
    index: HashMap<NodeHash, Idx>,
    authors: Vec<DeviceId>,
    author_index: HashMap<DeviceId, u32>,
    /// The first node applied at each `(author, seq)`.
    by_seq: HashMap<(u32, u64), Idx>,
    /// Every node at an `(author, seq)` that holds more than one: equivocation. Hashes sorted.
    forks: HashMap<(u32, u64), Vec<NodeHash>>,
    /// Per author index: greatest sequence number applied.
    author_max: Vec<u64>,
    /// Nodes that no other node depends on, in hash order.
    heads: BTreeSet<NodeHash>,
}

impl Dag {
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn contains(&self, h: &NodeHash) -> bool {
        self.index.contains_key(h)
    }

    pub(crate) fn idx(&self, h: &NodeHash) -> Option<Idx> {
        self.index.get(h).copied()
    }

    pub(crate) fn entry(&self, i: Idx) -> Option<&Entry> {
        self.nodes.get(i as usize)
    }

    pub(crate) fn get(&self, h: &NodeHash) -> Option<&Entry> {
        self.idx(h).and_then(|i| self.entry(i))
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.nodes
    }

    pub(crate) fn author(&self, i: u32) -> Option<DeviceId> {
        self.authors.get(i as usize).copied()
    }

    pub(crate) fn heads(&self) -> &BTreeSet<NodeHash> {
        &self.heads
    }

    pub(crate) fn forks(&self) -> impl Iterator<Item = (DeviceId, u64, &[NodeHash])> + '_ {
        self.forks
            .iter()
            .filter_map(|(&(a, s), v)| Some((self.author(a)?, s, v.as_slice())))
    }

    /// The greatest sequence number of `author` applied, and the first node applied with it.
    pub(crate) fn latest_of(&self, author: &DeviceId) -> Option<(u64, NodeHash)> {
        let a = *self.author_index.get(author)?;
        let seq = *self.author_max.get(a as usize)?;
        let i = *self.by_seq.get(&(a, seq))?;
        Some((seq, self.entry(i)?.hash))
    }

    /// 1 + the greatest last counter among `deps` (all of which must be applied).
    pub(crate) fn lamport_after(&self, deps: &[NodeHash]) -> Result<u64, GraphError> {
        let mut max = 0;
        for d in deps {
            let e = self
                .get(d)
                .ok_or(GraphError::Internal("dependency not in the graph"))?;
            max = max.max(e.lamport_end);
        }
        max.checked_add(1).ok_or(GraphError::CounterOverflow)
    }

    /// Validates `node` against its causal past: every dependency applied, the sequence rule,
    /// the previous-node rule, and the Lamport rule. Changes nothing.
    pub(crate) fn check(&self, body: &Shape<'_>) -> Result<Checked, GraphError> {
        let mut deps = Vec::with_capacity(body.deps.len());
        let mut max_end = 0u64;
        for d in body.deps {
            let i = self.idx(d).ok_or(GraphError::Internal(
                "checked a node whose dependencies are missing",
            ))?;
            deps.push(i);
            if let Some(e) = self.entry(i) {
                max_end = max_end.max(e.lamport_end);
            }
        }
        let vv_deps = Vv::merge(
            deps.iter().filter_map(|&i| self.entry(i)).map(|e| &e.vv),
            None,
        );
        let author = body.author;
        let a = self.author_index.get(&author).copied();
        let seen = a.map_or(0, |a| vv_deps.get(a));
        let seq = body.seq;
        // 1. Sequence: exactly one more than the author's greatest in the causal past.
        if seen >= seq {
            return Err(GraphError::SequenceRegressed { author, seq, seen });
        }
        if seen + 1 != seq {
            return Err(GraphError::SequenceSkipped {
                author,
                seq,
                expected: seen + 1,
            });
        }
        // 2. The author's previous node is named directly.
        if seq > 1 {
            let named = deps
                .iter()
                .filter_map(|&i| self.entry(i))
                .any(|e| Some(e.author) == a && e.seq == seq - 1);
            if !named {
                return Err(GraphError::PreviousNotInDeps { author, seq });
            }
        }
        // 3. Lamport: one more than the greatest counter it depends on.
        let expected = max_end.checked_add(1).ok_or(GraphError::CounterOverflow)?;
        if body.lamport != expected {
            return Err(GraphError::LamportMismatch {
                lamport: body.lamport,
                expected,
            });
        }
        Ok(Checked {
            deps: deps.into_boxed_slice(),
            vv_deps,
        })
    }

    /// The [`Checked`] form of a node already in the graph (to replay it).
    pub(crate) fn check_existing(&self, e: &Entry) -> Checked {
        let vv_deps = Vv::merge(
            e.deps.iter().filter_map(|&i| self.entry(i)).map(|d| &d.vv),
            None,
        );
        Checked {
            deps: e.deps.clone(),
            vv_deps,
        }
    }

    /// The causal past of a node about to be applied, as checked.
    pub(crate) fn past<'a>(&'a self, checked: &'a Checked) -> GraphPast<'a> {
        GraphPast::new(self, &checked.deps, &checked.vv_deps)
    }

    /// Adds a checked node (keeping its bytes, not a copy) and returns its index.
    pub(crate) fn insert(&mut self, node: VerifiedNode, checked: Checked) -> Idx {
        let i = self.insert_shape(&Shape::of(&node), checked, false);
        if let Some(e) = self.nodes.get_mut(i as usize) {
            e.bytes = node.into_bytes();
        }
        i
    }

    /// Adds a checked node's structure; its bytes are empty until [`Dag::insert`] sets them,
    /// or stay empty for an opaque node.
    pub(crate) fn insert_shape(&mut self, body: &Shape<'_>, checked: Checked, opaque: bool) -> Idx {
        let hash = body.hash;
        let a = match self.author_index.get(&body.author) {
            Some(&a) => a,
            None => {
                // Invariant: fewer than u32::MAX authors (each needs a node of at most
                // MAX_NODE_SIZE bytes in memory); saturate rather than panic.
                let a = u32::try_from(self.authors.len()).unwrap_or(u32::MAX);
                self.authors.push(body.author);
                self.author_max.push(0);
                self.author_index.insert(body.author, a);
                a
            }
        };
        let i = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        let vv = Vv::merge(std::iter::once(&checked.vv_deps), Some((a, body.seq)));
        for &d in checked.deps.iter() {
            if let Some(e) = self.nodes.get(d as usize) {
                self.heads.remove(&e.hash);
            }
        }
        self.heads.insert(hash);
        match self.by_seq.get(&(a, body.seq)) {
            None => {
                self.by_seq.insert((a, body.seq), i);
            }
            Some(&first) => {
                let fork = self.forks.entry((a, body.seq)).or_default();
                if fork.is_empty() {
                    if let Some(e) = self.nodes.get(first as usize) {
                        fork.push(e.hash);
                    }
                }
                fork.push(hash);
                fork.sort_unstable();
            }
        }
        if let Some(m) = self.author_max.get_mut(a as usize) {
            *m = (*m).max(body.seq);
        }
        self.nodes.push(Entry {
            hash,
            author: a,
            seq: body.seq,
            lamport: body.lamport,
            lamport_end: body.lamport_end,
            ops: body.ops,
            deps: checked.deps,
            vv,
            bytes: Box::default(),
            opaque,
        });
        self.index.insert(hash, i);
        i
    }

    /// True if node `a` is node `b` or in its causal past: the version-vector fast path, then
    /// a search bounded by `a`'s Lamport counter if `a`'s `(author, seq)` is forked (see
    /// [`GraphPast`]).
    pub(crate) fn is_ancestor(&self, a: Idx, b: Idx) -> bool {
        if a == b {
            return true;
        }
        let (Some(ea), Some(eb)) = (self.entry(a), self.entry(b)) else {
            return false;
        };
        if eb.vv.get(ea.author) < ea.seq {
            return false;
        }
        if !self.forked(ea.author, ea.seq) {
            return true;
        }
        let mut seen: HashSet<Idx> = HashSet::new();
        let mut stack = vec![b];
        while let Some(i) = stack.pop() {
            let Some(e) = self.entry(i) else { continue };
            for &d in e.deps.iter() {
                if d == a {
                    return true;
                }
                let above = self.entry(d).is_some_and(|x| x.lamport >= ea.lamport);
                if above && seen.insert(d) {
                    stack.push(d);
                }
            }
        }
        false
    }

    fn forked(&self, author: u32, seq: u64) -> bool {
        !self.forks.is_empty() && self.forks.contains_key(&(author, seq))
    }

    /// Marks every node in the causal past of `from` (inclusive).
    pub(crate) fn mark_past(&self, from: impl Iterator<Item = Idx>) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<Idx> = Vec::new();
        for i in from {
            if let Some(s) = seen.get_mut(i as usize) {
                if !*s {
                    *s = true;
                    stack.push(i);
                }
            }
        }
        while let Some(i) = stack.pop() {
            let Some(e) = self.nodes.get(i as usize) else {
                continue;
            };
            for &d in e.deps.iter() {
                if let Some(s) = seen.get_mut(d as usize) {
                    if !*s {
                        *s = true;
                        stack.push(d);
                    }
                }
            }
        }
        seen
    }
}

/// The causal past of one node, answered from the DAG, exactly, even across forks. Implements
/// the document layer's [`CausalPast`].
///
/// # Why it is exact
///
/// The document asks "is the op `(counter, author ‖ hash)` in the causal past of the node
/// being applied?". All ops of one node share its fate, so this is "is node X an ancestor of
/// the node N being applied?", with N's dependencies given and N not yet in the DAG.
///
/// *Fast path.* Every applied node keeps a version vector `vv`: for each author, the greatest
/// sequence number in its causal past. Let X be by author `a` with sequence `s`, and
/// `m = vv(deps of N)[a]` (the entry-wise maximum over N's dependencies). If
/// `m < s`, no node of `a` with sequence ≥ `s` is an ancestor, so X is not. If `m ≥ s`, some
/// ancestor Y of `a` has sequence `m`. Validation guarantees that every node of `a` with
/// sequence `t > 1` names a node of `a` with sequence `t − 1` as a dependency, so Y's past
/// holds a chain of `a`'s nodes through every sequence number `1..m`, in particular one with
/// sequence `s`. If the DAG holds exactly one node with `(a, s)`, that node is X: X is an
/// ancestor. The answer is exact whenever `(a, s)` is not forked in the local DAG, however
/// many forks exist elsewhere, and whatever arrives later (nodes already in N's past are all
/// in the DAG when N is applied).
///
/// *Slow path*, for a forked `(a, s)`: a search from N's dependencies in decreasing Lamport
/// order. Lamport counters never increase along a dependency edge, so every path from N down
/// to X stays at counters ≥ `lamport(X)`; expanding every ancestor whose counter is at least
/// `lamport(X)` therefore discovers X if and only if it is an ancestor. The search state
/// (heap, discovered set) is kept for the whole application of N, so later queries resume it
/// rather than start again, and each ancestor is expanded at most once per applied node.
/// The slow path runs only for content written by a node whose `(author, seq)` is forked,
/// which takes an equivocating (Byzantine) author; its worst case is a walk over the
/// ancestors newer than X, per applied node that touches such content.
pub struct GraphPast<'a> {
    dag: &'a Dag,
    deps: &'a [Idx],
    vv: &'a Vv,
    walk: RefCell<Walk>,
}

/// State of the slow-path search, resumed across queries.
#[derive(Default)]
struct Walk {
    started: bool,
    /// Discovered ancestors not yet expanded, greatest Lamport counter first.
    heap: BinaryHeap<(u64, Idx)>,
    /// Every ancestor discovered so far.
    found: HashSet<Idx>,
}

impl<'a> GraphPast<'a> {
    pub(crate) fn new(dag: &'a Dag, deps: &'a [Idx], vv: &'a Vv) -> Self {
        GraphPast {
            dag,
            deps,
            vv,
            walk: RefCell::new(Walk::default()),
        }
    }

    /// True if node `hash` is in the causal past (an ancestor of the node being applied).
    pub fn contains_node(&self, hash: &NodeHash) -> bool {
        self.dag.idx(hash).is_some_and(|i| self.contains_idx(i))
    }

    fn contains_idx(&self, x: Idx) -> bool {
        let Some(e) = self.dag.entry(x) else {
            return false;
        };
        if self.vv.get(e.author) < e.seq {
            return false;
        }
        if !self.dag.forked(e.author, e.seq) {
            return true;
        }
        self.search(x, e.lamport)
    }

    fn search(&self, x: Idx, lamport: u64) -> bool {
        let Ok(mut w) = self.walk.try_borrow_mut() else {
            // Not reentrant; cannot happen (no query runs inside another). Refuse, which at
            // worst keeps an element a clear would have removed.
            return false;
        };
        if !w.started {
            w.started = true;
            for &d in self.deps {
                if w.found.insert(d) {
                    let l = self.dag.entry(d).map_or(0, |e| e.lamport);
                    w.heap.push((l, d));
                }
            }
        }
        while let Some(&(l, i)) = w.heap.peek() {
            if l < lamport {
                break;
            }
            w.heap.pop();
            let Some(e) = self.dag.entry(i) else { continue };
            for &d in e.deps.iter() {
                if w.found.insert(d) {
                    let l = self.dag.entry(d).map_or(0, |e| e.lamport);
                    w.heap.push((l, d));
                }
            }
        }
        w.found.contains(&x)
    }
}

impl CausalPast for GraphPast<'_> {
    fn contains(&self, _counter: u64, actor: &ActorId) -> bool {
        // Graph actors are `author ‖ node hash`; anything else (the local provisional actor,
        // which has no ops outside a local transaction) is not a node.
        let b = actor.as_bytes();
        let Some(hash) = b.get(32..64).filter(|_| b.len() == 64) else {
            return false;
        };
        let mut h = [0u8; 32];
        h.copy_from_slice(hash);
        self.contains_node(&NodeHash::from_bytes(h))
    }
}

impl std::fmt::Debug for GraphPast<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphPast")
            .field("deps", &self.deps)
            .field("vv", &self.vv)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::graph::id::GroupId;
    use crate::graph::log::{Apply, Log, Outcome, Ready};
    use crate::graph::wire::{
        NodeBody, Payload, WireCursor, WireKey, WireMutation, WireOp, WireTag, WireValue,
        NODE_VERSION,
    };
    use crate::graph::Device;

    /// Checks, for every node applied, that `GraphPast` agrees with brute force about every
    /// node already in the graph.
    struct Oracle {
        ancestors: HashMap<NodeHash, BTreeSet<NodeHash>>,
        all: Vec<NodeHash>,
        queries: usize,
    }

    impl Apply for Oracle {
        type Effect = ();
        fn apply(&mut self, node: &Ready<'_>) -> Result<(), GraphError> {
            let truth = &self.ancestors[&node.hash()];
            for x in &self.all {
                assert_eq!(
                    node.past().contains_node(x),
                    truth.contains(x),
                    "node {:?} asked about {x:?}",
                    node.hash()
                );
                self.queries += 1;
            }
            self.all.push(node.hash());
            Ok(())
        }
    }

    fn one_op(v: i64) -> Payload {
        Payload::Crdt(vec![WireOp {
            cursor: WireCursor {
                path: vec![(WireTag::Map, WireKey::Doc)],
                key: WireKey::Str("k".into()),
            },
            mutation: WireMutation::Assign(WireValue::Int(v)),
        }])
    }

    #[test]
    fn causal_past_is_exact_across_forks() {
        let mut forks = 0;
        for seed in 0..20u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let group = GroupId::from_bytes([3; 32]);
            let devices: Vec<Device> = (0..3u8).map(|i| Device::from_seed(&[i + 1; 32])).collect();
            // Brute-force model: hash → (author, seq, last counter, ancestors).
            let mut model: Vec<(NodeHash, usize, u64, u64)> = Vec::new();
            let mut ancestors: HashMap<NodeHash, BTreeSet<NodeHash>> = HashMap::new();
            let mut nodes = Vec::new();
            for step in 0..60 {
                let a = rng.gen_range(0..devices.len());
                let mut deps: BTreeSet<NodeHash> = BTreeSet::new();
                for (h, ..) in &model {
                    if rng.gen_bool(0.15) {
                        deps.insert(*h);
                    }
                }
                // Usually build on the author's latest node; sometimes not, which forks.
                if rng.gen_bool(0.7) {
                    if let Some((h, ..)) = model.iter().rev().find(|m| m.1 == a) {
                        deps.insert(*h);
                    }
                }
                let past: BTreeSet<NodeHash> = deps
                    .iter()
                    .flat_map(|d| ancestors[d].iter().copied().chain(std::iter::once(*d)))
                    .collect();
                let seen = model
                    .iter()
                    .filter(|m| m.1 == a && past.contains(&m.0))
                    .map(|m| m.2)
                    .max()
                    .unwrap_or(0);
                if seen > 0 {
                    let prev = model
                        .iter()
                        .find(|m| m.1 == a && m.2 == seen && past.contains(&m.0))
                        .unwrap()
                        .0;
                    deps.insert(prev);
                }
                let lamport = 1 + deps
                    .iter()
                    .map(|d| model.iter().find(|m| m.0 == *d).unwrap().3)
                    .max()
                    .unwrap_or(0);
                let body = NodeBody {
                    version: NODE_VERSION,
                    group,
                    author: devices[a].id(),
                    seq: seen + 1,
                    lamport,
                    deps: deps.iter().copied().collect(),
                    payload: one_op(step),
                };
                let bytes = devices[a].sign(&body).unwrap();
                let h = crate::graph::SignedNode::decode(&bytes).unwrap().hash();
                model.push((h, a, seen + 1, lamport));
                ancestors.insert(h, past);
                nodes.push(bytes);
            }
            let mut log = Log::new(group);
            let mut oracle = Oracle {
                ancestors,
                all: Vec::new(),
                queries: 0,
            };
            for n in &nodes {
                let r = log.receive(n, &mut oracle);
                assert!(matches!(r, Ok(Outcome::Applied(_))), "seed {seed}: {r:?}");
            }
            assert_eq!(log.len(), 60);
            assert!(oracle.queries > 1000);
            forks += log.evidence().len();
        }
        // The generator does fork; otherwise this test would not reach the slow path.
        assert!(forks > 10, "only {forks} forks");
    }
}
