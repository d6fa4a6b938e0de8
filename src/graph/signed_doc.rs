//! A document whose every change is a signed node: a [`Device`], a [`Log`] and a [`Doc`].

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::device::Device;
use super::error::GraphError;
use super::id::{DeviceId, GroupId, NodeHash};
use super::limits::{Limits, MAX_DEPS, MAX_OPS_PER_NODE};
use super::log::{Apply, Drained, Log, Outcome, Ready};
use super::node::SignedNode;
use super::sync::{Have, Want};
use super::wire::{
    ElemRef, NodeBody, Payload, WireCursor, WireKey, WireMutation, WireOp, WireTag, WireValue,
    NODE_VERSION, SIGNATURE_LEN,
};
use crate::doc::{
    ActorId, Cursor, Doc, DocError, Key, Mutation, OpBody, OpId, Patch, Tag, Transaction, Value,
};

/// The actor a local transaction runs as until its node is signed. Eight bytes, so it can
/// never equal a graph actor (`author ‖ node hash`, 64 bytes). It never owns an op outside a
/// local transaction, and every replica keeps exactly one, so canonical states still agree.
fn provisional() -> ActorId {
    ActorId::from_u64(0)
}

/// The document actor of node `hash` by `author`: `author ‖ hash`. Ids then order by
/// (counter, author, node hash), and stay unique when an author equivocates.
fn actor_of(author: &DeviceId, hash: &NodeHash) -> Result<ActorId, GraphError> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(author.as_bytes());
    b.extend_from_slice(hash.as_bytes());
    ActorId::new(b).map_err(|_| GraphError::Internal("graph actor id rejected"))
}

/// What [`SignedDoc::change`] made.
#[derive(Debug)]
#[must_use = "the nodes must be sent to the other replicas"]
#[non_exhaustive]
pub struct LocalChange<T> {
    /// The closure's result.
    pub value: T,
    /// Signed nodes to send to every other replica, in order. Empty if the transaction
    /// changed nothing; usually one; more when the replica had more heads than a node may
    /// name, in which case merge nodes come first.
    pub nodes: Vec<Vec<u8>>,
    /// Hash of the node carrying the change, if any.
    pub hash: Option<NodeHash>,
    /// Visible effects, in order.
    pub patches: Vec<Patch>,
}

/// Result of [`SignedDoc::receive`].
#[derive(Debug, PartialEq)]
#[must_use]
#[non_exhaustive]
pub enum Received {
    /// The node was applied, with the parked nodes it unblocked (within the drain budget);
    /// their patches in order.
    Applied(Vec<Patch>),
    /// Parked until these dependencies are applied.
    Pending {
        /// Dependencies not yet applied.
        missing: Vec<NodeHash>,
    },
    /// Already applied or parked; nothing changed.
    Duplicate,
}

/// One replica of a group's document: local edits become signed nodes, remote nodes are
/// verified, ordered causally and applied.
///
/// # Call order
///
/// * Local edits: [`SignedDoc::change`]; send every returned node to every other replica.
/// * Remote nodes: [`SignedDoc::receive`] for each one. If [`SignedDoc::ready_len`] is
///   non-zero afterwards (a node unblocked more than one call's budget of parked nodes), call
///   [`SignedDoc::drain`] until it is zero.
/// * Catch-up: send [`SignedDoc::have`] now and then and [`SignedDoc::want`] when nodes are
///   pending; answer peers' messages with [`SignedDoc::answer_have`] and
///   [`SignedDoc::answer_want`], and feed the answers to `receive`.
///
/// ```
/// use sealdoc::graph::{Device, GroupId, Received, SignedDoc};
/// use serde_json::json;
///
/// let group = GroupId::from_bytes([7; 32]);
/// let mut alice = SignedDoc::new(Device::from_seed(&[1; 32]), group);
/// let mut bob = SignedDoc::new(Device::from_seed(&[2; 32]), group);
///
/// let out = alice.change(|tx| tx.set("title", "Groceries"))?;
/// for node in &out.nodes {
///     assert!(matches!(bob.receive(node)?, Received::Applied(_)));
/// }
/// assert_eq!(bob.doc().get("title"), Some(json!("Groceries")));
/// assert_eq!(alice.heads(), bob.heads());
/// # Ok::<(), sealdoc::graph::GraphError>(())
/// ```
///
/// A `SignedDoc` has no membership layer: every validly signed node is accepted, and
/// [`Payload::Group`] nodes are ordered but change nothing. The group layer
/// ([`crate::group::Member`]) builds on it with membership, roles and encryption.
pub struct SignedDoc {
    pub(crate) device: Device,
    pub(crate) log: Log,
    pub(crate) doc: Doc,
    /// Nodes whose document ops a layer above decided not to apply (the group layer's
    /// `FutureOnly` joiners: ops naming elements they never saw). Their ops are skipped when
    /// the document is rebuilt too.
    pub(crate) skipped: HashSet<NodeHash>,
    /// Nodes whose document ops a layer above has *whited out* (the group layer: ops of an
    /// author removed concurrently with them): applied as invisible anchors (see
    /// [`apply_crdt_whiteout`]), here and when the document is rebuilt.
    pub(crate) whiteout: HashSet<NodeHash>,
}

impl SignedDoc {
    /// An empty replica of `group` for `device`, with default [`Limits`].
    pub fn new(device: Device, group: GroupId) -> Self {
        Self::with_limits(device, group, Limits::default())
    }

    /// An empty replica with the given budgets.
    pub fn with_limits(device: Device, group: GroupId, limits: Limits) -> Self {
        SignedDoc {
            device,
            log: Log::with_limits(group, limits),
            doc: Doc::new(provisional()),
            skipped: HashSet::new(),
            whiteout: HashSet::new(),
        }
    }

    // ---- Getters --------------------------------------------------------------------------

    /// This replica's device id.
    pub fn device_id(&self) -> DeviceId {
        self.device.id()
    }

    /// The group.
    pub fn group(&self) -> GroupId {
        self.log.group()
    }

    /// The document. Edit it through [`SignedDoc::change`] only.
    pub fn doc(&self) -> &Doc {
        &self.doc
    }

    /// The signed operation graph.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The heads of the graph, sorted.
    pub fn heads(&self) -> Vec<NodeHash> {
        self.log.heads()
    }

    /// Equivocation evidence (see [`Log::evidence`]).
    pub fn evidence(&self) -> Vec<super::Equivocation> {
        self.log.evidence()
    }

    /// Parked nodes ready to apply; call [`SignedDoc::drain`] while non-zero.
    pub fn ready_len(&self) -> usize {
        self.log.ready_len()
    }

    // ---- Commands -------------------------------------------------------------------------

    /// Runs `f` as one local transaction and turns its ops into a signed node.
    ///
    /// If `f` returns `Err`, or makes more than [`MAX_OPS_PER_NODE`] ops, the transaction is
    /// rolled back and nothing changes. Otherwise the node names the current heads (and this
    /// device's previous node) as dependencies; if that is more than [`MAX_DEPS`], merge
    /// nodes (no ops) are made first so that the change node can name them all.
    ///
    /// # Errors
    ///
    /// [`GraphError::Doc`] from `f`; [`GraphError::TooManyOps`]; [`GraphError::NodeTooLarge`]
    /// if the ops encode to more than [`Limits::max_local_node`] bytes (the document is then
    /// rebuilt from the graph, which costs time proportional to the history; see the module
    /// docs); [`GraphError::CounterOverflow`].
    ///
    /// If the document's clock is behind the graph's (some nodes' ops were never applied to
    /// the document: see [`Log::insert_skeleton`]), the transaction runs on a copy of the
    /// document, and the node is then applied to the document like a remote one, so that its
    /// ops get the counters the graph gives them. This costs a copy of the document.
    pub fn change<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, DocError>,
    ) -> Result<LocalChange<T>, GraphError> {
        let next = self.log.next_lamport(&self.device.id())?;
        if self.doc.max_counter().checked_add(1) != Some(next) {
            return self.change_on_copy(f);
        }
        self.doc.set_actor(provisional());
        let mut tx = self.doc.transaction();
        let value = f(&mut tx)?;
        let count = tx.op_count();
        if count > MAX_OPS_PER_NODE {
            tx.rollback();
            return Err(GraphError::TooManyOps {
                count,
                max: MAX_OPS_PER_NODE,
            });
        }
        if count == 0 {
            tx.rollback();
            return Ok(LocalChange {
                value,
                nodes: Vec::new(),
                hash: None,
                patches: Vec::new(),
            });
        }
        let local = tx.commit();
        match self.seal(local.start, &local.ops) {
            Ok((nodes, hash)) => Ok(LocalChange {
                value,
                nodes,
                hash: Some(hash),
                patches: local.patches,
            }),
            Err(e) => {
                // The document holds ops that no node carries: rebuild it from the graph.
                self.rebuild()?;
                Err(e)
            }
        }
    }

    /// Handles one signed node from a peer (untrusted bytes); see [`Log::receive`].
    ///
    /// # Errors
    ///
    /// A [`GraphError`]; the document and the graph are unchanged, except that an invalid
    /// node is remembered ([`GraphError::is_invalid_node`]).
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received, GraphError> {
        let mut st = DocApply {
            doc: &mut self.doc,
            skipped: &self.skipped,
            whiteout: &self.whiteout,
        };
        Ok(match self.log.receive(bytes, &mut st)? {
            Outcome::Applied(p) => Received::Applied(p.into_iter().flatten().collect()),
            Outcome::Pending { missing } => Received::Pending { missing },
            Outcome::Duplicate => Received::Duplicate,
        })
    }

    /// Applies parked nodes that became ready, at most [`Limits::drain_per_call`] of them;
    /// returns their patches in order and how many ready nodes remain.
    pub fn drain(&mut self) -> Drained<Patch> {
        let mut st = DocApply {
            doc: &mut self.doc,
            skipped: &self.skipped,
            whiteout: &self.whiteout,
        };
        let d = self.log.drain(&mut st);
        Drained {
            effects: d.effects.into_iter().flatten().collect(),
            remaining: d.remaining,
        }
    }

    /// My heads, for peers to answer with what I lack.
    pub fn have(&self) -> Have {
        self.log.have()
    }

    /// The nodes a peer that sent `have` lacks (see [`Log::answer_have`]).
    ///
    /// # Errors
    ///
    /// [`GraphError::WrongGroup`].
    pub fn answer_have(&self, have: &Have) -> Result<Vec<Vec<u8>>, GraphError> {
        self.log.answer_have(have)
    }

    /// Missing dependencies of parked nodes (see [`Log::want`]).
    pub fn want(&self) -> Want {
        self.log.want()
    }

    /// The wanted nodes this replica has (see [`Log::answer_want`]).
    ///
    /// # Errors
    ///
    /// [`GraphError::WrongGroup`].
    pub fn answer_want(&self, want: &Want) -> Result<Vec<Vec<u8>>, GraphError> {
        self.log.answer_want(want)
    }

    // ---- Internals ------------------------------------------------------------------------

    /// [`SignedDoc::change`] when the document's clock lags the graph's: the transaction runs
    /// on a copy, and the signed node is applied to the document like a remote node.
    fn change_on_copy<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, DocError>,
    ) -> Result<LocalChange<T>, GraphError> {
        let mut copy = self.doc.clone();
        copy.set_actor(provisional());
        let mut tx = copy.transaction();
        let value = f(&mut tx)?;
        let count = tx.op_count();
        if count > MAX_OPS_PER_NODE {
            return Err(GraphError::TooManyOps {
                count,
                max: MAX_OPS_PER_NODE,
            });
        }
        if count == 0 {
            return Ok(LocalChange {
                value,
                nodes: Vec::new(),
                hash: None,
                patches: Vec::new(),
            });
        }
        let local = tx.commit();
        let ops = self.to_wire(local.start, &local.ops)?;
        drop(copy);
        let mut body = self.placeholder(Payload::Crdt(ops));
        let Prepared {
            merges: mut nodes,
            seq,
            deps,
        } = self.prepare_deps(&body)?;
        body.seq = seq;
        body.lamport = self.log.lamport_after(&deps)?;
        body.deps = deps;
        let bytes = self.device.sign(&body)?;
        let max = self.log.limits().local_node_limit();
        if bytes.len() > max {
            return Err(GraphError::NodeTooLarge {
                len: bytes.len(),
                max,
            });
        }
        let hash = SignedNode::decode(&bytes)?.hash();
        let mut st = DocApply {
            doc: &mut self.doc,
            skipped: &self.skipped,
            whiteout: &self.whiteout,
        };
        let patches = match self.log.receive(&bytes, &mut st)? {
            Outcome::Applied(p) => p.into_iter().flatten().collect(),
            _ => return Err(GraphError::Internal("a local node was not applied")),
        };
        nodes.push(bytes);
        Ok(LocalChange {
            value,
            nodes,
            hash: Some(hash),
            patches,
        })
    }

    /// A body by this device with `payload`, whose header fields are placeholders as large as
    /// they can be (so that its encoded length bounds the final node's).
    pub(crate) fn placeholder(&self, payload: Payload) -> NodeBody {
        NodeBody {
            version: NODE_VERSION,
            group: self.log.group(),
            author: self.device.id(),
            seq: u64::MAX,
            lamport: u64::MAX,
            deps: vec![NodeHash::from_bytes([0xff; 32]); MAX_DEPS],
            payload,
        }
    }

    /// The sequence number and dependencies of this device's next node. If the heads are more
    /// than [`MAX_DEPS`], first makes merge nodes (inserted into the graph) and returns them.
    /// `worst` is the next node with [`SignedDoc::placeholder`] fields: if it could not fit
    /// [`Limits::max_local_node`], nothing is made.
    pub(crate) fn prepare_deps(&mut self, worst: &NodeBody) -> Result<Prepared, GraphError> {
        let me = self.device.id();
        let group = self.log.group();
        let max = self.log.limits().local_node_limit();
        let mut nodes = Vec::new();
        loop {
            let (seq, prev, deps) = self.log.local_deps(&me)?;
            if deps.len() <= MAX_DEPS {
                return Ok(Prepared {
                    merges: nodes,
                    seq,
                    deps,
                });
            }
            if nodes.is_empty() {
                // Before making any merge node, make sure the change will fit, so that a
                // refused change leaves nothing behind.
                let worst = framed_len(worst.encode()?.len());
                if worst > max {
                    return Err(GraphError::NodeTooLarge { len: worst, max });
                }
            }
            // Too many heads for one node: a merge node names the previous node and as many
            // other heads as fit, and becomes a head itself, so each round removes up to
            // MAX_DEPS - 1 heads. It has no ops and takes no counter.
            let mut merge: Vec<NodeHash> = prev.into_iter().collect();
            merge.extend(
                deps.iter()
                    .filter(|h| Some(**h) != prev)
                    .take(MAX_DEPS - merge.len()),
            );
            merge.sort_unstable();
            let merge_body = NodeBody {
                version: NODE_VERSION,
                group,
                author: me,
                seq,
                lamport: self.log.lamport_after(&merge)?,
                deps: merge,
                payload: Payload::Crdt(Vec::new()),
            };
            let bytes = self.device.sign(&merge_body)?;
            self.log.insert_local(&bytes, &me)?;
            nodes.push(bytes);
        }
    }

    /// Signs the committed local ops (counters from `start`) into a node, after any merge
    /// nodes needed, and inserts them into the graph. Returns the nodes and the change's hash.
    fn seal(&mut self, start: u64, ops: &[OpBody]) -> Result<(Vec<Vec<u8>>, NodeHash), GraphError> {
        let me = self.device.id();
        let mut body = self.placeholder(Payload::Crdt(self.to_wire(start, ops)?));
        let Prepared {
            merges: mut nodes,
            seq,
            deps,
        } = self.prepare_deps(&body)?;
        let lamport = self.log.lamport_after(&deps)?;
        if lamport != start {
            return Err(GraphError::Internal(
                "document clock and graph clock disagree",
            ));
        }
        body.seq = seq;
        body.lamport = lamport;
        body.deps = deps;
        let bytes = self.device.sign(&body)?;
        let max = self.log.limits().local_node_limit();
        if bytes.len() > max {
            return Err(GraphError::NodeTooLarge {
                len: bytes.len(),
                max,
            });
        }
        let hash = self.log.insert_local(&bytes, &me)?;
        // From here the node is in the graph: should the rename fail (it cannot: the actor
        // `author ‖ new hash` is unknown to the document), the caller rebuilds the document
        // from the graph, which then holds this change.
        self.doc
            .rename_actor(&provisional(), actor_of(&me, &hash)?)?;
        self.doc.set_actor(provisional());
        nodes.push(bytes);
        Ok((nodes, hash))
    }

    /// Translates local ops to the wire: elements made by this transaction (provisional
    /// actor) become [`ElemRef::This`], others [`ElemRef::Node`].
    fn to_wire(&self, start: u64, ops: &[OpBody]) -> Result<Vec<WireOp>, GraphError> {
        let tmp = provisional();
        let elem = |id: &OpId| -> Result<ElemRef, GraphError> {
            if id.actor == tmp {
                let index = id
                    .counter
                    .checked_sub(start)
                    .and_then(|i| u32::try_from(i).ok())
                    .filter(|&i| (i as usize) < ops.len())
                    .ok_or(GraphError::Internal(
                        "local element outside the transaction",
                    ))?;
                return Ok(ElemRef::This { index });
            }
            let node =
                hash_of(&id.actor).ok_or(GraphError::Internal("element of an unknown actor"))?;
            let info = self
                .log
                .info(&node)
                .ok_or(GraphError::Internal("element of a node not in the graph"))?;
            let index = id
                .counter
                .checked_sub(info.lamport)
                .and_then(|i| u32::try_from(i).ok())
                .filter(|&i| i < info.op_count)
                .ok_or(GraphError::Internal("element outside its node"))?;
            Ok(ElemRef::Node { node, index })
        };
        let key = |k: &Key| -> Result<WireKey, GraphError> {
            Ok(match k {
                Key::Doc => WireKey::Doc,
                Key::Str(s) => WireKey::Str(s.clone()),
                Key::Elem(id) => WireKey::Elem(elem(id)?),
                Key::Head => WireKey::Head,
            })
        };
        ops.iter()
            .map(|op| {
                let path = op
                    .cursor
                    .path
                    .iter()
                    .map(|(t, k)| Ok((wire_tag(*t), key(k)?)))
                    .collect::<Result<Vec<_>, GraphError>>()?;
                let mutation = match &op.mutation {
                    Mutation::Assign(v) => WireMutation::Assign(wire_value(v)),
                    Mutation::Insert(v) => WireMutation::Insert(wire_value(v)),
                    Mutation::Delete => WireMutation::Delete,
                };
                Ok(WireOp {
                    cursor: WireCursor {
                        path,
                        key: key(&op.cursor.key)?,
                    },
                    mutation,
                })
            })
            .collect()
    }

    /// Replaces the document by one rebuilt from every applied node.
    pub(crate) fn rebuild(&mut self) -> Result<(), GraphError> {
        let mut doc = Doc::new(provisional());
        let result = self.log.replay(&mut DocApply {
            doc: &mut doc,
            skipped: &self.skipped,
            whiteout: &self.whiteout,
        });
        self.doc = doc;
        result
    }
}

impl fmt::Debug for SignedDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            device,
            log,
            doc: _,
            skipped: _,
            whiteout: _,
        } = self;
        f.debug_struct("SignedDoc")
            .field("device", device)
            .field("group", &log.group())
            .field("nodes", &log.len())
            .field("heads", &log.heads())
            .field("pending", &log.pending_len())
            .finish_non_exhaustive()
    }
}

/// What [`SignedDoc::prepare_deps`] made: merge nodes (already in the graph, to be sent
/// first), and the next node's sequence number and dependencies.
pub(crate) struct Prepared {
    pub(crate) merges: Vec<Vec<u8>>,
    pub(crate) seq: u64,
    pub(crate) deps: Vec<NodeHash>,
}

/// Length of a signed node whose body is `body_len` bytes: varint length, body, signature.
fn framed_len(body_len: usize) -> usize {
    let mut prefix = 1;
    let mut n = body_len >> 7;
    while n > 0 {
        prefix += 1;
        n >>= 7;
    }
    prefix + body_len + SIGNATURE_LEN
}

/// The node hash in a graph actor (`author ‖ hash`).
fn hash_of(actor: &ActorId) -> Option<NodeHash> {
    let b = actor.as_bytes();
    let tail: [u8; 32] = b.get(32..).filter(|_| b.len() == 64)?.try_into().ok()?;
    Some(NodeHash::from_bytes(tail))
}

fn wire_tag(t: Tag) -> WireTag {
    match t {
        Tag::Map => WireTag::Map,
        Tag::List => WireTag::List,
    }
}

fn wire_value(v: &Value) -> WireValue {
    match v {
        Value::Null => WireValue::Null,
        Value::Bool(b) => WireValue::Bool(*b),
        Value::Int(i) => WireValue::Int(*i),
        Value::Float(f) => WireValue::Float(*f),
        Value::Str(s) => WireValue::Str(s.clone()),
        Value::EmptyMap => WireValue::EmptyMap,
        Value::EmptyList => WireValue::EmptyList,
    }
}

fn doc_value(v: &WireValue) -> Value {
    match v {
        WireValue::Null => Value::Null,
        WireValue::Bool(b) => Value::Bool(*b),
        WireValue::Int(i) => Value::Int(*i),
        WireValue::Float(f) => Value::Float(*f),
        WireValue::Str(s) => Value::Str(s.clone()),
        WireValue::EmptyMap => Value::EmptyMap,
        WireValue::EmptyList => Value::EmptyList,
    }
}

/// Applies [`Payload::Crdt`] to a document, except for the nodes in `skipped`, and the nodes
/// in `whiteout` as anchors only.
pub(crate) struct DocApply<'d> {
    pub(crate) doc: &'d mut Doc,
    pub(crate) skipped: &'d HashSet<NodeHash>,
    pub(crate) whiteout: &'d HashSet<NodeHash>,
}

impl Apply for DocApply<'_> {
    type Effect = Vec<Patch>;

    fn apply(&mut self, node: &Ready<'_>) -> Result<Vec<Patch>, GraphError> {
        if self.skipped.contains(&node.hash()) {
            return Ok(Vec::new());
        }
        if self.whiteout.contains(&node.hash()) {
            apply_crdt_whiteout(self.doc, node)?;
            return Ok(Vec::new());
        }
        apply_crdt(self.doc, node)
    }
}

/// Applies a whited-out node's document ops to `doc`: checked like [`apply_crdt`], but its
/// inserts become invisible anchors and its other ops change nothing
/// ([`Doc::apply_ops_whiteout`]). No patches: nothing visible changes.
pub(crate) fn apply_crdt_whiteout(doc: &mut Doc, node: &Ready<'_>) -> Result<(), GraphError> {
    let body = node.body();
    let ops = match &body.payload {
        Payload::Crdt(ops) if !ops.is_empty() => ops,
        Payload::Crdt(_) | Payload::Group(_) => return Ok(()),
    };
    let actor = actor_of(&body.author, &node.hash())?;
    let ops = to_doc_ops(ops, body.lamport, &actor, node)?;
    Ok(doc.apply_ops_whiteout(&actor, body.lamport, &ops, node.past())?)
}

/// Applies a node's document ops to `doc`. A node without document ops (a merge node, or a
/// [`Payload::Group`] node, which concerns the group layer only) changes nothing.
pub(crate) fn apply_crdt(doc: &mut Doc, node: &Ready<'_>) -> Result<Vec<Patch>, GraphError> {
    let body = node.body();
    let ops = match &body.payload {
        Payload::Crdt(ops) if !ops.is_empty() => ops,
        Payload::Crdt(_) | Payload::Group(_) => return Ok(Vec::new()),
    };
    let actor = actor_of(&body.author, &node.hash())?;
    let ops = to_doc_ops(ops, body.lamport, &actor, node)?;
    Ok(doc.apply_ops(&actor, body.lamport, &ops, node.past())?)
}

/// Translates wire ops of the node `me` (first counter `lamport`) into document ops.
fn to_doc_ops(
    ops: &[WireOp],
    lamport: u64,
    me: &ActorId,
    node: &Ready<'_>,
) -> Result<Vec<OpBody>, GraphError> {
    // Nodes named by this payload: (first counter, op count, actor).
    let mut named: HashMap<NodeHash, (u64, u32, ActorId)> = HashMap::new();
    let mut elem = |r: &ElemRef| -> Result<OpId, GraphError> {
        match r {
            ElemRef::This { index } => {
                let c = lamport
                    .checked_add(u64::from(*index))
                    .ok_or(GraphError::CounterOverflow)?;
                Ok(OpId::new(c, me.clone()))
            }
            ElemRef::Node { node: h, index } => {
                if !named.contains_key(h) {
                    let info = node.lookup(h).ok_or(GraphError::UnknownNode { node: *h })?;
                    named.insert(
                        *h,
                        (info.lamport, info.op_count, actor_of(&info.author, h)?),
                    );
                }
                let (first, count, actor) =
                    named.get(h).ok_or(GraphError::UnknownNode { node: *h })?;
                if *index >= *count {
                    return Err(GraphError::ElementOutOfRange {
                        node: *h,
                        index: *index,
                    });
                }
                let c = first
                    .checked_add(u64::from(*index))
                    .ok_or(GraphError::CounterOverflow)?;
                Ok(OpId::new(c, actor.clone()))
            }
        }
    };
    let mut key = |k: &WireKey| -> Result<Key, GraphError> {
        Ok(match k {
            WireKey::Doc => Key::Doc,
            WireKey::Str(s) => Key::Str(s.clone()),
            WireKey::Elem(r) => Key::Elem(elem(r)?),
            WireKey::Head => Key::Head,
        })
    };
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let mut path = Vec::with_capacity(op.cursor.path.len());
        for (t, k) in &op.cursor.path {
            let tag = match t {
                WireTag::Map => Tag::Map,
                WireTag::List => Tag::List,
            };
            path.push((tag, key(k)?));
        }
        let cursor = Cursor {
            path,
            key: key(&op.cursor.key)?,
        };
        let mutation = match &op.mutation {
            WireMutation::Assign(v) => Mutation::Assign(doc_value(v)),
            WireMutation::Insert(v) => Mutation::Insert(doc_value(v)),
            WireMutation::Delete => Mutation::Delete,
        };
        out.push(OpBody { cursor, mutation });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_len_matches_the_frame() {
        for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let body = vec![7u8; n];
            let framed = super::super::wire::frame(&body, &[0; SIGNATURE_LEN]).unwrap();
            assert_eq!(framed_len(n), framed.len(), "{n}");
        }
    }

    #[test]
    fn graph_actors_round_trip_their_hash() {
        let (a, h) = (DeviceId::from_bytes([1; 32]), NodeHash::from_bytes([2; 32]));
        let actor = actor_of(&a, &h).unwrap();
        assert_eq!(hash_of(&actor), Some(h));
        assert_eq!(hash_of(&provisional()), None);
    }
}
