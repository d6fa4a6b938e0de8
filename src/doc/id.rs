//! Operation identifiers, actors, and the causal-past oracle.
//!
//! An operation is identified by a Lamport timestamp `(counter, actor)` (paper §4.2.1). The
//! actor is opaque to this module: the layer above decides what it is. A bare replica uses a
//! random id; the signed-operation graph uses `author ‖ node hash`, so that ids stay unique and
//! totally ordered even when a Byzantine member signs two different nodes with the same
//! sequence number (DESIGN.md, "Operation identity is Byzantine-safe"). Because the actor is
//! compared as bytes, `author ‖ hash` orders by author first and by hash only as the final
//! tiebreak, exactly as the design asks, and this module's logic does not change.
//!
//! Inside a [`Doc`](super::Doc), actors are interned into a table and ids are stored as
//! `(counter, u32)` pairs ([`Id`]), which keeps list runs and presence sets small.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::DocError;

/// Longest actor id accepted, in bytes.
///
/// 64 bytes holds the graph layer's `author (32) ‖ node hash (32)`; anything longer is refused
/// so that a hostile peer cannot make every op id in the document arbitrarily large.
pub const MAX_ACTOR_LEN: usize = 64;

/// An opaque actor identifier: 1 to [`MAX_ACTOR_LEN`] bytes, ordered lexicographically.
///
/// Cloning is cheap (a reference count): every op id and cursor that names an element holds
/// one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId(Arc<[u8]>);

impl ActorId {
    /// Makes an actor id from raw bytes.
    ///
    /// # Errors
    ///
    /// [`DocError::InvalidActor`] if `bytes` is empty or longer than [`MAX_ACTOR_LEN`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, DocError> {
        let bytes = bytes.into();
        if bytes.is_empty() || bytes.len() > MAX_ACTOR_LEN {
            return Err(DocError::InvalidActor { len: bytes.len() });
        }
        Ok(Self(Arc::from(bytes)))
    }

    /// Makes an actor id from a `u64`, big-endian, so that numeric order equals id order.
    /// Handy for tests and examples where replicas are "1", "2", "3".
    pub fn from_u64(n: u64) -> Self {
        Self(Arc::from(n.to_be_bytes().as_slice()))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

// Written by hand to keep the wire form of the `Box<[u8]>` this once was: a newtype around a
// sequence of bytes (serde's `rc` feature is not needed for that).
impl Serialize for ActorId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct("ActorId", &self.0[..])
    }
}

impl fmt::Debug for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short hex prefix: enough to tell actors apart in logs and test failures.
        for b in self.as_bytes().iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        if self.as_bytes().len() > 8 {
            write!(f, "…")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for ActorId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Length is checked before the bytes are kept; serde_bytes-style borrowing would need
        // another dependency, and actor ids are at most 64 bytes.
        let bytes: Vec<u8> = Vec::deserialize(d)?;
        ActorId::new(bytes).map_err(serde::de::Error::custom)
    }
}

/// A Lamport timestamp identifying one operation (paper §4.2.1), and hence one list element,
/// register value or presence entry.
///
/// Ordered by counter, then by actor bytes. This order decides concurrent list inserts (the
/// greater id comes first, rule INSERT2) and which concurrent value [`to_json`] shows.
///
/// [`to_json`]: super::Doc::to_json
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpId {
    /// Lamport counter: 1 + the greatest counter the author had seen.
    pub counter: u64,
    /// The actor that generated the operation.
    pub actor: ActorId,
}

impl OpId {
    /// Makes an op id.
    pub fn new(counter: u64, actor: ActorId) -> Self {
        Self { counter, actor }
    }
}

impl fmt::Debug for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({},{:?})", self.counter, self.actor)
    }
}

// Ord is written by hand (not derived) so that a field reorder can never silently change the
// total order of ids, which every replica must agree on: counter first, then actor.
impl Ord for OpId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.counter
            .cmp(&other.counter)
            .then_with(|| self.actor.cmp(&other.actor))
    }
}

impl PartialOrd for OpId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Interned op id used inside a document: `(counter, index into the actor table)`.
///
/// Its derived `Ord` is *not* the id order (actor indexes are assigned in arrival order);
/// compare with [`ActorTable::cmp`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) struct Id {
    /// Lamport counter.
    pub counter: u64,
    /// Index into the document's [`ActorTable`].
    pub actor: u32,
}

impl Id {
    pub(crate) fn new(counter: u64, actor: u32) -> Self {
        Self { counter, actor }
    }
}

/// Up to this many actors, [`ActorTable::lookup`] scans the table instead of hashing.
const LINEAR_LOOKUP: usize = 8;

/// The actors a document has seen, interned to `u32` indexes.
#[derive(Clone, Debug, Default)]
pub(crate) struct ActorTable {
    actors: Vec<ActorId>,
    index: HashMap<ActorId, u32>,
}

impl ActorTable {
    /// Index of `actor`, adding it if new.
    pub(crate) fn intern(&mut self, actor: &ActorId) -> u32 {
        if let Some(i) = self.lookup(actor) {
            return i;
        }
        // Invariant: a document never holds more than u32::MAX actors (each needs an applied
        // op, and MAX ops per document is far below that); saturate rather than panic.
        let i = u32::try_from(self.actors.len()).unwrap_or(u32::MAX);
        self.actors.push(actor.clone());
        self.index.insert(actor.clone(), i);
        i
    }

    /// Index of `actor` if known.
    pub(crate) fn lookup(&self, actor: &ActorId) -> Option<u32> {
        // A document usually knows a handful of actors: comparing bytes beats hashing them.
        if self.actors.len() <= LINEAR_LOOKUP {
            return self
                .actors
                .iter()
                .position(|a| a == actor)
                .map(|i| i as u32);
        }
        self.index.get(actor).copied()
    }

    /// The actor at `i`.
    pub(crate) fn actor(&self, i: u32) -> &ActorId {
        // Invariant: every `Id` stored in a document was made by `intern` on this table.
        &self.actors[i as usize]
    }

    /// The actor at `i`, if there is one.
    pub(crate) fn get(&self, i: u32) -> Option<&ActorId> {
        self.actors.get(i as usize)
    }

    /// Number of interned actors.
    pub(crate) fn len(&self) -> usize {
        self.actors.len()
    }

    /// Public form of an interned id.
    pub(crate) fn op_id(&self, id: Id) -> OpId {
        OpId::new(id.counter, self.actor(id.actor).clone())
    }

    /// Interned form of a public id, if its actor is known.
    pub(crate) fn find(&self, id: &OpId) -> Option<Id> {
        self.lookup(&id.actor).map(|a| Id::new(id.counter, a))
    }

    /// The total order of ids: counter, then actor bytes.
    pub(crate) fn cmp(&self, a: Id, b: Id) -> Ordering {
        a.counter.cmp(&b.counter).then_with(|| {
            if a.actor == b.actor {
                Ordering::Equal
            } else {
                self.actor(a.actor).cmp(self.actor(b.actor))
            }
        })
    }

    /// Removes `actor` if it is the most recently interned one (rolls back an `intern` made
    /// for a batch that was then rejected).
    pub(crate) fn forget_last(&mut self, actor: &ActorId) {
        if self.actors.last() == Some(actor) {
            self.actors.pop();
            self.index.remove(actor);
        }
    }

    /// Replaces the bytes of actor `old` with `new`, keeping its index.
    ///
    /// Used by the graph layer, which learns a local change's final actor (author ‖ node
    /// hash) only after encoding it. Safe because nothing in a document is ordered by the
    /// bytes of an actor whose ops are all local and newer than everything else.
    pub(crate) fn rename(&mut self, old: &ActorId, new: ActorId) -> Result<(), DocError> {
        if self.index.contains_key(&new) {
            return Err(DocError::ActorInUse);
        }
        let i = self.index.remove(old).ok_or(DocError::UnknownActor)?;
        self.actors[i as usize] = new.clone();
        self.index.insert(new, i);
        Ok(())
    }
}

/// Answers "is this already-applied op in the causal past of the op being applied?".
///
/// The clear rules (paper Fig. 12) remove exactly the ids in an operation's causal past. This
/// module does not decide causality itself: a [`Clock`] answers for bare documents, and the
/// signed-operation graph answers from its hash DAG, exactly, even across forks. Ops earlier in
/// the same batch are handled by the document and never asked about.
pub trait CausalPast {
    /// True if the op `(counter, actor)` happened before the op being applied.
    fn contains(&self, counter: u64, actor: &ActorId) -> bool;
}

/// A version vector: for each actor, the greatest counter of its ops seen.
///
/// Because every actor's ops are causally chained, `(c, a)` is in the past described by a
/// clock iff `c <= clock[a]`. This is the paper's `deps`, compressed as §4.2.2 suggests.
///
/// Serialized as a map from actor to counter, in actor order.
#[derive(Clone, Default)]
pub struct Clock(Entries);

/// The entries of a [`Clock`], sorted by actor. One is kept in place: every local change
/// carries a clock, and a document edited by one author has one entry in it.
#[derive(Clone)]
enum Entries {
    Small(Option<(ActorId, u64)>),
    Many(Vec<(ActorId, u64)>),
}

impl Default for Entries {
    fn default() -> Self {
        Entries::Small(None)
    }
}

impl Entries {
    fn as_slice(&self) -> &[(ActorId, u64)] {
        match self {
            Entries::Small(e) => e.as_slice(),
            Entries::Many(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [(ActorId, u64)] {
        match self {
            Entries::Small(e) => e.as_mut_slice(),
            Entries::Many(v) => v,
        }
    }

    /// Inserts `e` at position `i` (which keeps the entries sorted).
    fn insert(&mut self, i: usize, e: (ActorId, u64)) {
        match self {
            Entries::Small(None) => *self = Entries::Small(Some(e)),
            Entries::Small(Some(_)) => {
                let mut v: Vec<(ActorId, u64)> = Vec::with_capacity(2);
                if let Entries::Small(Some(old)) = std::mem::take(self) {
                    v.push(old);
                }
                v.insert(i.min(v.len()), e);
                *self = Entries::Many(v);
            }
            Entries::Many(v) => v.insert(i, e),
        }
    }
}

impl PartialEq for Clock {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice() == other.0.as_slice()
    }
}

impl Eq for Clock {}

impl Clock {
    /// The empty clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock from entries in any order, with distinct actors.
    pub(crate) fn from_entries(mut entries: Vec<(ActorId, u64)>) -> Self {
        if entries.len() <= 1 {
            return Self(Entries::Small(entries.pop()));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        Self(Entries::Many(entries))
    }

    /// A clock with one entry.
    pub(crate) fn one(actor: ActorId, counter: u64) -> Self {
        Self(Entries::Small(Some((actor, counter))))
    }

    fn find(&self, actor: &ActorId) -> Result<usize, usize> {
        self.0.as_slice().binary_search_by(|(a, _)| a.cmp(actor))
    }

    /// Greatest counter seen from `actor` (0 if none).
    pub fn get(&self, actor: &ActorId) -> u64 {
        match self.find(actor) {
            Ok(i) => self.0.as_slice().get(i).map_or(0, |e| e.1),
            Err(_) => 0,
        }
    }

    /// Raises the entry for `actor` to at least `counter`.
    pub fn observe(&mut self, actor: &ActorId, counter: u64) {
        match self.find(actor) {
            Ok(i) => {
                if let Some((_, e)) = self.0.as_mut_slice().get_mut(i) {
                    if *e < counter {
                        *e = counter;
                    }
                }
            }
            Err(i) => self.0.insert(i, (actor.clone(), counter)),
        }
    }

    /// True if `(counter, actor)` is covered.
    pub fn covers(&self, counter: u64, actor: &ActorId) -> bool {
        counter <= self.get(actor)
    }

    /// True if every entry of `other` is covered by `self`.
    pub fn dominates(&self, other: &Clock) -> bool {
        other.iter().all(|(a, c)| self.covers(c, a))
    }

    /// Greatest counter in the clock (0 if empty).
    pub fn max_counter(&self) -> u64 {
        self.iter().map(|(_, c)| c).max().unwrap_or(0)
    }

    /// Number of actors.
    pub fn len(&self) -> usize {
        self.0.as_slice().len()
    }

    /// True if no actor has been observed.
    pub fn is_empty(&self) -> bool {
        self.0.as_slice().is_empty()
    }

    /// Iterates `(actor, greatest counter)` in actor order.
    pub fn iter(&self) -> impl Iterator<Item = (&ActorId, u64)> {
        self.0.as_slice().iter().map(|(a, c)| (a, *c))
    }
}

// The wire form is that of the `BTreeMap<ActorId, u64>` this once was: a map in actor order.
impl Serialize for Clock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Clock {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through a BTreeMap: sorted, and a repeated actor keeps its last counter, as before.
        let m = BTreeMap::<ActorId, u64>::deserialize(d)?;
        Ok(Clock::from_entries(m.into_iter().collect()))
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl CausalPast for Clock {
    fn contains(&self, counter: u64, actor: &ActorId) -> bool {
        self.covers(counter, actor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire forms these types had before their representation changed.
    #[derive(Serialize)]
    struct OldActorId(Box<[u8]>);

    fn actors() -> Vec<ActorId> {
        vec![
            ActorId::from_u64(7),
            ActorId::new(vec![3u8; 40]).unwrap(),
            ActorId::new(vec![9u8]).unwrap(),
            ActorId::from_u64(2),
        ]
    }

    #[test]
    fn actor_ids_keep_their_wire_form() {
        for a in actors() {
            let old = OldActorId(a.as_bytes().into());
            assert_eq!(
                postcard::to_allocvec(&a).unwrap(),
                postcard::to_allocvec(&old).unwrap()
            );
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                serde_json::to_string(&old).unwrap()
            );
            let back: ActorId = postcard::from_bytes(&postcard::to_allocvec(&a).unwrap()).unwrap();
            assert_eq!(back, a);
        }
        assert!(
            postcard::from_bytes::<ActorId>(&postcard::to_allocvec(&[0u8; 0]).unwrap()).is_err()
        );
    }

    #[test]
    fn clocks_keep_their_wire_form_and_order() {
        let all = actors();
        for n in 0..=all.len() {
            let mut clock = Clock::new();
            let mut old = BTreeMap::new();
            for (i, a) in all.iter().take(n).enumerate() {
                clock.observe(a, 10 + i as u64);
                old.insert(a.clone(), 10 + i as u64);
            }
            // Raising and not lowering.
            if let Some(a) = all.first().filter(|_| n > 0) {
                clock.observe(a, 5);
                clock.observe(a, 99);
                old.insert(a.clone(), 99);
            }
            assert_eq!(clock.len(), n);
            let bytes = postcard::to_allocvec(&clock).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(&old).unwrap());
            let back: Clock = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, clock);
            assert_eq!(format!("{back:?}"), format!("{old:?}"));
            let from: Clock =
                Clock::from_entries(old.iter().map(|(a, &c)| (a.clone(), c)).collect());
            assert_eq!(from, clock);
            for (a, c) in &old {
                assert_eq!(clock.get(a), *c);
                assert!(clock.covers(*c, a) && !clock.covers(c + 1, a));
            }
            assert_eq!(
                clock.max_counter(),
                old.values().copied().max().unwrap_or(0)
            );
            let listed: Vec<(ActorId, u64)> = clock.iter().map(|(a, c)| (a.clone(), c)).collect();
            let want: Vec<(ActorId, u64)> = old.into_iter().collect();
            assert_eq!(listed, want);
        }
        // A repeated actor on the wire keeps its last counter, as a BTreeMap did.
        let a = ActorId::from_u64(1);
        // (A sequence of pairs and a map have the same postcard form: length, then pairs.)
        let dup = postcard::to_allocvec(&vec![(a.clone(), 3u64), (a.clone(), 2)]).unwrap();
        let c: Clock = postcard::from_bytes(&dup).unwrap();
        assert_eq!(c.get(&a), 2);
        assert_eq!(c.len(), 1);
    }
}
