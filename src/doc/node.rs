//! The document tree: map nodes, list nodes, entries, presence sets and registers.
//!
//! The paper keeps, for each key `k` of a branch node, up to three children (`mapT(k)`,
//! `listT(k)`, `regT(k)`) and one presence set `pres(k)` shared by all three. Every op that
//! adds to `pres(k)` does so through exactly one of the three namespaces (it descends through
//! `mapT(k)` or `listT(k)`, or assigns `regT(k)`/`{}`/`[]` at `k`), so [`Entry`] stores `pres(k)`
//! partitioned by namespace: `map_pres ∪ list_pres ∪ dom(reg)` *is* the paper's `pres(k)`.
//! Every set operation the rules perform (add one id, remove the ids in a causal past)
//! distributes over that union, so the partition changes nothing in the semantics; it tells
//! the renderer which namespaces are live.

use std::collections::{BTreeMap, HashMap};

use super::id::Id;
use super::op::Tag;
use super::seq::Sequence;
use super::value::Value;

/// How many trailing runs [`IdSet::add`] looks at for one to extend.
///
/// Concurrent typing by two or three people interleaves their ids; looking back a few runs
/// keeps each person's consecutive ids in one run without a search.
const EXTEND_WINDOW: usize = 4;

/// A run of ids `(start..start+len, actor)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    actor: u32,
    start: u64,
    len: u32,
}

/// A presence set: op ids, stored as runs of consecutive counters by one actor.
///
/// Presence sets of containers collect the id of every op below them (rule DESCEND), so for a
/// text they grow with the edit history; runs keep a typing burst in one entry.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdSet {
    runs: Vec<Run>,
}

impl IdSet {
    pub(crate) fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Adds an id not already in the set.
    pub(crate) fn add(&mut self, id: Id) {
        let n = self.runs.len();
        for r in self.runs[n.saturating_sub(EXTEND_WINDOW)..]
            .iter_mut()
            .rev()
        {
            if r.actor == id.actor && r.start.checked_add(u64::from(r.len)) == Some(id.counter) {
                if let Some(len) = r.len.checked_add(1) {
                    r.len = len;
                    return;
                }
            }
        }
        self.runs.push(Run {
            actor: id.actor,
            start: id.counter,
            len: 1,
        });
    }

    /// Removes one id (used to roll back an `add`).
    pub(crate) fn remove(&mut self, id: Id) {
        let Some(i) = self.runs.iter().rposition(|r| {
            r.actor == id.actor && r.start <= id.counter && id.counter - r.start < u64::from(r.len)
        }) else {
            return;
        };
        let r = self.runs[i];
        let off = id.counter - r.start;
        let end = r.start + u64::from(r.len);
        let mut pieces = Vec::with_capacity(2);
        if off > 0 {
            pieces.push(Run {
                len: off as u32,
                ..r
            });
        }
        if id.counter + 1 < end {
            pieces.push(Run {
                actor: r.actor,
                start: id.counter + 1,
                len: (end - id.counter - 1) as u32,
            });
        }
        self.runs.splice(i..=i, pieces);
    }

    /// Removes every id for which `in_past` is true; returns the removed ids.
    pub(crate) fn remove_past(&mut self, in_past: &mut dyn FnMut(Id) -> bool) -> IdSet {
        let mut kept = Vec::with_capacity(self.runs.len());
        let mut removed = IdSet::default();
        for r in self.runs.drain(..) {
            let mut cur: Option<(bool, Run)> = None;
            for c in r.start..r.start + u64::from(r.len) {
                let past = in_past(Id::new(c, r.actor));
                match &mut cur {
                    Some((p, run)) if *p == past => run.len += 1,
                    _ => {
                        if let Some((p, run)) = cur.take() {
                            if p {
                                removed.runs.push(run)
                            } else {
                                kept.push(run)
                            }
                        }
                        cur = Some((
                            past,
                            Run {
                                actor: r.actor,
                                start: c,
                                len: 1,
                            },
                        ));
                    }
                }
            }
            if let Some((p, run)) = cur {
                if p {
                    removed.runs.push(run)
                } else {
                    kept.push(run)
                }
            }
        }
        self.runs = kept;
        removed
    }

    /// Every id, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Id> + '_ {
        self.runs
            .iter()
            .flat_map(|r| (r.start..r.start + u64::from(r.len)).map(move |c| Id::new(c, r.actor)))
    }

    /// Greatest id under `cmp`.
    pub(crate) fn max_by(&self, cmp: impl Fn(Id, Id) -> std::cmp::Ordering) -> Option<Id> {
        // The greatest id of a run is its last; compare run ends only.
        self.runs
            .iter()
            .map(|r| Id::new(r.start + u64::from(r.len) - 1, r.actor))
            .max_by(|a, b| cmp(*a, *b))
    }
}

/// One key of a map, one element of a list, or the root: `pres(k)` and the three children.
#[derive(Clone, Debug, Default)]
pub(crate) struct Entry {
    /// Ids in `pres(k)` that came through `mapT(k)`.
    pub map_pres: IdSet,
    /// Ids in `pres(k)` that came through `listT(k)`.
    pub list_pres: IdSet,
    /// `regT(k)`: the multi-value register, `op id ↦ value`. Its ids are the register's part
    /// of `pres(k)`.
    pub reg: Vec<(Id, Value)>,
    /// `mapT(k)`, once created.
    pub map: Option<Box<MapNode>>,
    /// `listT(k)`, once created.
    pub list: Option<Box<ListNode>>,
}

impl Entry {
    /// `pres(k) ≠ {}`: the key or element is visible.
    pub(crate) fn is_visible(&self) -> bool {
        !self.map_pres.is_empty() || !self.list_pres.is_empty() || !self.reg.is_empty()
    }

    pub(crate) fn pres_mut(&mut self, tag: Tag) -> &mut IdSet {
        match tag {
            Tag::Map => &mut self.map_pres,
            Tag::List => &mut self.list_pres,
        }
    }

    /// Number of live namespaces (0 to 3); more than one is a type clash (paper Fig. 5).
    pub(crate) fn live_count(&self) -> usize {
        usize::from(!self.map_pres.is_empty())
            + usize::from(!self.list_pres.is_empty())
            + usize::from(!self.reg.is_empty())
    }

    /// The state of a simple character element, as a full entry.
    pub(crate) fn from_char(id: Id, c: char, visible: bool) -> Self {
        let mut e = Entry::default();
        if visible {
            e.reg.push((id, Value::Str(c.to_string())));
        }
        e
    }
}

/// A map node: string keys to entries. `BTreeMap` so that iteration (and hence rendering and
/// saved state) is in key order on every replica.
#[derive(Clone, Debug, Default)]
pub(crate) struct MapNode {
    pub entries: BTreeMap<String, Entry>,
}

/// A list node: the element order plus the state of elements that are not simple characters.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListNode {
    pub seq: Sequence,
    /// Full state of every element whose content is [`Content::Complex`].
    pub elems: HashMap<Id, Entry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &IdSet) -> Vec<(u64, u32)> {
        let mut v: Vec<(u64, u32)> = s.iter().map(|i| (i.counter, i.actor)).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn consecutive_ids_by_one_actor_share_a_run() {
        let mut s = IdSet::default();
        for c in 1..=100 {
            s.add(Id::new(c, 0));
        }
        assert_eq!(s.runs.len(), 1);
        // Interleaving two actors still extends each one's run (look-back window).
        for c in 101..=200 {
            s.add(Id::new(c, 1 + (c % 2) as u32));
        }
        assert!(s.runs.len() < 110, "got {} runs", s.runs.len());
        assert_eq!(s.iter().count(), 200);
    }

    #[test]
    fn remove_past_splits_runs_and_returns_exactly_the_removed_ids() {
        let mut s = IdSet::default();
        for c in 1..=10 {
            s.add(Id::new(c, 0));
        }
        s.add(Id::new(3, 1));
        let removed = s.remove_past(&mut |id| id.actor == 0 && id.counter % 3 == 0);
        assert_eq!(ids(&removed), vec![(3, 0), (6, 0), (9, 0)]);
        assert_eq!(
            ids(&s),
            vec![
                (1, 0),
                (2, 0),
                (3, 1),
                (4, 0),
                (5, 0),
                (7, 0),
                (8, 0),
                (10, 0)
            ]
        );
        let none = s.remove_past(&mut |_| false);
        assert!(none.is_empty());
        let all = s.remove_past(&mut |_| true);
        assert_eq!(all.iter().count(), 8);
        assert!(s.is_empty());
    }

    #[test]
    fn remove_undoes_add_in_the_middle_of_a_run() {
        let mut s = IdSet::default();
        for c in 1..=5 {
            s.add(Id::new(c, 7));
        }
        s.remove(Id::new(3, 7));
        assert_eq!(ids(&s), vec![(1, 7), (2, 7), (4, 7), (5, 7)]);
        s.remove(Id::new(1, 7));
        s.remove(Id::new(5, 7));
        s.remove(Id::new(9, 7)); // absent: no-op
        assert_eq!(ids(&s), vec![(2, 7), (4, 7)]);
    }

    #[test]
    fn max_by_finds_the_greatest_run_end() {
        let mut s = IdSet::default();
        s.add(Id::new(1, 0));
        s.add(Id::new(2, 0));
        s.add(Id::new(2, 1));
        let m = s.max_by(|a, b| a.counter.cmp(&b.counter).then(a.actor.cmp(&b.actor)));
        assert_eq!(m, Some(Id::new(2, 1)));
    }
}
