//! The group state every replica derives from its graph: control ops, membership as a pure
//! function of a causal past, epochs and their heads, and the keys this device holds.
//!
//! [`GroupApply`] is the graph layer's [`Apply`] for a group: the log calls it for every node
//! whose signature verified and whose dependencies are applied, and it validates the node
//! against the membership of its causal past before anything changes.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::error::{GroupError, PeerMisbehaved};
use super::keys::{history_key, OpContext};
use super::limits::{MAX_ENVELOPE_CONTEXTS, MAX_GROUP_DEVICES, MAX_MEMBERSHIP_CACHE};
use super::policy::{Action, GroupPolicy, HistoryPolicy, Role};
use super::wire::{decode_history, history_aad, ControlOp, KeyUpdate};
use crate::crypto::{
    DeviceKemSecret, EpochId, EpochIdPrefix, EpochRoot, EpochSecret, GroupKeys, KemPublicKey,
    SealContext,
};
use crate::doc::{Doc, Patch};
use crate::graph::wire::{ElemRef, WireKey, WireOp};
use crate::graph::{
    apply_crdt, apply_crdt_whiteout, Apply, DeviceId, GraphError, GraphPast, GroupId, NodeHash,
    Payload, Ready,
};

/// What one member is, in one membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MemberInfo {
    pub role: Role,
    /// The KEM key from the contact card it was added with.
    pub kem: KemPublicKey,
    /// The op that (last) added it.
    pub added_by: NodeHash,
}

/// The membership after a set of control ops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Membership {
    pub members: BTreeMap<DeviceId, MemberInfo>,
}

impl Membership {
    pub(crate) fn role(&self, d: &DeviceId) -> Option<Role> {
        self.members.get(d).map(|m| m.role)
    }

    /// Applies one control op. The resolver ([`GroupState::resolve`]) decides which ops are
    /// effective; only those are folded, in (Lamport, height, hash) order.
    fn apply(&mut self, op: &ControlOp, hash: NodeHash) {
        match op {
            ControlOp::Genesis { members, .. } | ControlOp::Add { members, .. } => {
                for m in members {
                    self.members.insert(
                        m.device(),
                        MemberInfo {
                            role: m.role,
                            kem: *m.card.kem_public(),
                            added_by: hash,
                        },
                    );
                }
            }
            ControlOp::Remove { targets, .. } => {
                for t in targets {
                    self.members.remove(t);
                }
            }
            ControlOp::SetRole { target, role } => {
                if let Some(m) = self.members.get_mut(target) {
                    m.role = *role;
                }
            }
            ControlOp::KeyUpdate { .. } => {}
        }
    }
}

/// One applied control op.
#[derive(Debug)]
struct ControlRecord {
    hash: NodeHash,
    author: DeviceId,
    /// Indexes of the control ops in its causal past, ascending.
    past: Vec<u32>,
    /// Fold order: (Lamport counter, height, hash). The height is 1 + the greatest height of
    /// the control ops in its causal past, so an ancestor always sorts first even though a
    /// control node takes no Lamport counter of its own.
    order: (u64, u32, NodeHash),
    op: ControlOp,
    /// Index of the epoch it created, if any.
    epoch: Option<u32>,
}

/// One epoch: the op that created it, who received its secret, and where it sits.
#[derive(Debug)]
pub(crate) struct EpochRecord {
    pub op: NodeHash,
    /// Index of the control op that created it.
    pub control: u32,
    pub id: EpochId,
    pub author: DeviceId,
    /// The op's group field (all zeros for genesis), part of the sealing context.
    pub group_field: GroupId,
    pub salt: [u8; 16],
    /// Devices sealed the secret (rule K2: exactly the membership after the op), sorted.
    pub recipients: Vec<DeviceId>,
    /// Epochs in the op's causal past.
    pub ancestors: BTreeSet<u32>,
    /// The heads of the op's causal past: the epochs it supersedes (rule K3).
    pub superseded: Vec<u32>,
    /// History link (policy `Full`).
    pub history: Option<Vec<u8>>,
}

/// The resolver's verdict on a causally closed set of control ops (security-design.md §4.5):
/// which ops are effective, and the membership they fold to.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// The membership after the effective ops.
    pub membership: Arc<Membership>,
    /// Indexes of the effective ops.
    pub effective: BTreeSet<u32>,
    /// Ops voided by a concurrent removal or demotion of their author: op → the voiding op.
    pub voided_by: BTreeMap<u32, u32>,
}

/// Something another member did that is suspicious but cannot invalidate its op, because
/// other replicas could not check it (security-design.md §4.4, K2's residual risk).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Evidence {
    /// The secret sealed to this device in an epoch-creating op does not open.
    UnopenableSecret {
        /// The op.
        op: NodeHash,
        /// Its author.
        author: DeviceId,
    },
    /// A history link this device could open does not decrypt or decode.
    BadHistory {
        /// The op.
        op: NodeHash,
        /// Its author.
        author: DeviceId,
    },
}

/// The group state of one replica.
pub(crate) struct GroupState {
    pub group: GroupId,
    pub me: DeviceId,
    pub policy: Option<GroupPolicy>,
    controls: Vec<ControlRecord>,
    control_at: HashMap<NodeHash, u32>,
    /// Resolutions of causal pasts, by the set of control ops in them.
    cache: RefCell<HashMap<Vec<u32>, Arc<Resolved>>>,
    /// Folds of sets of effective ops.
    folds: RefCell<HashMap<Vec<u32>, Arc<Membership>>>,
    /// The resolution of every control op applied (this replica's view).
    global: Arc<Resolved>,
    /// Incremented whenever `global` is recomputed (a control op was applied).
    pub resolution_gen: u64,
    pub epochs: Vec<EpochRecord>,
    epoch_at: HashMap<EpochId, u32>,
    prefix_at: HashMap<EpochIdPrefix, u32>,
    /// Current epoch heads in this replica's view (rule K3).
    pub heads: BTreeSet<u32>,
    roots: HashMap<u32, EpochRoot>,
    /// Secrets of the epochs whose roots are known (history links wrap secrets).
    secrets: HashMap<u32, EpochSecret>,
    /// Epochs whose secret came from a forward (trusting the adder alone) and that no
    /// envelope has confirmed yet: a sealed secret, a history link or a later forward
    /// replaces it.
    provisional: HashSet<u32>,
    keys: Vec<(Vec<EpochIdPrefix>, GroupKeys)>,
    /// Delivery context of nodes received in group envelopes and not applied yet: the
    /// header's epochs.
    ctx: HashMap<NodeHash, Vec<EpochIdPrefix>>,
    ctx_order: VecDeque<NodeHash>,
    /// True once the graph holds opaque nodes (a `FutureOnly` joiner).
    pub opaque: bool,
    /// Incremented whenever a root is learned (parked envelopes may now open).
    pub root_gen: u64,
    pub evidence: Vec<Evidence>,
    /// The precise reason of the last refusal (the graph layer only carries a short one).
    pub last_error: Option<GroupError>,
}

impl GroupState {
    pub(crate) fn new(group: GroupId, me: DeviceId) -> Self {
        GroupState {
            group,
            me,
            policy: None,
            controls: Vec::new(),
            control_at: HashMap::new(),
            cache: RefCell::new(HashMap::new()),
            folds: RefCell::new(HashMap::new()),
            global: Arc::new(Resolved::default()),
            resolution_gen: 0,
            epochs: Vec::new(),
            epoch_at: HashMap::new(),
            prefix_at: HashMap::new(),
            heads: BTreeSet::new(),
            roots: HashMap::new(),
            secrets: HashMap::new(),
            provisional: HashSet::new(),
            keys: Vec::new(),
            ctx: HashMap::new(),
            ctx_order: VecDeque::new(),
            opaque: false,
            root_gen: 0,
            evidence: Vec::new(),
            last_error: None,
        }
    }

    // ---- Queries ----------------------------------------------------------------------------

    /// True if `hash` is a control node.
    pub(crate) fn is_control(&self, hash: &NodeHash) -> bool {
        self.control_at.contains_key(hash)
    }

    /// The epoch with this header prefix.
    pub(crate) fn epoch_by_prefix(&self, p: &EpochIdPrefix) -> Option<u32> {
        self.prefix_at.get(p).copied()
    }

    /// The epoch with this id.
    pub(crate) fn epoch_by_id(&self, id: &EpochId) -> Option<u32> {
        self.epoch_at.get(id).copied()
    }

    pub(crate) fn epoch(&self, e: u32) -> Option<&EpochRecord> {
        self.epochs.get(e as usize)
    }

    pub(crate) fn has_root(&self, e: u32) -> bool {
        self.roots.contains_key(&e)
    }

    pub(crate) fn secret(&self, e: u32) -> Option<&EpochSecret> {
        self.secrets.get(&e)
    }

    /// True if epoch `e`'s op is effective in this replica's view (not voided).
    pub(crate) fn is_effective_epoch(&self, e: u32) -> bool {
        self.epoch(e)
            .is_some_and(|r| self.global.effective.contains(&r.control))
    }

    /// The author of control op `hash`.
    pub(crate) fn control_author(&self, hash: &NodeHash) -> Option<DeviceId> {
        let i = *self.control_at.get(hash)?;
        self.controls.get(i as usize).map(|c| c.author)
    }

    /// The epoch created by control op `hash`, if any.
    pub(crate) fn epoch_of_op(&self, hash: &NodeHash) -> Option<u32> {
        let i = *self.control_at.get(hash)?;
        self.controls.get(i as usize)?.epoch
    }

    /// True if epochs `a` and `b` are distinct and neither op is in the causal past of the
    /// other.
    pub(crate) fn concurrent(&self, a: u32, b: u32) -> bool {
        match (self.epoch(a), self.epoch(b)) {
            (Some(ra), Some(rb)) => {
                a != b && !ra.ancestors.contains(&b) && !rb.ancestors.contains(&a)
            }
            _ => false,
        }
    }

    /// True if epoch `a` is in the causal past of epoch `b`'s op.
    pub(crate) fn is_ancestor_epoch(&self, a: u32, b: u32) -> bool {
        self.epoch(b).is_some_and(|r| r.ancestors.contains(&a))
    }

    /// The forwarding rule, for member `d` (current) that was not sealed epoch `e`: the op
    /// that added `d` created an epoch concurrent with `e`, and its author is a current member
    /// that was sealed `e`; that author forwards `e`'s secret to `d` (see the module docs).
    pub(crate) fn forwardable(&self, d: &DeviceId, e: u32) -> bool {
        let m = self.current();
        let Some(info) = m.members.get(d) else {
            return false;
        };
        let (Some(rec), Some(added), Some(adder)) = (
            self.epoch(e),
            self.epoch_of_op(&info.added_by),
            self.control_author(&info.added_by),
        ) else {
            return false;
        };
        adder != *d
            && m.members.contains_key(&adder)
            && rec.recipients.binary_search(&adder).is_ok()
            && self.concurrent(added, e)
    }

    /// The membership after every control op applied so far (this replica's view).
    pub(crate) fn current(&self) -> Arc<Membership> {
        Arc::clone(&self.global.membership)
    }

    /// The membership after the control ops `set` (indexes, ascending, causally closed): the
    /// fold of the ops the resolver finds effective among them.
    fn membership(&self, set: &[u32]) -> Arc<Membership> {
        Arc::clone(&self.resolve(set).membership)
    }

    /// The fold, in (Lamport, height, hash) order (a topological order), of `set`: indexes of
    /// effective ops, ascending.
    fn fold(&self, set: &[u32]) -> Arc<Membership> {
        if let Some(m) = self.folds.borrow().get(set) {
            return Arc::clone(m);
        }
        let mut recs: Vec<&ControlRecord> = set
            .iter()
            .filter_map(|&i| self.controls.get(i as usize))
            .collect();
        recs.sort_by_key(|r| r.order);
        let mut m = Membership::default();
        for r in recs {
            m.apply(&r.op, r.hash);
        }
        let m = Arc::new(m);
        let mut folds = self.folds.borrow_mut();
        if folds.len() >= MAX_MEMBERSHIP_CACHE {
            folds.clear();
        }
        folds.insert(set.to_vec(), Arc::clone(&m));
        m
    }

    /// The membership before control op `x` among the ops of `effective`: the fold of the
    /// effective ops in `x`'s causal past.
    fn before(&self, x: &ControlRecord, effective: &BTreeSet<u32>) -> Arc<Membership> {
        let set: Vec<u32> = x
            .past
            .iter()
            .copied()
            .filter(|i| effective.contains(i))
            .collect();
        self.fold(&set)
    }

    /// The resolver (strong removal, security-design.md §4.5), a pure function of the set of
    /// control ops `set` (indexes, ascending, causally closed):
    ///
    /// Ops are taken in (Lamport, height, hash) order. An op is *effective* if it is not
    /// voided and its author has the role it needs (admin for `Add`, `Remove`, `SetRole`; any
    /// member for `KeyUpdate`) in the fold of the effective ops in its causal past; so a
    /// device added by an op that is not effective is not a member, and its own ops are not
    /// effective in turn (transitivity). An effective `Remove` of `d` voids every control op
    /// of `d` concurrent with it (neither in the other's causal past); an effective `SetRole`
    /// that makes `d` less than an admin voids `d`'s concurrent `Add`, `Remove` and `SetRole`.
    /// An op that itself removes, or demotes below admin, the author of the voiding op is
    /// exempt: mutual removals both apply. Voiding an op already found effective restarts the
    /// pass with it voided; voided ops stay voided (the set only grows, so at most `|set|`
    /// passes). The fold order, the rules and the restarts depend on the set alone, so every
    /// replica with the same ops reaches the same result, whatever the delivery order.
    pub(crate) fn resolve(&self, set: &[u32]) -> Arc<Resolved> {
        if let Some(r) = self.cache.borrow().get(set) {
            return Arc::clone(r);
        }
        let mut order: Vec<u32> = set.to_vec();
        order.sort_by_key(|&i| self.controls.get(i as usize).map(|c| c.order));
        let mut voided: BTreeMap<u32, u32> = BTreeMap::new();
        let mut effective: BTreeSet<u32>;
        let mut passes = 0usize;
        loop {
            effective = BTreeSet::new();
            let mut restart = false;
            for &x in &order {
                if voided.contains_key(&x) {
                    continue;
                }
                let Some(rec) = self.controls.get(x as usize) else {
                    continue;
                };
                let m = self.before(rec, &effective);
                if !authorized(rec, &m) {
                    continue;
                }
                effective.insert(x);
                for (target, all) in strips(&rec.op) {
                    for &y in &order {
                        if y == x || voided.contains_key(&y) {
                            continue;
                        }
                        let Some(ry) = self.controls.get(y as usize) else {
                            continue;
                        };
                        if ry.author != target
                            || (!all && matches!(ry.op, ControlOp::KeyUpdate { .. }))
                            || rec.past.binary_search(&y).is_ok()
                            || ry.past.binary_search(&x).is_ok()
                            || strips(&ry.op).iter().any(|(t, _)| *t == rec.author)
                        {
                            continue;
                        }
                        voided.insert(y, x);
                        if effective.contains(&y) {
                            restart = true;
                        }
                    }
                }
                if restart {
                    break;
                }
            }
            passes += 1;
            if !restart || passes > order.len() {
                break;
            }
        }
        let eff: Vec<u32> = effective.iter().copied().collect();
        let r = Arc::new(Resolved {
            membership: self.fold(&eff),
            effective,
            voided_by: voided,
        });
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= MAX_MEMBERSHIP_CACHE {
            cache.clear();
        }
        cache.insert(set.to_vec(), Arc::clone(&r));
        r
    }

    /// Recomputes the resolution of every control op, and the epoch heads from it.
    fn refresh(&mut self) {
        let all: Vec<u32> = (0..self.controls.len() as u32).collect();
        self.global = self.resolve(&all);
        let effective: BTreeSet<u32> = self
            .epochs
            .iter()
            .enumerate()
            .filter(|(_, r)| self.global.effective.contains(&r.control))
            .map(|(i, _)| i as u32)
            .collect();
        let heads: BTreeSet<u32> = heads_of(&self.epochs, &effective).into_iter().collect();
        if heads != self.heads {
            self.heads = heads;
            self.keys.clear();
        }
        self.resolution_gen += 1;
    }

    /// Whiteout (security-design.md §4.5): true if the document ops of a node by `author`,
    /// whose causal past holds the control ops `past` (ascending), have no effect: the author
    /// may not edit in the fold of the effective ops of that past (it was added by an op the
    /// resolver voided, transitively), or an effective op concurrent with the node removes
    /// the author or makes it a reader. `in_past_of(r)` says whether the node is in the causal
    /// past of control op `r` (false for a node applied after `r`).
    pub(crate) fn whited_out(
        &self,
        author: &DeviceId,
        past: &[u32],
        in_past_of: impl Fn(&NodeHash) -> bool,
    ) -> bool {
        let g = &self.global;
        if g.voided_by.is_empty()
            && !self.controls.iter().any(|c| {
                matches!(&c.op, ControlOp::Remove { targets, .. } if targets.contains(author))
                    || matches!(&c.op, ControlOp::SetRole { target, .. } if target == author)
            })
        {
            // Fast path: nobody was ever voided, removed or demoted: the fold of the past is
            // the one the node was validated against.
            return false;
        }
        let set: Vec<u32> = past
            .iter()
            .copied()
            .filter(|i| g.effective.contains(i))
            .collect();
        if !self.fold(&set).role(author).is_some_and(Role::may_edit) {
            return true;
        }
        g.effective.iter().any(|&r| {
            let Some(rec) = self.controls.get(r as usize) else {
                return false;
            };
            let hits = match &rec.op {
                ControlOp::Remove { targets, .. } => targets.contains(author),
                ControlOp::SetRole { target, role } => target == author && !role.may_edit(),
                _ => false,
            };
            hits && past.binary_search(&r).is_err() && !in_past_of(&rec.hash)
        })
    }

    /// The control ops whose effect keeps non-member `d` out: effective removals of `d`, and
    /// for every op that added `d` and is not effective, the op that voided it (or, if its
    /// author was not entitled, that author's own cut), transitively.
    fn cuts(&self, d: &DeviceId) -> Vec<u32> {
        let g = &self.global;
        let mut out = Vec::new();
        let mut seen: BTreeSet<DeviceId> = BTreeSet::new();
        let mut work = vec![*d];
        while let Some(d) = work.pop() {
            if !seen.insert(d) || seen.len() > MAX_GROUP_DEVICES {
                continue;
            }
            for (i, c) in self.controls.iter().enumerate() {
                let i = i as u32;
                match &c.op {
                    ControlOp::Remove { targets, .. }
                        if targets.contains(&d) && g.effective.contains(&i) =>
                    {
                        out.push(i);
                    }
                    ControlOp::Add { members, .. }
                        if !g.effective.contains(&i) && members.iter().any(|m| m.device() == d) =>
                    {
                        match g.voided_by.get(&i) {
                            Some(v) => out.push(*v),
                            None => work.push(c.author),
                        }
                    }
                    _ => {}
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The epochs of every op (effective or not) that adds `d`.
    fn adds_of(&self, d: &DeviceId) -> Vec<u32> {
        self.controls
            .iter()
            .filter(|c| {
                matches!(&c.op, ControlOp::Add { members, .. }
                    if members.iter().any(|m| m.device() == *d))
            })
            .filter_map(|c| c.epoch)
            .collect()
    }

    /// Hashes of the control ops, by index.
    pub(crate) fn control_hashes(&self) -> Vec<NodeHash> {
        self.controls.iter().map(|c| c.hash).collect()
    }

    /// The authors whose document ops may be whited out: `None` if any (some op was voided,
    /// so anyone may have been added by a voided op), else the devices named by a `Remove` or
    /// a `SetRole`.
    pub(crate) fn whiteout_suspects(&self) -> Option<BTreeSet<DeviceId>> {
        if !self.global.voided_by.is_empty() || self.global.effective.len() != self.controls.len() {
            return None;
        }
        let mut out = BTreeSet::new();
        for c in &self.controls {
            match &c.op {
                ControlOp::Remove { targets, .. } => out.extend(targets.iter().copied()),
                ControlOp::SetRole { target, .. } => {
                    out.insert(*target);
                }
                _ => {}
            }
        }
        Some(out)
    }

    /// Indexes of the control ops in a causal past.
    /// Indexes of the control ops in a causal past.
    fn controls_in(&self, past: &GraphPast<'_>) -> Vec<u32> {
        self.controls
            .iter()
            .enumerate()
            .filter(|(_, c)| past.contains_node(&c.hash))
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// The group keys for exactly these header epochs, if this device holds every root.
    pub(crate) fn keys_for(&mut self, prefixes: &[EpochIdPrefix]) -> Option<&GroupKeys> {
        if let Some(i) = self.keys.iter().position(|(p, _)| p == prefixes) {
            return self.keys.get(i).map(|(_, k)| k);
        }
        let mut roots = Vec::with_capacity(prefixes.len());
        for p in prefixes {
            let e = self.epoch_by_prefix(p)?;
            roots.push(self.roots.get(&e)?);
        }
        let keys = GroupKeys::derive(&roots).ok()?;
        if self.keys.len() >= 8 {
            self.keys.clear();
        }
        self.keys.push((prefixes.to_vec(), keys));
        self.keys.last().map(|(_, k)| k)
    }

    /// True if no device that is not a member in this view can ever derive the key of epochs
    /// `set`: for every such device that was sealed an epoch, some epoch `h` of the set
    /// (1) was created by, or descends from, a control op that keeps it out (its effective
    /// removal, or the op that voided the op adding it; see `cuts`), (2) was not sealed to it,
    /// and (3) is concurrent with no op that adds it. (Being sealed an epoch is not the only
    /// way to learn it: under `Full`, any later epoch sealed to a device wraps the earlier
    /// ones; and the author of an op adding a device forwards to it the epochs concurrent with
    /// that op, whatever its own view says of later removals. No epoch descending from such
    /// an op is sealed to the device (in the past of that op the device is not a member, rule
    /// K2), and condition 3 rules out the forward.)
    pub(crate) fn excludes_removed(&self, set: &[u32]) -> bool {
        let current = self.current();
        let mut outsiders: BTreeSet<DeviceId> = BTreeSet::new();
        for e in &self.epochs {
            for d in &e.recipients {
                if !current.members.contains_key(d) {
                    outsiders.insert(*d);
                }
            }
        }
        outsiders.iter().all(|d| {
            let cuts = self.cuts(d);
            let adds = self.adds_of(d);
            set.iter().any(|&h| {
                self.epoch(h).is_some_and(|rec| {
                    rec.recipients.binary_search(d).is_err()
                        && !adds.iter().any(|&a| self.concurrent(a, h))
                        && cuts.iter().any(|c| {
                            *c == rec.control
                                || self
                                    .controls
                                    .get(rec.control as usize)
                                    .is_some_and(|x| x.past.binary_search(c).is_ok())
                        })
                })
            })
        })
    }

    /// Devices sealed every one of these epochs.
    pub(crate) fn common_recipients(&self, epochs: &[u32]) -> BTreeSet<DeviceId> {
        let mut it = epochs.iter().filter_map(|&e| self.epoch(e));
        let Some(first) = it.next() else {
            return BTreeSet::new();
        };
        let mut set: BTreeSet<DeviceId> = first.recipients.iter().copied().collect();
        for e in it {
            set.retain(|d| e.recipients.binary_search(d).is_ok());
        }
        set
    }

    /// Remembers the epochs of the envelope a node arrived in, for the check at apply time.
    pub(crate) fn set_context(&mut self, node: NodeHash, epochs: Vec<EpochIdPrefix>) {
        if self.ctx.insert(node, epochs).is_none() {
            self.ctx_order.push_back(node);
            while self.ctx_order.len() > MAX_ENVELOPE_CONTEXTS {
                if let Some(old) = self.ctx_order.pop_front() {
                    self.ctx.remove(&old);
                }
            }
        }
    }

    /// Forgets the delivery context of a node that was not parked.
    pub(crate) fn drop_context(&mut self, node: &NodeHash) {
        let _ = self.take_context(node);
    }

    fn take_context(&mut self, node: &NodeHash) -> Option<Vec<EpochIdPrefix>> {
        let c = self.ctx.remove(node)?;
        self.ctx_order.retain(|h| h != node);
        Some(c)
    }

    // ---- Learning keys ----------------------------------------------------------------------

    /// Forgets the provisional (forwarded, unconfirmed) secret of epoch `e`, if it has one;
    /// true if it did.
    fn drop_provisional(&mut self, e: u32) -> bool {
        if !self.provisional.remove(&e) {
            return false;
        }
        self.roots.remove(&e);
        self.secrets.remove(&e);
        self.keys.clear();
        true
    }

    /// Records a forwarded secret of epoch `e` (checked by the caller: from the adder, for an
    /// epoch not in the past of the op that added this device). It is provisional: the adder
    /// alone vouches for it, so a sealed secret, a history link or a later forward replaces
    /// it until an envelope under it opens (its key commitment confirms it). Returns false if
    /// the epoch's key is already known and confirmed.
    pub(crate) fn learn_forwarded(&mut self, e: u32, secret: EpochSecret) -> bool {
        if self.has_root(e) && !self.provisional.contains(&e) {
            return false;
        }
        self.drop_provisional(e);
        self.learn_secret(e, secret);
        if self.has_root(e) {
            self.provisional.insert(e);
        }
        true
    }

    /// An envelope under these epochs opened: their forwarded secrets are confirmed.
    pub(crate) fn confirm(&mut self, prefixes: &[EpochIdPrefix]) {
        if self.provisional.is_empty() {
            return;
        }
        for p in prefixes {
            if let Some(e) = self.epoch_by_prefix(p) {
                self.provisional.remove(&e);
            }
        }
    }

    /// Records the secret (and so the root) of epoch `e`, then follows history links down
    /// (policy `Full`): every secret a link unwraps is recorded, and its own link followed in
    /// turn. Only epochs the link's op supersedes and whose key is still unknown are taken.
    pub(crate) fn learn_secret(&mut self, e: u32, secret: EpochSecret) {
        let mut work = vec![(e, secret)];
        while let Some((e, secret)) = work.pop() {
            if self.roots.contains_key(&e) && !self.drop_provisional(e) {
                continue;
            }
            let Some(rec) = self.epochs.get(e as usize) else {
                continue;
            };
            let root = EpochRoot::derive(&secret, rec.op.as_bytes(), self.group.as_bytes());
            let missing = rec.superseded.iter().any(|s| !self.roots.contains_key(s));
            if let (Some(blob), true) = (&rec.history, missing) {
                let ctx = OpContext {
                    group_field: &rec.group_field,
                    author: &rec.author,
                    salt: &rec.salt,
                    group: &self.group,
                };
                let aad = history_aad(&rec.group_field, &rec.author, &rec.salt);
                let opened = history_key(&secret, &ctx)
                    .open(&aad, blob)
                    .ok()
                    .and_then(|pt| decode_history(&pt).ok());
                match opened {
                    Some(pairs) => {
                        for (id, bytes) in pairs {
                            let Some(f) = self.epoch_by_id(&id) else {
                                continue;
                            };
                            if rec.superseded.contains(&f) && !self.roots.contains_key(&f) {
                                work.push((f, EpochSecret::from_bytes(bytes)));
                            }
                        }
                    }
                    None => self.evidence.push(Evidence::BadHistory {
                        op: rec.op,
                        author: rec.author,
                    }),
                }
            }
            self.roots.insert(e, root);
            self.secrets.insert(e, secret);
            self.root_gen += 1;
        }
    }
}

/// Why [`GroupApply`] refused a node.
enum Refusal {
    Group(GroupError),
    Graph(GraphError),
}

impl From<PeerMisbehaved> for Refusal {
    fn from(p: PeerMisbehaved) -> Self {
        Refusal::Group(GroupError::Peer(p))
    }
}

impl From<GroupError> for Refusal {
    fn from(e: GroupError) -> Self {
        Refusal::Group(e)
    }
}

/// What validating a control op decided, before anything changes.
struct Plan {
    /// For an epoch-creating op.
    epoch: Option<EpochPlan>,
}

/// The new epoch of an epoch-creating op.
struct EpochPlan {
    /// The recipients, sorted, with their KEM keys.
    recipients: Vec<(DeviceId, KemPublicKey)>,
    /// The epochs in its causal past.
    ancestors: BTreeSet<u32>,
    /// The heads it supersedes.
    superseded: Vec<u32>,
}

/// The graph layer's [`Apply`] for a group: validates every node against the membership of
/// its causal past, then applies it (membership, epochs, keys, document).
pub(crate) struct GroupApply<'a> {
    pub state: &'a mut GroupState,
    pub doc: &'a mut Doc,
    pub skipped: &'a mut HashSet<NodeHash>,
    /// Nodes applied as whiteout (anchors only).
    pub whiteout: &'a mut HashSet<NodeHash>,
    pub kem: &'a DeviceKemSecret,
}

impl Apply for GroupApply<'_> {
    type Effect = Vec<Patch>;

    fn apply(&mut self, node: &Ready<'_>) -> Result<Vec<Patch>, GraphError> {
        let ctx = self.state.take_context(&node.hash());
        match self.apply_checked(node, ctx) {
            Ok(p) => Ok(p),
            Err(Refusal::Graph(e)) => Err(e),
            Err(Refusal::Group(e)) => {
                let g = match &e {
                    GroupError::Peer(p) if !p.invalidates_node() => {
                        GraphError::NotApplied(p.short())
                    }
                    GroupError::Peer(p) => GraphError::Refused(p.short()),
                    _ => GraphError::Refused("group rule broken"),
                };
                self.state.last_error = Some(e);
                Err(g)
            }
        }
    }
}

impl GroupApply<'_> {
    /// The checks, in order (each a pure function of the node and its causal past):
    ///
    /// 1. The genesis node (group field all zeros) carries `Genesis`; no other node does.
    /// 2. The author is a member in the membership of the causal past, with a role that
    ///    allows the payload (document ops: writer or admin; membership ops: admin; key
    ///    updates and empty merge nodes: any member).
    /// 3. A control op's own rules: targets are (not) members, rule K2 for its sealed
    ///    secrets, the history policy.
    /// 4. The envelope context, if the node came in a group envelope: every header epoch was
    ///    created in the node's causal past and sealed to its author.
    /// 5. Apply: the control op (membership, epoch, keys), or the document ops.
    fn apply_checked(
        &mut self,
        node: &Ready<'_>,
        ctx: Option<Vec<EpochIdPrefix>>,
    ) -> Result<Vec<Patch>, Refusal> {
        let body = node.body();
        let author = body.author;
        let genesis = body.group == GroupId::GENESIS;
        let past = if genesis {
            Vec::new()
        } else {
            self.state.controls_in(node.past())
        };
        let m = self.state.membership(&past);
        match &body.payload {
            Payload::Crdt(ops) => {
                // 1.
                if genesis {
                    return Err(PeerMisbehaved::GenesisMisplaced.into());
                }
                // 2.
                let role = m
                    .role(&author)
                    .ok_or(PeerMisbehaved::NotAMember { author })?;
                if !ops.is_empty() && !role.may_edit() {
                    return Err(PeerMisbehaved::RoleTooLow {
                        author,
                        role,
                        action: Action::Edit,
                    }
                    .into());
                }
                // 4.
                self.check_context(node, ctx.as_deref())?;
                // 5.
                if self.must_skip(node, ops) {
                    self.skipped.insert(node.hash());
                    return Ok(Vec::new());
                }
                // Whiteout: a node applied now is in the causal past of no control op yet.
                if !ops.is_empty() && self.state.whited_out(&author, &past, |_| false) {
                    apply_crdt_whiteout(self.doc, node).map_err(Refusal::Graph)?;
                    self.whiteout.insert(node.hash());
                    return Ok(Vec::new());
                }
                apply_crdt(self.doc, node).map_err(Refusal::Graph)
            }
            Payload::Group(bytes) => {
                // 1.–2. by the op's kind alone, before the full decoding verifies up to 256
                // contact cards: a writer's `Add` costs receivers nothing more.
                precheck(super::wire::control_kind(bytes), &m, &author, genesis)?;
                let op = ControlOp::decode(bytes).map_err(|e| match e {
                    GroupError::Decode(d) => PeerMisbehaved::MalformedControl(d).into(),
                    other => other,
                })?;
                // 1.–3.
                let plan = self.validate_control(node, &op, &m, &past, genesis)?;
                // 4.
                self.check_context(node, ctx.as_deref())?;
                // 5.
                self.commit_control(node, op, plan, &past, genesis);
                Ok(Vec::new())
            }
        }
    }

    fn validate_control(
        &self,
        node: &Ready<'_>,
        op: &ControlOp,
        m: &Membership,
        past: &[u32],
        genesis: bool,
    ) -> Result<Plan, Refusal> {
        let author = node.body().author;
        let admin = |action: Action| -> Result<(), Refusal> {
            let role = m
                .role(&author)
                .ok_or(PeerMisbehaved::NotAMember { author })?;
            if !role.may_administer() {
                return Err(PeerMisbehaved::RoleTooLow {
                    author,
                    role,
                    action,
                }
                .into());
            }
            Ok(())
        };
        let after = match op {
            ControlOp::Genesis { members, .. } => {
                if !genesis {
                    return Err(PeerMisbehaved::GenesisMisplaced.into());
                }
                let creator = members.iter().find(|e| e.device() == author);
                match creator {
                    None => return Err(PeerMisbehaved::BadGenesis("creator not a member").into()),
                    Some(e) if e.role != Role::Admin => {
                        return Err(PeerMisbehaved::BadGenesis("creator not an admin").into())
                    }
                    Some(_) => {}
                }
                let mut after = Membership::default();
                after.apply(op, node.hash());
                after
            }
            _ if genesis => return Err(PeerMisbehaved::GenesisMisplaced.into()),
            ControlOp::Add { members, .. } => {
                admin(Action::Add)?;
                if let Some(e) = members.iter().find(|e| m.members.contains_key(&e.device())) {
                    return Err(PeerMisbehaved::AlreadyMember { device: e.device() }.into());
                }
                let mut after = m.clone();
                after.apply(op, node.hash());
                after
            }
            ControlOp::Remove { targets, .. } => {
                admin(Action::Remove)?;
                if let Some(t) = targets.iter().find(|t| !m.members.contains_key(t)) {
                    return Err(PeerMisbehaved::TargetNotAMember { device: *t }.into());
                }
                if targets.contains(&author) {
                    return Err(PeerMisbehaved::RemovesItself.into());
                }
                let mut after = m.clone();
                after.apply(op, node.hash());
                after
            }
            ControlOp::SetRole { target, .. } => {
                admin(Action::SetRole)?;
                if !m.members.contains_key(target) {
                    return Err(PeerMisbehaved::TargetNotAMember { device: *target }.into());
                }
                return Ok(Plan { epoch: None });
            }
            ControlOp::KeyUpdate { .. } => {
                if !m.members.contains_key(&author) {
                    return Err(PeerMisbehaved::NotAMember { author }.into());
                }
                m.clone()
            }
        };
        let Some(key) = op.key() else {
            return Ok(Plan { epoch: None });
        };
        let expected: Vec<(DeviceId, KemPublicKey)> =
            after.members.iter().map(|(d, i)| (*d, i.kem)).collect();
        if expected.len() > MAX_GROUP_DEVICES {
            return Err(PeerMisbehaved::TooManyDevices {
                count: expected.len(),
                max: MAX_GROUP_DEVICES,
            }
            .into());
        }
        check_sealed(key, &expected)?;
        let policy = match op {
            ControlOp::Genesis { policy, .. } => *policy,
            _ => self.state.policy.unwrap_or_default(),
        };
        let wants_history = !genesis && policy.history == HistoryPolicy::Full;
        if key.history.is_some() != wants_history {
            return Err(PeerMisbehaved::HistoryPolicy {
                present: key.history.is_some(),
            }
            .into());
        }
        // Every epoch-creating op is a control op, so the epochs in the causal past are those
        // of the control ops in it.
        let ancestors: BTreeSet<u32> = past
            .iter()
            .filter_map(|&i| self.state.controls.get(i as usize)?.epoch)
            .collect();
        let superseded = heads_of(&self.state.epochs, &ancestors);
        Ok(Plan {
            epoch: Some(EpochPlan {
                recipients: expected,
                ancestors,
                superseded,
            }),
        })
    }

    /// Step 4: the envelope's epochs against the node.
    fn check_context(
        &self,
        node: &Ready<'_>,
        ctx: Option<&[EpochIdPrefix]>,
    ) -> Result<(), Refusal> {
        let Some(ctx) = ctx else { return Ok(()) };
        let author = node.body().author;
        for p in ctx {
            let rec = self
                .state
                .epoch_by_prefix(p)
                .and_then(|e| self.state.epoch(e))
                .ok_or(PeerMisbehaved::EpochNotInPast { epoch: *p })?;
            if !node.past().contains_node(&rec.op) {
                return Err(PeerMisbehaved::EpochNotInPast { epoch: *p }.into());
            }
            if rec.recipients.binary_search(&author).is_err() {
                return Err(PeerMisbehaved::AuthorNotRecipient { epoch: *p }.into());
            }
        }
        Ok(())
    }

    /// `FutureOnly`: a node is skipped (kept in the graph, not applied to the document) if one
    /// of its ops names an element of an opaque node or of a skipped node: this replica never
    /// saw that element. The rule is a function of the graph, so every replica that joined at
    /// the same point skips the same nodes.
    fn must_skip(&self, node: &Ready<'_>, ops: &[WireOp]) -> bool {
        if !self.state.opaque && self.skipped.is_empty() {
            return false;
        }
        let unseen = |k: &WireKey| match k {
            WireKey::Elem(ElemRef::Node { node: h, .. }) => {
                self.skipped.contains(h) || node.lookup(h).is_some_and(|i| i.opaque)
            }
            _ => false,
        };
        ops.iter()
            .any(|op| unseen(&op.cursor.key) || op.cursor.path.iter().any(|(_, k)| unseen(k)))
    }

    /// Records a validated control op. Cannot fail.
    fn commit_control(
        &mut self,
        node: &Ready<'_>,
        op: ControlOp,
        plan: Plan,
        past: &[u32],
        genesis: bool,
    ) {
        let st = &mut *self.state;
        let hash = node.hash();
        let body = node.body();
        let height = past
            .iter()
            .filter_map(|&i| st.controls.get(i as usize))
            .map(|c| c.order.1)
            .max()
            .map_or(0, |h| h.saturating_add(1));
        if let ControlOp::Genesis { policy, .. } = &op {
            st.policy = Some(*policy);
        }
        let mut epoch = None;
        let mut mine = None;
        if let (
            Some(EpochPlan {
                recipients,
                ancestors,
                superseded,
            }),
            Some(key),
        ) = (plan.epoch, op.key())
        {
            let e = st.epochs.len() as u32;
            let id = EpochId::for_op(hash.as_bytes());
            let devices: Vec<DeviceId> = recipients.iter().map(|(d, _)| *d).collect();
            if let Ok(i) = devices.binary_search(&st.me) {
                mine = key.sealed.get(i).copied().map(|s| (s, key.salt));
            }
            st.epochs.push(EpochRecord {
                op: hash,
                control: st.controls.len() as u32,
                id,
                author: body.author,
                group_field: body.group,
                salt: key.salt,
                recipients: devices,
                ancestors,
                superseded,
                history: key.history.clone(),
            });
            st.epoch_at.insert(id, e);
            st.prefix_at.entry(id.prefix()).or_insert(e);
            st.keys.clear();
            epoch = Some(e);
        }
        let i = st.controls.len() as u32;
        st.controls.push(ControlRecord {
            hash,
            author: body.author,
            past: past.to_vec(),
            order: (body.lamport, height, hash),
            op,
            epoch,
        });
        st.control_at.insert(hash, i);
        if genesis {
            st.cache.borrow_mut().clear();
            st.folds.borrow_mut().clear();
        }
        // The resolution of every control op, and the heads: a pure function of the set of
        // control ops, recomputed whenever one arrives (it may void ops applied earlier).
        st.refresh();
        // Open this device's sealed secret, if it is a recipient.
        if let (Some(e), Some((sealed, salt))) = (epoch, mine) {
            let ctx = SealContext {
                group: *body.group.as_bytes(),
                author: *body.author.as_bytes(),
                salt,
            };
            match self
                .kem
                .open_epoch_secret(&sealed, &ctx, self.state.me.as_bytes())
            {
                Ok(secret) => self.state.learn_secret(e, secret),
                Err(_) => self.state.evidence.push(Evidence::UnopenableSecret {
                    op: hash,
                    author: body.author,
                }),
            }
        }
    }
}

/// Checks 1 and 2 for a control op, from its kind tag only (see
/// [`control_kind`](super::wire::control_kind)). An unknown kind is left to the decoder.
fn precheck(
    kind: Option<u32>,
    m: &Membership,
    author: &DeviceId,
    genesis: bool,
) -> Result<(), Refusal> {
    let Some(kind) = kind else { return Ok(()) };
    if (kind == 0) != genesis {
        return Err(PeerMisbehaved::GenesisMisplaced.into());
    }
    if genesis {
        return Ok(());
    }
    let role = m
        .role(author)
        .ok_or(PeerMisbehaved::NotAMember { author: *author })?;
    let action = match kind {
        1 => Action::Add,
        2 => Action::Remove,
        3 => Action::SetRole,
        _ => return Ok(()),
    };
    if !role.may_administer() {
        return Err(PeerMisbehaved::RoleTooLow {
            author: *author,
            role,
            action,
        }
        .into());
    }
    Ok(())
}

/// True if the author of control op `rec` has the role it needs in `m` (the fold of the
/// effective ops in its causal past).
fn authorized(rec: &ControlRecord, m: &Membership) -> bool {
    match &rec.op {
        ControlOp::Genesis { .. } => true,
        ControlOp::Add { .. } | ControlOp::Remove { .. } | ControlOp::SetRole { .. } => {
            m.role(&rec.author).is_some_and(Role::may_administer)
        }
        ControlOp::KeyUpdate { .. } => m.members.contains_key(&rec.author),
    }
}

/// The devices whose concurrent control ops an op voids (strong removal): `(device, all)`,
/// `all` for a removal (every control op), not for a demotion below admin (membership ops
/// only: `Add`, `Remove`, `SetRole`).
fn strips(op: &ControlOp) -> Vec<(DeviceId, bool)> {
    match op {
        ControlOp::Remove { targets, .. } => targets.iter().map(|t| (*t, true)).collect(),
        ControlOp::SetRole { target, role } if !role.may_administer() => vec![(*target, false)],
        _ => Vec::new(),
    }
}

/// Rule K2: one sealed secret per expected device, in order, each for that device's key.
fn check_sealed(key: &KeyUpdate, expected: &[(DeviceId, KemPublicKey)]) -> Result<(), Refusal> {
    if key.sealed.len() != expected.len() {
        return Err(PeerMisbehaved::SealedCount {
            expected: expected.len(),
            found: key.sealed.len(),
        }
        .into());
    }
    for (index, (s, (device, kem))) in key.sealed.iter().zip(expected).enumerate() {
        if *s.kem_key_id() != kem.key_id() {
            return Err(PeerMisbehaved::SealedRecipient {
                index,
                device: *device,
            }
            .into());
        }
    }
    Ok(())
}

/// The heads of a set of epochs: those not in the causal past of another one in the set.
pub(crate) fn heads_of(epochs: &[EpochRecord], set: &BTreeSet<u32>) -> Vec<u32> {
    set.iter()
        .copied()
        .filter(|e| {
            !set.iter().any(|f| {
                epochs
                    .get(*f as usize)
                    .is_some_and(|r| r.ancestors.contains(e))
            })
        })
        .collect()
}
