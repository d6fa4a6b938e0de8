//! The JSON CRDT of Kleppmann & Beresford, "A Conflict-Free Replicated JSON Datatype" (IEEE
//! TPDS 2017): pure, deterministic, no crypto and no I/O.
//!
//! # Values and objects
//!
//! A [`Doc`] is a tree of maps, lists and *multi-value registers*. Leaves are primitives
//! ([`Value`]): null, booleans, 64-bit integers, finite floats and strings. Text is a list of
//! one-character strings, stored compactly.
//!
//! Every map key has three separate namespaces (`mapT`, `listT`, `regT`): if one replica makes
//! `"a"` a map while another concurrently makes it a list, both survive (paper Fig. 5).
//!
//! # Operation ids
//!
//! Every mutation, deletes included, is one operation with a Lamport id `(counter, actor)`
//! ([`OpId`]); the next local counter is 1 + the greatest counter applied so far. Ids are
//! totally ordered (counter, then actor bytes); among concurrent inserts at one position the
//! greater id comes first (rule INSERT2), and the order is therefore the same on every replica.
//!
//! # Conflicts
//!
//! Concurrent assignments to one register are all kept (Fig. 1). [`Doc::to_json`] shows the
//! value with the greatest id; [`Doc::conflicts`] shows them all. Edits inside a map or list
//! element that another replica concurrently deleted survive, and make it visible again
//! (Figs. 2 and 6): no user input is lost.
//!
//! # The one deliberate departure
//!
//! Assigning a primitive clears causally prior content in *all three* namespaces (the paper's
//! `clearElem`), not only the register, so `a := {}; a.x := 1; a := "s"` leaves just `"s"`, as
//! a sequential reader expects. Concurrent semantics are unchanged.
//!
//! # Example
//!
//! ```
//! use sealdoc::doc::{ActorId, Doc};
//! use serde_json::json;
//!
//! let mut alice = Doc::new(ActorId::from_u64(1));
//! let mut bob = Doc::new(ActorId::from_u64(2));
//!
//! let c = alice.transact(|tx| {
//!     tx.set("title", "Groceries")?;
//!     tx.set("items", json!([{"name": "milk", "done": false}]))?;
//!     Ok::<_, sealdoc::doc::DocError>(())
//! })?;
//! bob.apply_change(&c.change.expect("ops were made"))?;
//!
//! // Concurrent edits: both survive.
//! let a = alice.transact(|tx| tx.set("title", "Shopping"))?.change.expect("one op");
//! let b = bob.transact(|tx| tx.push("items", json!({"name": "eggs"})))?.change.expect("ops");
//! alice.apply_change(&b)?;
//! bob.apply_change(&a)?;
//! assert_eq!(alice.to_json(), bob.to_json());
//! assert_eq!(alice.get("title"), Some(json!("Shopping")));
//! assert_eq!(alice.len("items")?, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod apply;
mod error;
mod id;
mod node;
mod op;
mod patch;
mod path;
mod read;
mod seq;
mod state;
mod txn;

pub use error::DocError;
pub use id::{ActorId, CausalPast, Clock, OpId, MAX_ACTOR_LEN};
pub use op::{
    Change, Cursor, Key, Mutation, OpBody, Tag, MAX_COUNTER, MAX_KEY_LEN, MAX_OPS_PER_CHANGE,
    MAX_PATH_DEPTH,
};
pub use patch::{Patch, PatchAction, PathSeg};
pub use path::{IntoPathSeg, Path};
pub use read::Conflict;
pub use txn::{Committed, LocalOps, Transaction};
pub use value::{Value, MAX_STRING_LEN};

mod value;

use apply::{check, rollback, Applier, ICursor, IMut, IPath, UndoLog, K};
use id::{ActorTable, Id};
use node::Entry;

/// One replica's copy of a JSON CRDT document.
///
/// Local edits go through [`Doc::transact`] (or [`Doc::transaction`]), which returns the
/// operations to send; remote edits arrive through [`Doc::apply_change`] (a bare document)
/// or [`Doc::apply_ops`] (the signed-operation graph, which supplies causality itself).
/// Reads: [`Doc::to_json`], [`Doc::get`], [`Doc::keys`], [`Doc::len`], [`Doc::text`],
/// [`Doc::conflicts`], and the paper's cursor reads [`Doc::idx`], [`Doc::keys_at`],
/// [`Doc::values_at`].
#[derive(Clone, Debug)]
pub struct Doc {
    pub(crate) actors: ActorTable,
    /// Greatest counter applied per interned actor.
    pub(crate) actor_max: Vec<u64>,
    /// Greatest counter applied from anyone: the Lamport clock (rule MAKE-OP).
    pub(crate) max_counter: u64,
    /// The actor local ops are made as.
    pub(crate) local: u32,
    /// The root entry: the paper's key `doc` (`mapT(doc)`, `listT(doc)`, `regT(doc)`).
    pub(crate) root: Entry,
    /// Number of operations applied.
    pub(crate) op_count: u64,
    /// The path of the last op applied, interned: consecutive ops on one container (typing)
    /// share it instead of interning their path again. A memo only: it is compared key by
    /// key with each new op's path under the current actor table before it is reused.
    pub(crate) last_path: IPath,
    /// The undo log of the open transaction (or multi-op batch). Empty otherwise; kept here
    /// so that each transaction does not allocate its own.
    pub(crate) undo: UndoLog,
}

/// Outcome of [`Doc::apply_change`].
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub enum Applied {
    /// The change was applied; these are its visible effects.
    Applied(Vec<Patch>),
    /// Every op of the change had been applied before; nothing changed.
    Duplicate,
}

impl Doc {
    /// An empty document whose local operations are made as `actor`.
    pub fn new(actor: ActorId) -> Self {
        let mut actors = ActorTable::default();
        let local = actors.intern(&actor);
        Doc {
            actors,
            actor_max: vec![0],
            max_counter: 0,
            local,
            root: Entry::default(),
            op_count: 0,
            last_path: IPath::from([]),
            undo: UndoLog::default(),
        }
    }

    /// The actor local operations are made as.
    pub fn actor(&self) -> &ActorId {
        self.actors.actor(self.local)
    }

    /// Makes later local operations as `actor`.
    pub fn set_actor(&mut self, actor: ActorId) {
        self.local = self.intern(&actor);
    }

    /// Gives an actor new bytes, keeping every id it made. The signed-operation graph uses
    /// this to turn a provisional actor into `author ‖ node hash` once a local change is
    /// encoded.
    ///
    /// # Errors
    ///
    /// [`DocError::UnknownActor`] if `old` is unknown; [`DocError::ActorInUse`] if `new` is
    /// already known.
    pub fn rename_actor(&mut self, old: &ActorId, new: ActorId) -> Result<(), DocError> {
        self.actors.rename(old, new)
    }

    /// The Lamport clock: the greatest counter applied so far.
    pub fn max_counter(&self) -> u64 {
        self.max_counter
    }

    /// Number of operations applied (local and remote).
    pub fn op_count(&self) -> u64 {
        self.op_count
    }

    /// The version vector of everything applied.
    pub fn clock(&self) -> Clock {
        let mut c = Clock::new();
        for (i, &max) in self.actor_max.iter().enumerate() {
            if max > 0 {
                c.observe(self.actors.actor(i as u32), max);
            }
        }
        c
    }

    fn intern(&mut self, actor: &ActorId) -> u32 {
        let i = self.actors.intern(actor);
        if self.actor_max.len() < self.actors.len() {
            self.actor_max.resize(self.actors.len(), 0);
        }
        i
    }

    /// Applies a change made by another replica's [`Doc::transact`].
    ///
    /// Checks, in order: batch size; duplicate (every op already applied → `Duplicate`);
    /// causal readiness (every dependency applied); the Lamport rule (the first counter
    /// exceeds every counter in `deps`); then each op as in [`Doc::apply_ops`].
    ///
    /// # Errors
    ///
    /// [`DocError::MissingDependencies`] if the change is not causally ready (deliver its
    /// dependencies first); any other error means the change is malformed or forged. Either
    /// way the document is unchanged.
    pub fn apply_change(&mut self, change: &Change) -> Result<Applied, DocError> {
        let n = change.ops.len();
        if n == 0 || n > MAX_OPS_PER_CHANGE {
            return Err(DocError::BadBatch(n));
        }
        let end = change
            .start
            .checked_add(n as u64 - 1)
            .ok_or(DocError::CounterOverflow)?;
        if let Some(a) = self.actors.lookup(&change.actor) {
            let seen = self.actor_max[a as usize];
            if seen >= end {
                return Ok(Applied::Duplicate);
            }
            // The author's earlier ops must be exactly what the change depends on: anything
            // else means two histories from one author.
            if seen >= change.start || change.deps.get(&change.actor) != seen {
                if change.deps.get(&change.actor) > seen {
                    return Err(DocError::MissingDependencies);
                }
                return Err(DocError::Overlap(change.actor.clone()));
            }
        }
        for (actor, c) in change.deps.iter() {
            let ok = self
                .actors
                .lookup(actor)
                .is_some_and(|a| self.actor_max[a as usize] >= c);
            if !ok {
                return Err(DocError::MissingDependencies);
            }
        }
        let max_dep = change.deps.max_counter();
        if change.start <= max_dep {
            return Err(DocError::BadCounter {
                counter: change.start,
                max_dep,
            });
        }
        self.apply_ops(&change.actor, change.start, &change.ops, &change.deps)
            .map(Applied::Applied)
    }

    /// Applies a batch of remote ops: op `i` gets id `(start + i, actor)`; its causal past is
    /// what `past` says plus ops `0..i` of the batch.
    ///
    /// The caller is responsible for causal readiness, duplicates and the Lamport rule (the
    /// signed-operation graph checks them from its DAG). This method checks every op's shape,
    /// and that every element it names exists and is in its causal past. The batch applies
    /// atomically: on error nothing changes.
    ///
    /// # Errors
    ///
    /// [`DocError::BadBatch`], [`DocError::MalformedCursor`], [`DocError::InvalidValue`],
    /// [`DocError::MissingElement`], [`DocError::ElementNotInPast`],
    /// [`DocError::CounterOverflow`].
    pub fn apply_ops(
        &mut self,
        actor: &ActorId,
        start: u64,
        ops: &[OpBody],
        past: &dyn CausalPast,
    ) -> Result<Vec<Patch>, DocError> {
        // Usually one patch per op; sized so that a one-op change does not over-allocate.
        let mut patches = Vec::with_capacity(ops.len().min(16));
        self.apply_batch(actor, start, ops, past, Some(&mut patches))?;
        Ok(patches)
    }

    /// Applies a batch of remote ops that the group layer has *whited out* (their author was
    /// removed, or demoted below writer, concurrently with them): every op is checked exactly
    /// as [`Doc::apply_ops`] checks it, and takes its counter, but only inserts change the
    /// tree, as invisible anchors (the element exists, holding no value, so honest inserts
    /// that name it keep their place); assigns and deletes change nothing. Emits no patch.
    /// The batch applies atomically.
    ///
    /// # Errors
    ///
    /// As [`Doc::apply_ops`]: whether a batch is valid does not depend on the mode.
    pub(crate) fn apply_ops_whiteout(
        &mut self,
        actor: &ActorId,
        start: u64,
        ops: &[OpBody],
        past: &dyn CausalPast,
    ) -> Result<(), DocError> {
        self.apply_batch(actor, start, ops, past, None)
    }

    /// [`Doc::apply_ops`] (with `patches`) or [`Doc::apply_ops_whiteout`] (without): the
    /// batch checks, then every op, atomically.
    fn apply_batch(
        &mut self,
        actor: &ActorId,
        start: u64,
        ops: &[OpBody],
        past: &dyn CausalPast,
        mut patches: Option<&mut Vec<Patch>>,
    ) -> Result<(), DocError> {
        let n = ops.len();
        if n == 0 || n > MAX_OPS_PER_CHANGE {
            return Err(DocError::BadBatch(n));
        }
        if start == 0
            || start
                .checked_add(n as u64 - 1)
                .is_none_or(|end| end > MAX_COUNTER)
        {
            return Err(DocError::CounterOverflow);
        }
        for op in ops {
            op.validate()?;
        }
        let known = self.actors.lookup(actor).is_some();
        let a = self.intern(actor);
        let saved = (self.max_counter, self.actor_max[a as usize], self.op_count);
        // A single op is checked in full before it changes anything, so it needs no undo log.
        let log = n > 1;
        self.undo.reset();
        let mut result = Ok(());
        for (i, op) in ops.iter().enumerate() {
            let id = Id::new(start + i as u64, a);
            let r = match patches.as_deref_mut() {
                Some(p) => self.apply_one(id, op, Some(start), past, log, Some(p), false),
                None => self.apply_one_anchor(id, op, start, past, log),
            };
            if let Err(e) = r {
                result = Err(e);
                break;
            }
        }
        if result.is_err() && log {
            rollback(&mut self.root, &mut self.undo);
        }
        self.undo.reset();
        if let Err(e) = result {
            self.max_counter = saved.0;
            self.actor_max[a as usize] = saved.1;
            self.op_count = saved.2;
            if !known {
                self.actors.forget_last(actor);
                self.actor_max.truncate(self.actors.len());
            }
            return Err(e);
        }
        Ok(())
    }

    /// One op of [`Doc::apply_ops_whiteout`]: checked in full, then an insert is applied as an
    /// anchor; an assign or a delete only takes its counter.
    fn apply_one_anchor(
        &mut self,
        id: Id,
        op: &OpBody,
        start: u64,
        past: &dyn CausalPast,
        log: bool,
    ) -> Result<(), DocError> {
        let key = self.intern_cursor(&op.cursor, id)?;
        let icur = ICursor {
            path: &self.last_path,
            key,
        };
        let actors = &self.actors;
        let mut in_past = |x: Id| {
            if x.actor == id.actor && x.counter >= start {
                x.counter < id.counter
            } else {
                past.contains(x.counter, actors.actor(x.actor))
            }
        };
        check(&self.root, &icur, id, &mut in_past, actors)?;
        if let Mutation::Insert(v) = &op.mutation {
            let undo = log.then_some(&mut self.undo);
            let mut ap = Applier::new(actors, id, &mut in_past, undo, None);
            ap.anchor = true;
            ap.apply(&mut self.root, &icur, &IMut::Insert(v))?;
        }
        self.max_counter = self.max_counter.max(id.counter);
        let slot = &mut self.actor_max[id.actor as usize];
        *slot = (*slot).max(id.counter);
        self.op_count += 1;
        Ok(())
    }

    /// Applies one op with id `id`. `batch_start` is the first counter of the batch `id` belongs
    /// to (ops of the batch before `id` are in its past); `None` for a local op, whose causal
    /// past is everything applied.
    ///
    /// The elements the op names are checked (they exist, and are in its causal past) before
    /// anything changes, unless `known_elems`: only for local ops the library built itself
    /// from elements it just looked up. With `log`, every change is recorded in `self.undo`;
    /// with `patches`, the visible effects are pushed there.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply_one(
        &mut self,
        id: Id,
        op: &OpBody,
        batch_start: Option<u64>,
        past: &dyn CausalPast,
        log: bool,
        patches: Option<&mut Vec<Patch>>,
        known_elems: bool,
    ) -> Result<(), DocError> {
        let key = self.intern_cursor(&op.cursor, id)?;
        let icur = ICursor {
            path: &self.last_path,
            key,
        };
        let actors = &self.actors;
        let mut in_past = |x: Id| match batch_start {
            None => true,
            Some(s) if x.actor == id.actor && x.counter >= s => x.counter < id.counter,
            Some(_) => past.contains(x.counter, actors.actor(x.actor)),
        };
        if !(known_elems && batch_start.is_none()) {
            check(&self.root, &icur, id, &mut in_past, actors)?;
        }
        let m = match &op.mutation {
            Mutation::Assign(v) => IMut::Assign(v),
            Mutation::Insert(v) => IMut::Insert(v),
            Mutation::Delete => IMut::Delete,
        };
        let undo = log.then_some(&mut self.undo);
        Applier::new(actors, id, &mut in_past, undo, patches).apply(&mut self.root, &icur, &m)?;
        self.max_counter = self.max_counter.max(id.counter);
        let slot = &mut self.actor_max[id.actor as usize];
        *slot = (*slot).max(id.counter);
        self.op_count += 1;
        Ok(())
    }

    /// Interned form of a key. An element whose actor is unknown cannot exist.
    fn intern_key(&self, k: &Key, op: Id) -> Result<K, DocError> {
        Ok(match k {
            Key::Doc => K::Doc,
            Key::Str(s) => K::Str(s.clone()),
            Key::Head => K::Head,
            Key::Elem(e) => {
                K::Elem(
                    self.actors
                        .find(e)
                        .ok_or_else(|| DocError::MissingElement {
                            op: self.actors.op_id(op),
                            elem: e.clone(),
                        })?,
                )
            }
        })
    }

    /// True if `k` interns to `ik` under the current actor table.
    fn key_is(&self, k: &Key, ik: &K) -> bool {
        match (k, ik) {
            (Key::Doc, K::Doc) | (Key::Head, K::Head) => true,
            (Key::Str(a), K::Str(b)) => a == b,
            (Key::Elem(e), K::Elem(id)) => {
                e.counter == id.counter && self.actors.get(id.actor) == Some(&e.actor)
            }
            _ => false,
        }
    }

    /// Converts a cursor to interned form: its path becomes `self.last_path` (reused as it
    /// is if it is the same path, so consecutive ops on one container share it), and its final
    /// key is returned. An element whose actor is unknown cannot exist.
    fn intern_cursor(&mut self, cur: &Cursor, op: Id) -> Result<K, DocError> {
        let p = &self.last_path;
        let same = p.len() == cur.path.len()
            && p.iter()
                .zip(&cur.path)
                .all(|((it, ik), (t, k))| it == t && self.key_is(k, ik));
        if !same {
            self.last_path = cur
                .path
                .iter()
                .map(|(t, k)| Ok((*t, self.intern_key(k, op)?)))
                .collect::<Result<IPath, DocError>>()?;
        }
        self.intern_key(&cur.key, op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn a_leaked_transaction_keeps_its_ops_and_is_not_rolled_back_by_the_next() {
        let mut d = Doc::new(ActorId::from_u64(1));
        let _ = d.transact(|tx| tx.set("text", json!([]))).unwrap();
        let mut tx = d.transaction();
        tx.splice_text("text", 0, 0, "ab").unwrap();
        std::mem::forget(tx);
        assert_eq!(d.text("text").unwrap(), "ab");
        let r = d.transact(|tx| {
            tx.splice_text("text", 2, 0, "c")?;
            tx.set("x", 1)?;
            Err::<(), _>(DocError::NotFound { path: "/".into() })
        });
        assert!(r.is_err());
        assert_eq!(d.text("text").unwrap(), "ab");
        assert_eq!(d.get("x"), None);
        let c = d.transact(|tx| tx.splice_text("text", 2, 0, "c")).unwrap();
        assert_eq!(d.text("text").unwrap(), "abc");
        assert_eq!(c.change.map(|c| c.ops.len()), Some(1));
    }

    #[test]
    fn doc_and_its_public_types_are_send_and_sync() {
        assert_send_sync::<Doc>();
        assert_send_sync::<Change>();
        assert_send_sync::<Patch>();
        assert_send_sync::<ActorId>();
        assert_send_sync::<Clock>();
    }
}
