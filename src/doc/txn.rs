//! Local edits: transactions, the paper's cursor commands, and path helpers.
//!
//! A transaction applies each operation as soon as it is made, so later reads in the same
//! transaction see earlier writes. If the closure given to [`Doc::transact`] returns `Err`, or
//! a [`Transaction`] is dropped without [`Transaction::commit`], every operation it made is
//! rolled back (as automerge's transactions do, which fits `?` error handling).

use std::ops::Deref;

use super::apply::rollback;
use super::error::DocError;
use super::id::{Clock, Id};
use super::op::{Change, Cursor, Key, Mutation, OpBody, Tag};
use super::patch::Patch;
use super::path::Path;
use super::read::View;
use super::value::Value;
use super::{ActorId, Doc};

/// An open local transaction on a [`Doc`]. Reads go through `Deref<Target = Doc>`.
#[must_use = "a transaction is rolled back unless committed"]
pub struct Transaction<'d> {
    doc: &'d mut Doc,
    start: u64,
    saved: (u64, u64, u64),
    ops: Vec<OpBody>,
    patches: Vec<Patch>,
    done: bool,
}

/// What a committed [`Transaction`] made.
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct LocalOps {
    /// The actor the ops were made as.
    pub actor: ActorId,
    /// Counter of the first op; op `i` has counter `start + i`.
    pub start: u64,
    /// The operations, in order. Empty if the transaction changed nothing.
    pub ops: Vec<OpBody>,
    /// Visible effects, in order.
    pub patches: Vec<Patch>,
}

/// What [`Doc::transact`] returns.
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct Committed<T> {
    /// The closure's result.
    pub value: T,
    /// The change to send to other replicas; `None` if nothing was changed.
    pub change: Option<Change>,
    /// Visible effects, in order.
    pub patches: Vec<Patch>,
}

impl Doc {
    /// Opens a transaction. Prefer [`Doc::transact`], which commits or rolls back for you.
    pub fn transaction(&mut self) -> Transaction<'_> {
        let local = self.local as usize;
        let saved = (self.max_counter, self.actor_max[local], self.op_count);
        // Whatever a transaction that was leaked (never committed nor dropped) left there is
        // not this one's to undo.
        self.undo.reset();
        Transaction {
            start: self.max_counter.saturating_add(1),
            doc: self,
            saved,
            ops: Vec::new(),
            patches: Vec::new(),
            done: false,
        }
    }

    /// Runs `f` in a transaction: commits if it returns `Ok`, rolls back if it returns `Err`.
    ///
    /// # Errors
    ///
    /// Whatever `f` returns; the document is then unchanged.
    pub fn transact<T, E>(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<Committed<T>, E> {
        let mut tx = self.transaction();
        let value = f(&mut tx)?;
        let prev_local = tx.saved.1;
        let local = tx.commit();
        let change = if local.ops.is_empty() {
            None
        } else {
            let deps = self.deps_before(prev_local);
            Some(Change {
                actor: local.actor,
                start: local.start,
                deps,
                ops: local.ops,
            })
        };
        Ok(Committed {
            value,
            change,
            patches: local.patches,
        })
    }
}

impl Doc {
    /// Everything applied before a local transaction: the clock now, with the local actor's
    /// entry put back to `prev_local`, its greatest counter before the transaction.
    fn deps_before(&self, prev_local: u64) -> Clock {
        let local = self.local as usize;
        let counter = |i: usize, c: u64| if i == local { prev_local } else { c };
        let mut known = self
            .actor_max
            .iter()
            .enumerate()
            .filter(|&(i, &c)| counter(i, c) > 0);
        match (known.next(), known.next()) {
            (None, _) => Clock::new(),
            // One author so far: no allocation.
            (Some((i, &c)), None) => Clock::one(self.actors.actor(i as u32).clone(), counter(i, c)),
            _ => Clock::from_entries(
                self.actor_max
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| (i, counter(i, c)))
                    .filter(|&(_, c)| c > 0)
                    .map(|(i, c)| (self.actors.actor(i as u32).clone(), c))
                    .collect(),
            ),
        }
    }
}

impl Deref for Transaction<'_> {
    type Target = Doc;
    fn deref(&self) -> &Doc {
        self.doc
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.rollback_now();
        }
    }
}

impl Transaction<'_> {
    /// Keeps every operation made and returns them.
    pub fn commit(mut self) -> LocalOps {
        self.done = true;
        self.doc.undo.reset();
        LocalOps {
            actor: self.doc.actor().clone(),
            start: self.start,
            ops: std::mem::take(&mut self.ops),
            patches: std::mem::take(&mut self.patches),
        }
    }

    /// Undoes every operation made and closes the transaction.
    pub fn rollback(mut self) {
        self.rollback_now();
        self.done = true;
    }

    fn rollback_now(&mut self) {
        rollback(&mut self.doc.root, &mut self.doc.undo);
        self.doc.undo.reset();
        let local = self.doc.local as usize;
        (
            self.doc.max_counter,
            self.doc.actor_max[local],
            self.doc.op_count,
        ) = self.saved;
        self.ops.clear();
        self.patches.clear();
    }

    /// Number of operations made so far.
    pub fn op_count(&self) -> usize {
        self.ops.len()
    }

    /// Makes and applies one local op (rule MAKE-OP): id = (1 + max counter, local actor),
    /// causal past = everything applied.
    fn make(&mut self, cursor: Cursor, mutation: Mutation) -> Result<Id, DocError> {
        let body = OpBody { cursor, mutation };
        body.validate()?;
        self.make_valid(body, false)
    }

    /// [`Transaction::make`] for an op already known to be valid (built here, from parts
    /// that were checked). `known_elems`: every element it names was just looked up in the
    /// document, so it need not be checked again.
    fn make_valid(&mut self, body: OpBody, known_elems: bool) -> Result<Id, DocError> {
        let counter = self
            .doc
            .max_counter
            .checked_add(1)
            .filter(|&c| c <= super::MAX_COUNTER)
            .ok_or(DocError::CounterOverflow)?;
        let id = Id::new(counter, self.doc.local);
        if self.patches.capacity() == 0 {
            // Usually one patch per op; most transactions make one op.
            self.patches.reserve_exact(1);
        }
        self.doc.apply_one(
            id,
            &body,
            None,
            &Clock::new(),
            true,
            Some(&mut self.patches),
            known_elems,
        )?;
        if self.ops.capacity() == 0 {
            // Most transactions make one op: do not allocate room for four.
            self.ops.reserve_exact(1);
        }
        self.ops.push(body);
        Ok(id)
    }

    // ---- The paper's commands (Fig. 7) -------------------------------------------------

    /// `cur := v` (rule MAKE-ASSIGN). `v` is a primitive, `{}` or `[]`.
    ///
    /// # Errors
    ///
    /// [`DocError::MalformedCursor`], [`DocError::InvalidValue`], or
    /// [`DocError::MissingElement`] if the cursor names an element that does not exist.
    pub fn assign(&mut self, cur: &Cursor, v: impl Into<Value>) -> Result<(), DocError> {
        self.make(cur.clone(), Mutation::Assign(v.into()))
            .map(|_| ())
    }

    /// `cur.insertAfter(v)` (rule MAKE-INSERT): `cur` is a list element or a head
    /// ([`Doc::idx`] with 0). Returns the cursor of the new element.
    ///
    /// # Errors
    ///
    /// As for [`Transaction::assign`].
    pub fn insert_after(&mut self, cur: &Cursor, v: impl Into<Value>) -> Result<Cursor, DocError> {
        let id = self.make(cur.clone(), Mutation::Insert(v.into()))?;
        Ok(Cursor {
            path: cur.path.clone(),
            key: Key::Elem(self.doc.actors.op_id(id)),
        })
    }

    /// `cur.delete` (rule MAKE-DELETE): deletes the map key or list element at `cur`.
    ///
    /// # Errors
    ///
    /// As for [`Transaction::assign`].
    pub fn delete_at(&mut self, cur: &Cursor) -> Result<(), DocError> {
        self.make(cur.clone(), Mutation::Delete).map(|_| ())
    }

    // ---- Path helpers --------------------------------------------------------------------

    /// Sets the value at `path` to `value`, a whole JSON value: nested objects and arrays
    /// expand into the right sequence of ops. Map keys that do not exist yet are created.
    /// An index names an existing element, whose value is replaced.
    ///
    /// # Errors
    ///
    /// [`DocError::WrongType`], [`DocError::IndexOutOfRange`], [`DocError::NotFound`] if the
    /// path does not resolve; [`DocError::InvalidValue`] for numbers outside `i64`/`f64`.
    pub fn set(
        &mut self,
        path: impl Into<Path>,
        value: impl Into<serde_json::Value>,
    ) -> Result<(), DocError> {
        let path = path.into();
        let cur = self.doc.resolve(&path, true)?.cursor;
        self.write_json(cur, &value.into())
    }

    /// Inserts `value` at `index` of the list at `path` (0 = first; `len` = append).
    ///
    /// # Errors
    ///
    /// [`DocError::IndexOutOfRange`] if `index > len`; [`DocError::WrongType`] if `path` is not
    /// a list.
    pub fn insert(
        &mut self,
        path: impl Into<Path>,
        index: usize,
        value: impl Into<serde_json::Value>,
    ) -> Result<(), DocError> {
        let path = path.into();
        let after = self.position(&path, index)?;
        self.insert_json(after, &value.into()).map(|_| ())
    }

    /// Appends `value` to the list at `path`.
    ///
    /// # Errors
    ///
    /// As for [`Transaction::insert`].
    pub fn push(
        &mut self,
        path: impl Into<Path>,
        value: impl Into<serde_json::Value>,
    ) -> Result<(), DocError> {
        let path = path.into();
        let len = self.doc.list_at(&path)?.seq.len();
        self.insert(path, len, value)
    }

    /// Deletes the map key or list element at `path`.
    ///
    /// # Errors
    ///
    /// [`DocError::NotFound`] if nothing visible is there; [`DocError::MalformedCursor`] for
    /// the root.
    pub fn delete(&mut self, path: impl Into<Path>) -> Result<(), DocError> {
        let path = path.into();
        let cur = self.doc.resolve(&path, false)?.cursor;
        self.make(cur, Mutation::Delete).map(|_| ())
    }

    /// Text splice on a list of characters: at `index`, delete `delete` characters, then
    /// insert `text` (one element per character, as the paper models text).
    ///
    /// # Errors
    ///
    /// [`DocError::IndexOutOfRange`] if `index + delete` exceeds the length;
    /// [`DocError::WrongType`] if `path` is not a list.
    pub fn splice_text(
        &mut self,
        path: impl Into<Path>,
        index: usize,
        delete: usize,
        text: &str,
    ) -> Result<(), DocError> {
        let path = path.into();
        // Resolve once: the list's cursor, the elements to delete and the one to insert after.
        // Those are fixed elements (held by id), so later ops in this splice do not move them.
        let (lpath, doomed, mut prev) = {
            let r = self.doc.resolve(&path, false)?;
            let list = match r.view {
                View::Entry(e) => e.list.as_deref(),
                _ => None,
            }
            .ok_or_else(|| DocError::WrongType {
                expected: "list",
                path: path.to_string(),
            })?;
            let len = list.seq.len();
            let end = index
                .checked_add(delete)
                .filter(|&e| e <= len)
                .ok_or_else(|| DocError::IndexOutOfRange {
                    index: index.saturating_add(delete),
                    len,
                    path: path.to_string(),
                })?;
            let actors = &self.doc.actors;
            let doomed: Vec<super::OpId> = (index..end)
                .filter_map(|i| list.seq.nth_visible(i))
                .map(|id| actors.op_id(id))
                .collect();
            let prev = match index.checked_sub(1) {
                // Not needed (and `index <= len` means it exists).
                _ if text.is_empty() => Key::Head,
                None => Key::Head,
                Some(i) => match list.seq.nth_visible(i) {
                    Some(id) => Key::Elem(actors.op_id(id)),
                    None => {
                        return Err(DocError::NotFound {
                            path: path.to_string(),
                        })
                    }
                },
            };
            let mut lpath = r.cursor.path;
            lpath.push((Tag::List, r.cursor.key));
            (lpath, doomed, prev)
        };
        if doomed.is_empty() && text.is_empty() {
            return Ok(());
        }
        // Every op below is a delete of an element of this list or an insert of one character
        // into it: valid iff an insert at the head of this list is.
        let probe = OpBody {
            cursor: Cursor {
                path: lpath,
                key: Key::Head,
            },
            mutation: Mutation::Insert(Value::Null),
        };
        probe.validate()?;
        let mut lpath = probe.cursor.path;
        // Each op gets a copy of the list path, the last one the original.
        let mut left = doomed.len() + text.chars().count();
        let mut path_for_op = || {
            left -= 1;
            if left == 0 {
                std::mem::take(&mut lpath)
            } else {
                lpath.clone()
            }
        };
        for id in doomed {
            self.make_valid(
                OpBody {
                    cursor: Cursor {
                        path: path_for_op(),
                        key: Key::Elem(id),
                    },
                    mutation: Mutation::Delete,
                },
                true,
            )?;
        }
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let id = self.make_valid(
                OpBody {
                    cursor: Cursor {
                        path: path_for_op(),
                        key: prev,
                    },
                    mutation: Mutation::Insert(Value::from(c)),
                },
                true,
            )?;
            prev = match chars.peek() {
                Some(_) => Key::Elem(self.doc.actors.op_id(id)),
                None => Key::Head,
            };
        }
        Ok(())
    }

    /// The cursor to insert after so that the new element lands at `index`.
    fn position(&self, path: &Path, index: usize) -> Result<Cursor, DocError> {
        let list_cur = self.doc.resolve(path, false)?.cursor;
        let list = self.doc.list_at(path)?;
        let mut lpath = list_cur.path;
        lpath.push((Tag::List, list_cur.key));
        if index == 0 {
            return Ok(Cursor {
                path: lpath,
                key: Key::Head,
            });
        }
        let id = list
            .seq
            .nth_visible(index - 1)
            .ok_or_else(|| DocError::IndexOutOfRange {
                index,
                len: list.seq.len(),
                path: path.to_string(),
            })?;
        Ok(Cursor {
            path: lpath,
            key: Key::Elem(self.doc.actors.op_id(id)),
        })
    }

    /// Assigns a whole JSON value at `cur`, expanding containers.
    fn write_json(&mut self, cur: Cursor, v: &serde_json::Value) -> Result<(), DocError> {
        let flat = Value::from_json_shallow(v)?;
        self.make(cur.clone(), Mutation::Assign(flat))?;
        self.fill(&cur, v)
    }

    /// Inserts a whole JSON value after `after`, expanding containers; returns its cursor.
    fn insert_json(&mut self, after: Cursor, v: &serde_json::Value) -> Result<Cursor, DocError> {
        let flat = Value::from_json_shallow(v)?;
        let id = self.make(after.clone(), Mutation::Insert(flat))?;
        let cur = Cursor {
            path: after.path,
            key: Key::Elem(self.doc.actors.op_id(id)),
        };
        self.fill(&cur, v)?;
        Ok(cur)
    }

    /// Writes the contents of a container value whose empty shell was just made at `cur`.
    fn fill(&mut self, cur: &Cursor, v: &serde_json::Value) -> Result<(), DocError> {
        match v {
            serde_json::Value::Object(m) => {
                for (k, child) in m {
                    self.write_json(cur.get(k.clone()), child)?;
                }
            }
            serde_json::Value::Array(items) => {
                let mut after = cur.head();
                for item in items {
                    after = self.insert_json(after, item)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
