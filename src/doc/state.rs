//! A canonical encoding of the whole internal state.
//!
//! Two replicas that applied the same set of operations, in any causal order, produce the same
//! bytes (the convergence theorem, paper §4.4, made checkable). Nothing in it depends on
//! arrival order: actors are listed in byte order and referred to by that position, sets are
//! sorted by id, map keys by key, and list elements by document order; a simple character
//! element is written out in the same form as any other element.

use serde::Serialize;

use super::id::Id;
use super::node::{Entry, IdSet, ListNode};
use super::seq::Content;
use super::value::Value;
use super::{ActorId, Doc};

#[derive(Serialize)]
struct State<'a> {
    actors: Vec<&'a ActorId>,
    root: SEntry,
}

type SId = (u64, u32);

#[derive(Serialize, Default)]
struct SEntry {
    map_pres: Vec<SId>,
    list_pres: Vec<SId>,
    reg: Vec<(SId, Value)>,
    map: Option<Vec<(String, SEntry)>>,
    list: Option<Vec<(SId, bool, SEntry)>>,
}

struct Canon {
    /// Interned actor index → position in byte order.
    rank: Vec<u32>,
}

impl Canon {
    fn id(&self, id: Id) -> SId {
        (id.counter, self.rank[id.actor as usize])
    }

    fn set(&self, s: &IdSet) -> Vec<SId> {
        let mut v: Vec<SId> = s.iter().map(|i| self.id(i)).collect();
        v.sort_unstable();
        v
    }

    fn entry(&self, e: &Entry) -> SEntry {
        let mut reg: Vec<(SId, Value)> = e
            .reg
            .iter()
            .map(|(i, v)| (self.id(*i), v.clone()))
            .collect();
        reg.sort_by_key(|a| a.0);
        SEntry {
            map_pres: self.set(&e.map_pres),
            list_pres: self.set(&e.list_pres),
            reg,
            map: e.map.as_deref().map(|m| {
                m.entries
                    .iter()
                    .map(|(k, e)| (k.clone(), self.entry(e)))
                    .collect()
            }),
            list: e.list.as_deref().map(|l| self.list(l)),
        }
    }

    fn list(&self, l: &ListNode) -> Vec<(SId, bool, SEntry)> {
        l.seq
            .iter()
            .map(|(id, content, visible)| {
                let e = match content {
                    Content::Char(c) => self.entry(&Entry::from_char(id, c, visible)),
                    Content::Complex => l.elems.get(&id).map(|e| self.entry(e)).unwrap_or_default(),
                };
                (self.id(id), visible, e)
            })
            .collect()
    }
}

impl Doc {
    /// The internal state in a canonical byte form: equal for every replica that applied the
    /// same operations, whatever the order. Meant for convergence checks and state digests.
    pub fn canonical_state(&self) -> Vec<u8> {
        let n = self.actors.len();
        // Only actors with applied ops: a replica knows its own actor before using it, and
        // every id in the state belongs to an actor with applied ops.
        let mut order: Vec<u32> = (0..n as u32)
            .filter(|&a| self.actor_max.get(a as usize).is_some_and(|&m| m > 0))
            .collect();
        order.sort_by(|a, b| self.actors.actor(*a).cmp(self.actors.actor(*b)));
        let mut rank = vec![0u32; n];
        for (pos, &a) in order.iter().enumerate() {
            rank[a as usize] = pos as u32;
        }
        let canon = Canon { rank };
        let state = State {
            actors: order.iter().map(|&a| self.actors.actor(a)).collect(),
            root: canon.entry(&self.root),
        };
        // Serializing plain structs of integers, strings and finite floats into a Vec cannot
        // fail; an empty result would only make comparisons fail, never pass wrongly.
        postcard::to_allocvec(&state).unwrap_or_default()
    }
}
