//! The element sequence of one list: RGA order, tombstones, and index lookups.
//!
//! This is the paper's `next(k)` linked list (§1, "List node") flattened into one ordered
//! sequence of elements, each with its id, its visibility (`pres ≠ {}`) and, for the common
//! case of a one-character string that nothing else has touched, its character inline.
//! Elements whose state is richer (a map, a list, a multi-value register, a non-character
//! value) are `Content::Complex` and their state lives in the list's side table.
//!
//! # Layout
//!
//! * **Runs.** Elements are stored as [`Run`]s: consecutive ids by one actor, adjacent in the
//!   list, with one visibility and one kind of content. Typing a word is one run; deleting
//!   inside it splits the run, and edits merge neighbours back when they continue each other.
//!   Characters live in an arena (`chars`), a run pointing at its slice; the slice must be
//!   contiguous for two runs to merge.
//! * **Order-statistic B-tree.** Runs sit in leaves (up to `LEAF_CAP` each), under internal
//!   nodes that cache each child's visible count, so the `i`-th visible element is found by
//!   descending, and an element's visible index by climbing from its leaf: O(log n). Leaves
//!   and nodes live in two arenas addressed by index newtypes, with parent pointers and a
//!   `next` link between leaves (diamond-types' `src/ost/` design, with no `unsafe`).
//! * **Id index.** `index` maps id ranges to leaves: the entry with the greatest key at or
//!   below an element's `(actor, counter)` names the leaf holding it. So an element is found
//!   by id with one ordered-map lookup plus a scan of one leaf, and splitting or merging runs
//!   inside a leaf (every delete does) leaves the index alone: it changes only when an element
//!   lands in a leaf its range does not point to, or when a leaf split moves runs.
//!
//! # Fast paths for local editing
//!
//! A local insert is `nth_visible(i - 1)` then `insert(Some(prev), …)`; a local delete is
//! `nth_visible(i)`, `get`, then `hide` (`index_of` and `set_visible` in one lookup). Four
//! small caches make these cheap without changing any answer: the *hint* leaf (the last
//! edit's) is scanned for an id before the id index; the *position cache* remembers how many
//! visible elements precede the last edited leaf, so `nth_visible` near it scans that leaf
//! instead of descending, and an index in it is found without climbing the tree;
//! `max_counter` lets an insert with a fresh Lamport id skip the "does the id exist" lookup;
//! and `covered` remembers an index range that already names the leaf being typed into. An
//! insert that continues the run before it (typing) just lengthens that run.
//!
//! # RGA skipping over runs
//!
//! Rule INSERT2 skips, after the reference element, every element whose id is greater than
//! the new one. Within a run ids grow (`(c, a) < (c + 1, a)` in the Lamport order, and must in
//! any order RGA works with, since an actor's later op causally follows its earlier ones), so
//! if the first remaining element of a run is greater than the new id, all of the run is: the
//! skip tests one element per run.
//!
//! [`Run`]: run::Run

use std::collections::BTreeMap;

use super::id::Id;
use tree::{Child, Gap, Leaf, LeafIdx, Loc, NodeIdx};

mod run;
mod tree;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

/// What the sequence stores for an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Content {
    /// A one-character string whose register holds only its own insert (`{id ↦ "c"}`) and
    /// whose presence is `{id}` when visible, `{}` when deleted.
    Char(char),
    /// Anything else; the list's side table holds the element's full state.
    Complex,
}

/// One list's elements in document order, tombstones included.
///
/// Every lookup and edit is O(log n) in the number of runs, except that an insert also
/// skips the runs RGA tells it to (one comparison per run).
#[derive(Clone, Debug)]
pub(crate) struct Sequence {
    /// Leaf arena: the root leaf, or the leaves under `root`, plus freed slots.
    leaves: Vec<Leaf>,
    /// Internal-node arena, plus freed slots.
    nodes: Vec<tree::Node>,
    /// The root: a leaf for a small sequence, else a node.
    root: Child,
    /// Leaf slots free for reuse (left by [`Sequence::remove`]).
    free_leaves: Vec<LeafIdx>,
    /// Node slots free for reuse.
    free_nodes: Vec<NodeIdx>,
    /// The id index: for every element `(actor, counter)`, the entry with the greatest key
    /// `≤ (actor, counter)` has the same actor and names the leaf holding the element (see
    /// the module docs). Entries that cover no element are allowed.
    index: BTreeMap<(u32, u64), LeafIdx>,
    /// A range of the index known to need no change when an element is put in its leaf:
    /// `(actor, from, to, leaf)` says the entry `(actor, from)` covers counters `from..to`
    /// and names `leaf`. Dropped whenever the index changes. Lets typing skip the index.
    covered: Option<(u32, u64, u64, LeafIdx)>,
    /// Character arena: each character run's characters, at `text..text + len`. Append-only;
    /// a slot whose element later became complex (or was removed) is simply unused.
    chars: Vec<char>,
    /// Number of visible elements.
    visible: usize,
    /// The leaf of the last edit, searched before the id index: local editing touches the
    /// element it just inserted or its neighbours. Any value is safe (a leaf that does not
    /// hold the id, or a freed one, which holds nothing, just falls through to the index).
    hint: LeafIdx,
    /// Position cache: a leaf and the number of visible elements before it, kept by the last
    /// insert (inserting into a leaf, and splitting it, move nothing before it) and by
    /// visibility changes in that leaf, dropped by any other change of visibility. Lets
    /// `nth_visible` near the last edit scan one leaf instead of descending the tree.
    cursor: Option<(LeafIdx, usize)>,
    /// Greatest counter ever inserted (never lowered by `remove`): an id with a greater
    /// counter is certainly new, which spares inserts with Lamport ids the id-index lookup.
    max_counter: u64,
}

impl Default for Sequence {
    fn default() -> Self {
        Sequence {
            leaves: vec![Leaf::default()],
            nodes: Vec::new(),
            root: Child::Leaf(LeafIdx(0)),
            free_leaves: Vec::new(),
            free_nodes: Vec::new(),
            index: BTreeMap::new(),
            covered: None,
            chars: Vec::new(),
            visible: 0,
            hint: LeafIdx(0),
            cursor: None,
            max_counter: 0,
        }
    }
}

impl Sequence {
    /// Number of visible elements.
    pub(crate) fn len(&self) -> usize {
        self.visible
    }

    /// True if the list has an element with this id (visible or not).
    pub(crate) fn contains(&self, id: Id) -> bool {
        self.find(id).is_some()
    }

    /// Content and visibility of an element.
    pub(crate) fn get(&self, id: Id) -> Option<(Content, bool)> {
        let loc = self.find(id)?;
        let run = self.run_at(loc.leaf, loc.run)?;
        Some((run.content_at(loc.off, &self.chars), run.visible))
    }

    /// Id of the visible element at `index` (0-based).
    pub(crate) fn nth_visible(&self, index: usize) -> Option<Id> {
        if index >= self.visible {
            return None;
        }
        if let Some((leaf, start)) = self.cursor {
            let near = index
                .checked_sub(start)
                .and_then(|i| self.nth_in_leaf(leaf, i));
            if near.is_some() {
                return near;
            }
        }
        let (leaf, i) = self.descend(index)?;
        self.nth_in_leaf(leaf, i)
    }

    /// Number of visible elements before `id`, if the element exists.
    pub(crate) fn index_of(&self, id: Id) -> Option<usize> {
        let Loc { leaf, run, off } = self.find(id)?;
        Some(self.visible_before(Gap { leaf, run, off }))
    }

    /// Inserts a new element after `prev` (`None` = the head) following RGA (rules INSERT1/2):
    /// starting right after `prev`, skip every element whose id is greater than `id`
    /// (`greater(a, b)` says whether `a > b` in the id order), then insert.
    ///
    /// Returns the number of visible elements before the new one. The caller guarantees that
    /// `prev` exists and `id` is new (if `prev` is missing the element goes at the end, as
    /// with nothing to skip; if `id` exists nothing changes). `greater` must rank an actor's
    /// later counters above its earlier ones, as the Lamport order does: the skip compares
    /// only the first remaining element of each run (see the module docs).
    pub(crate) fn insert(
        &mut self,
        prev: Option<Id>,
        id: Id,
        content: Content,
        visible: bool,
        mut greater: impl FnMut(Id, Id) -> bool,
    ) -> usize {
        if id.counter <= self.max_counter {
            if let Some(Loc { leaf, run, off }) = self.find(id) {
                return self.visible_before(Gap { leaf, run, off });
            }
        }
        let Some(start) = self.gap_after(prev) else {
            return 0;
        };
        let gap = self.skip(start, id, &mut greater);
        let leaf_start = self.leaf_start(gap.leaf);
        let index = leaf_start.saturating_add(self.visible_in_leaf_before(gap));
        self.cursor = self
            .insert_at(gap, id, content, visible)
            .map(|()| (gap.leaf, leaf_start));
        self.max_counter = self.max_counter.max(id.counter);
        index
    }

    /// Sets an element's visibility; returns true if it changed.
    pub(crate) fn set_visible(&mut self, id: Id, visible: bool) -> bool {
        match self.find(id) {
            Some(loc) => self.set_visible_at(loc, visible),
            None => false,
        }
    }

    /// Hides a visible element and returns its index (the number of visible elements before
    /// it); `None`, changing nothing, if it does not exist or is not visible. One lookup for
    /// what `index_of` then `set_visible(id, false)` do.
    pub(crate) fn hide(&mut self, id: Id) -> Option<usize> {
        let loc = self.find(id)?;
        if !self.run_at(loc.leaf, loc.run)?.visible {
            return None;
        }
        let index = self.visible_before(Gap {
            leaf: loc.leaf,
            run: loc.run,
            off: loc.off,
        });
        self.set_visible_at(loc, false).then_some(index)
    }

    /// [`Sequence::set_visible`] for the element at `loc`.
    fn set_visible_at(&mut self, loc: Loc, visible: bool) -> bool {
        match self.run_at(loc.leaf, loc.run) {
            Some(run) if run.visible != visible => {}
            _ => return false,
        }
        let Some(r) = self.isolate(loc) else {
            return false;
        };
        if let Some(run) = self
            .leaves
            .get_mut(loc.leaf.0)
            .and_then(|l| l.runs.get_mut(r))
        {
            run.visible = visible;
        }
        self.merge_around(loc.leaf, r);
        self.add_visible(loc.leaf, if visible { 1 } else { -1 });
        self.fix_overflow(loc.leaf);
        self.hint = loc.leaf;
        if self.cursor.is_some_and(|(leaf, _)| leaf != loc.leaf) {
            self.cursor = None;
        }
        true
    }

    /// Replaces an element's content.
    pub(crate) fn set_content(&mut self, id: Id, content: Content) {
        let Some(loc) = self.find(id) else {
            return;
        };
        let Some(run) = self.run_at(loc.leaf, loc.run) else {
            return;
        };
        if run.content_at(loc.off, &self.chars) == content {
            return;
        }
        let Some(r) = self.isolate(loc) else {
            return;
        };
        let text = self.push_content(content);
        if let Some(run) = self
            .leaves
            .get_mut(loc.leaf.0)
            .and_then(|l| l.runs.get_mut(r))
        {
            run.complex = content == Content::Complex;
            run.text = text;
        }
        self.merge_around(loc.leaf, r);
        // Visibility is unchanged, so the position cache stays right (a split keeps the
        // leaf's start).
        self.fix_overflow(loc.leaf);
    }

    /// Physically removes an element. Only used to roll back an insert that failed validation
    /// later in the same batch; never part of the CRDT semantics (tombstones stay).
    pub(crate) fn remove(&mut self, id: Id) {
        let Some(loc) = self.find(id) else {
            return;
        };
        let Some(r) = self.isolate(loc) else {
            return;
        };
        self.cursor = None;
        let Some(leaf) = self.leaves.get_mut(loc.leaf.0) else {
            return;
        };
        if r >= leaf.runs.len() {
            return;
        }
        let gone = leaf.runs.remove(r);
        let empty = leaf.runs.is_empty();
        // The index keeps its entries: they still send every remaining element to its leaf.
        if let Some(prev) = r.checked_sub(1) {
            self.merge_at(loc.leaf, prev);
        }
        if gone.visible {
            self.add_visible(loc.leaf, -1);
        }
        if empty {
            let _ = self.unlink_leaf(loc.leaf);
        } else {
            self.fix_overflow(loc.leaf);
        }
    }

    /// Every element in order: `(id, content, visible)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Id, Content, bool)> + '_ {
        Iter {
            seq: self,
            leaf: self.first_leaf(),
            run: 0,
            off: 0,
        }
    }

    // ---- Insert helpers --------------------------------------------------------------------

    /// The gap right after `prev` (the head for `None`, the end if `prev` does not exist).
    fn gap_after(&self, prev: Option<Id>) -> Option<Gap> {
        let Some(prev) = prev else {
            let leaf = self.first_leaf()?;
            return Some(Gap {
                leaf,
                run: 0,
                off: 0,
            });
        };
        let Some(Loc { leaf, run, off }) = self.find(prev) else {
            let leaf = self.last_leaf()?;
            let run = self.leaves.get(leaf.0)?.runs.len();
            return Some(Gap { leaf, run, off: 0 });
        };
        let len = self.run_at(leaf, run)?.len();
        Some(if off + 1 < len {
            Gap {
                leaf,
                run,
                off: off + 1,
            }
        } else {
            Gap {
                leaf,
                run: run + 1,
                off: 0,
            }
        })
    }

    /// RGA rule INSERT2 from `gap`: moves past every following element greater than `id`.
    /// Tests the first remaining element of each run and skips the run whole if it is greater
    /// (ids grow along a run). A gap at the end of a leaf stays in that leaf unless the next
    /// leaf's first run is skipped, so the new element can extend the run before it.
    fn skip(&self, mut gap: Gap, id: Id, greater: &mut impl FnMut(Id, Id) -> bool) -> Gap {
        loop {
            let Some(leaf) = self.leaves.get(gap.leaf.0) else {
                return gap;
            };
            if let Some(run) = leaf.runs.get(gap.run) {
                if !greater(run.id_at(gap.off), id) {
                    return gap;
                }
                gap = Gap {
                    run: gap.run + 1,
                    off: 0,
                    ..gap
                };
            } else {
                let Some(next) = leaf.next else {
                    return gap;
                };
                let first = self.leaves.get(next.0).and_then(|l| l.runs.first());
                match first {
                    Some(run) if greater(run.id_at(0), id) => {
                        gap = Gap {
                            leaf: next,
                            run: 1,
                            off: 0,
                        };
                    }
                    _ => return gap,
                }
            }
        }
    }

    /// Stores `content`'s character in the arena; returns its slot (0 for complex content).
    fn push_content(&mut self, content: Content) -> usize {
        match content {
            Content::Char(c) => {
                self.chars.push(c);
                self.chars.len() - 1
            }
            Content::Complex => 0,
        }
    }

    /// Puts a new element at `gap`: extends the run before the gap when the element
    /// continues it (the typing fast path: no new run, and usually no index change), else adds
    /// a run.
    fn insert_at(&mut self, gap: Gap, id: Id, content: Content, visible: bool) -> Option<()> {
        let text = self.push_content(content);
        let new = run::Run::single(id, content == Content::Complex, text, visible);
        let mut r = gap.run;
        if gap.off > 0 {
            self.split_run(gap.leaf, r, gap.off)?;
            r += 1;
        }
        let leaf = self.leaves.get_mut(gap.leaf.0)?;
        let r = r.min(leaf.runs.len());
        let before = r.checked_sub(1);
        match before.and_then(|b| leaf.runs.get_mut(b)) {
            Some(prev) if prev.can_append(&new) => {
                prev.append(new);
                self.merge_at(gap.leaf, r - 1);
            }
            _ => {
                leaf.runs.insert(r, new);
                self.merge_around(gap.leaf, r);
            }
        }
        self.index_new(id, gap.leaf);
        if visible {
            self.add_visible(gap.leaf, 1);
        }
        self.fix_overflow(gap.leaf);
        self.hint = gap.leaf;
        Some(())
    }
}

/// Iterator over every element, walking leaves through their `next` links.
struct Iter<'a> {
    seq: &'a Sequence,
    leaf: Option<LeafIdx>,
    run: usize,
    off: usize,
}

impl Iterator for Iter<'_> {
    type Item = (Id, Content, bool);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let leaf = self.seq.leaves.get(self.leaf?.0)?;
            match leaf.runs.get(self.run) {
                Some(run) if self.off < run.len() => {
                    let item = (
                        run.id_at(self.off),
                        run.content_at(self.off, &self.seq.chars),
                        run.visible,
                    );
                    self.off += 1;
                    return Some(item);
                }
                Some(_) => {
                    self.run += 1;
                    self.off = 0;
                }
                None => {
                    self.leaf = leaf.next;
                    self.run = 0;
                    self.off = 0;
                }
            }
        }
    }
}
