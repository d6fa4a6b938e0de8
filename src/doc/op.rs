//! Cursors and operations: what one replica sends another (paper §4.2.2).
//!
//! An operation is `op(id, deps, cursor, mutation)`. Here the id and the causal context are
//! carried once per batch ([`Change`]): op `i` of a change has id `(start + i, actor)` and its
//! causal past is the change's context plus ops `0..i` of the same change, exactly as if the
//! author had generated them one at a time (paper rule MAKE-OP).

use serde::{Deserialize, Serialize};

use super::error::DocError;
use super::id::{ActorId, Clock, OpId};
use super::value::Value;

/// Deepest cursor path accepted, in tagged keys.
///
/// Bounds the recursion and the work one op can cause on the receiving side; 64 levels of
/// nesting is far beyond any JSON document people edit by hand.
pub const MAX_PATH_DEPTH: usize = 64;

/// Longest map key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 4096;

/// Most operations in one [`Change`].
///
/// A transaction that pastes a long text becomes one op per character, so this is generous;
/// it exists so that one change cannot pin unbounded memory while it is validated.
pub const MAX_OPS_PER_CHANGE: usize = 1 << 20;

/// Greatest op counter accepted: 2^62.
///
/// Lamport counters grow by one per operation, so no honest document gets near this; the cap
/// leaves headroom so that `counter + run length` arithmetic can never overflow, and rejects a
/// hostile peer that jumps the clock to `u64::MAX` to exhaust everyone's counters.
pub const MAX_COUNTER: u64 = 1 << 62;

/// The type tag of a branch key: the paper's `mapT(k)` and `listT(k)`. Registers (`regT`) are
/// never on a path: they are leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tag {
    /// `mapT(k)`: the key holds (or will hold) a map.
    Map,
    /// `listT(k)`: the key holds (or will hold) a list.
    List,
}

/// An untagged key: the atom `doc`, a map key, a list element id, or the list head.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Key {
    /// The root of the document (the paper's atom `doc`).
    Doc,
    /// A string key of a map.
    Str(String),
    /// A list element, named by the id of the op that inserted it.
    Elem(OpId),
    /// The virtual position before the first element of a list (`idx(0)`).
    Head,
}

/// A network-portable position in the document: `cursor(⟨k1..k(n-1)⟩, kn)`.
///
/// It holds only immutable keys and element ids, so it resolves to the same place on every
/// replica, and it holds a list element by identity, not by index (paper Fig. 8).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// Tagged branch keys from the root down to the container of `key`.
    pub path: Vec<(Tag, Key)>,
    /// The final, untagged key.
    pub key: Key,
}

impl Cursor {
    /// The cursor of the whole document: `cursor(⟨⟩, doc)` (rule DOC).
    pub fn doc() -> Self {
        Cursor {
            path: Vec::new(),
            key: Key::Doc,
        }
    }

    /// `self.get(key)`: the map entry `key` of the map at this cursor (rule GET). Like the
    /// paper, it does not check that the key exists.
    #[must_use]
    pub fn get(&self, key: impl Into<String>) -> Self {
        let mut path = self.path.clone();
        path.push((Tag::Map, self.key.clone()));
        Cursor {
            path,
            key: Key::Str(key.into()),
        }
    }

    /// The head position of the list at this cursor: `self.idx(0)`.
    #[must_use]
    pub fn head(&self) -> Self {
        let mut path = self.path.clone();
        path.push((Tag::List, self.key.clone()));
        Cursor {
            path,
            key: Key::Head,
        }
    }

    /// Checks the shape rules every cursor must follow, whoever sent it:
    ///
    /// 1. The path is at most [`MAX_PATH_DEPTH`] long.
    /// 2. The first key is `doc` (the path's first entry, or `key` when the path is empty),
    ///    and `doc` appears nowhere else.
    /// 3. A key right after `mapT` is a string; right after `listT`, an element id (or the head,
    ///    as the final key only).
    /// 4. Map keys are at most [`MAX_KEY_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// [`DocError::MalformedCursor`] naming the broken rule.
    pub fn validate(&self) -> Result<(), DocError> {
        if self.path.len() > MAX_PATH_DEPTH {
            return Err(DocError::MalformedCursor("path deeper than MAX_PATH_DEPTH"));
        }
        let mut prev: Option<Tag> = None;
        let keys = self
            .path
            .iter()
            .map(|(t, k)| (Some(*t), k))
            .chain(std::iter::once((None, &self.key)));
        for (i, (tag, key)) in keys.enumerate() {
            match (prev, key) {
                (None, Key::Doc) if i == 0 => {}
                (None, _) => return Err(DocError::MalformedCursor("must start at doc")),
                (Some(_), Key::Doc) => {
                    return Err(DocError::MalformedCursor("doc below the root"));
                }
                (Some(Tag::Map), Key::Str(s)) => {
                    if s.len() > MAX_KEY_LEN {
                        return Err(DocError::MalformedCursor("map key longer than MAX_KEY_LEN"));
                    }
                }
                (Some(Tag::Map), _) => {
                    return Err(DocError::MalformedCursor("map entry key is not a string"));
                }
                (Some(Tag::List), Key::Elem(_)) => {}
                (Some(Tag::List), Key::Head) if tag.is_none() => {}
                (Some(Tag::List), _) => {
                    return Err(DocError::MalformedCursor("list key is not an element id"));
                }
            }
            prev = tag;
        }
        Ok(())
    }
}

/// What an operation does at its cursor (paper Fig. 10, `mut`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Mutation {
    /// `cursor := v`.
    Assign(Value),
    /// `cursor.insertAfter(v)`: the cursor names the predecessor element or the head.
    Insert(Value),
    /// `cursor.delete`.
    Delete,
}

/// One operation without its id: the id comes from its place in a [`Change`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpBody {
    /// Where the mutation applies.
    pub cursor: Cursor,
    /// What it does.
    pub mutation: Mutation,
}

impl OpBody {
    /// Checks cursor shape, value invariants and the cursor/mutation pairing: an insert needs
    /// a list position (an element or the head) and anything else needs a non-head key.
    ///
    /// # Errors
    ///
    /// [`DocError::MalformedCursor`] or [`DocError::InvalidValue`].
    pub fn validate(&self) -> Result<(), DocError> {
        self.cursor.validate()?;
        let in_list = matches!(self.cursor.path.last(), Some((Tag::List, _)));
        match &self.mutation {
            Mutation::Insert(v) => {
                if !in_list {
                    return Err(DocError::MalformedCursor("insert outside a list"));
                }
                v.validate()
            }
            Mutation::Assign(v) => {
                if self.cursor.key == Key::Head {
                    return Err(DocError::MalformedCursor("assign to the list head"));
                }
                v.validate()
            }
            Mutation::Delete => {
                if self.cursor.key == Key::Head || self.cursor.key == Key::Doc {
                    return Err(DocError::MalformedCursor("delete of the head or the root"));
                }
                Ok(())
            }
        }
    }
}

/// A batch of operations by one actor with consecutive counters, and its causal context.
///
/// This is what a bare [`Doc`](super::Doc) transaction produces and what
/// [`Doc::apply_change`](super::Doc::apply_change) consumes. The signed-operation graph carries
/// the same `ops` inside a signed node and supplies the causal context from its hash DAG
/// instead of `deps`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Author of every op in the batch.
    pub actor: ActorId,
    /// Counter of the first op; op `i` has counter `start + i`.
    pub start: u64,
    /// The causal context: every op the author had applied before the batch.
    pub deps: Clock,
    /// The operations, in the order they were generated.
    pub ops: Vec<OpBody>,
}

impl Change {
    /// Id of op `i` of this change, if it does not overflow.
    pub fn op_id(&self, i: usize) -> Option<OpId> {
        let i = u64::try_from(i).ok()?;
        Some(OpId::new(self.start.checked_add(i)?, self.actor.clone()))
    }

    /// Counter of the last op (`start` for an empty change).
    pub fn end(&self) -> u64 {
        let n = u64::try_from(self.ops.len().saturating_sub(1)).unwrap_or(u64::MAX);
        self.start.saturating_add(n)
    }
}
