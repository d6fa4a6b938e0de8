//! The arena B-tree under [`Sequence`]: leaves of runs, internal nodes of visible counts, the
//! id index, and the structural edits (split, merge, unlink) that keep them consistent.
//!
//! Leaves and internal nodes live in two `Vec`s and point at each other by index
//! ([`LeafIdx`], [`NodeIdx`]), as in diamond-types' `src/ost/`: no `unsafe`, no `Rc`, and
//! good cache behaviour. Every method here returns `Option` or does nothing on a dangling
//! index: the invariants (listed on `Sequence::dbg_check`) rule that out, and the crate never
//! panics on a broken one.

use super::run::Run;
use super::Sequence;

/// Most runs a leaf holds. Small in debug builds so that tests exercise splits and deep trees.
#[cfg(debug_assertions)]
pub(super) const LEAF_CAP: usize = 4;
/// Most children an internal node holds.
#[cfg(debug_assertions)]
pub(super) const NODE_CAP: usize = 4;

/// Most runs a leaf holds: 16 runs of 32 bytes is half a KiB, a few cache lines per scan.
/// Measured on the automerge-paper trace against 8, 32 (diamond-types' choice) and 64: 16 was
/// fastest, by a little. With [`NODE_CAP`] 16, three levels of nodes hold a million runs.
#[cfg(not(debug_assertions))]
pub(super) const LEAF_CAP: usize = 16;
/// Most children an internal node holds.
#[cfg(not(debug_assertions))]
pub(super) const NODE_CAP: usize = 16;

/// Index of a leaf in `Sequence::leaves`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct LeafIdx(pub usize);

/// Index of an internal node in `Sequence::nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct NodeIdx(pub usize);

/// The root, or a child of an internal node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Child {
    /// A leaf.
    Leaf(LeafIdx),
    /// An internal node.
    Node(NodeIdx),
}

/// A leaf: up to [`LEAF_CAP`] runs in document order.
#[derive(Clone, Debug, Default)]
pub(super) struct Leaf {
    /// The runs. Empty only for the root leaf of a sequence without elements (and for leaves
    /// on the free list).
    pub runs: Vec<Run>,
    /// The internal node holding this leaf; `None` for the root leaf.
    pub parent: Option<NodeIdx>,
    /// The next leaf in document order, so that iteration and RGA skipping walk leaves
    /// without climbing the tree.
    pub next: Option<LeafIdx>,
}

/// An internal node: up to [`NODE_CAP`] children, all leaves or all nodes.
#[derive(Clone, Debug, Default)]
pub(super) struct Node {
    /// Child indexes, into `leaves` if `leaf_children`, else into `nodes`.
    pub children: Vec<usize>,
    /// Visible elements in each child's subtree, parallel to `children`.
    pub counts: Vec<usize>,
    /// Whether the children are leaves (all leaves are at the same depth).
    pub leaf_children: bool,
    /// The node holding this one; `None` for the root.
    pub parent: Option<NodeIdx>,
}

impl Node {
    /// The child at raw index `raw`, typed.
    pub(super) fn child(&self, raw: usize) -> Child {
        if self.leaf_children {
            Child::Leaf(LeafIdx(raw))
        } else {
            Child::Node(NodeIdx(raw))
        }
    }

    /// Position of child `raw` in `children`.
    fn slot(&self, raw: usize) -> Option<usize> {
        self.children.iter().position(|&c| c == raw)
    }
}

/// An element's place: element `off` of run `run` of leaf `leaf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Loc {
    pub leaf: LeafIdx,
    pub run: usize,
    pub off: usize,
}

/// A gap between elements: just before element `off` of run `run` of leaf `leaf`
/// (`off < len`), or the end of the leaf when `run == runs.len()` (`off == 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Gap {
    pub leaf: LeafIdx,
    pub run: usize,
    pub off: usize,
}

impl Sequence {
    // ---- Lookups ---------------------------------------------------------------------------

    /// Where the element `id` is. First a scan of the hint leaf (the last edit's); then of the
    /// leaf the id index names: the only one that can hold `id`.
    pub(super) fn find(&self, id: super::Id) -> Option<Loc> {
        if let Some(loc) = self.find_in(self.hint, id) {
            return Some(loc);
        }
        let (_, leaf) = self.floor(id.actor, id.counter)?;
        if leaf == self.hint {
            return None;
        }
        self.find_in(leaf, id)
    }

    /// The index entry covering `(actor, counter)`: its key's counter and its leaf. `None` if
    /// the greatest key at or below is another actor's (no element of `actor` is there).
    fn floor(&self, actor: u32, counter: u64) -> Option<(u64, LeafIdx)> {
        let (&(a, from), &leaf) = self.index.range(..=(actor, counter)).next_back()?;
        (a == actor).then_some((from, leaf))
    }

    /// The key counter of `actor`'s first index entry above `counter`, if any.
    fn next_key(&self, actor: u32, counter: u64) -> Option<u64> {
        let (&(a, from), _) = self
            .index
            .range((actor, counter.saturating_add(1))..)
            .next()?;
        (a == actor).then_some(from)
    }

    /// Keeps the index right after the new element `id` was put in `leaf`: if the entry
    /// covering it names another leaf, `id` gets an entry of its own, and the elements after
    /// it that the old entry covered (they are in that other leaf) get one naming it.
    pub(super) fn index_new(&mut self, id: super::Id, leaf: LeafIdx) {
        if let Some((a, from, to, l)) = self.covered {
            if a == id.actor && from <= id.counter && id.counter < to && l == leaf {
                return;
            }
        }
        let floor = self.floor(id.actor, id.counter);
        let next = self.next_key(id.actor, id.counter);
        if let Some((from, l)) = floor.filter(|&(_, l)| l == leaf) {
            self.covered = Some((id.actor, from, next.unwrap_or(u64::MAX), l));
            return;
        }
        self.covered = None;
        self.index.insert((id.actor, id.counter), leaf);
        if let Some((_, old)) = floor {
            // Runs of `id.actor` in `old` after `id` and before the next entry lay in the old
            // entry's range (`id` is new, so no run there straddles it).
            let after = self.leaves.get(old.0).and_then(|l| {
                l.runs
                    .iter()
                    .filter(|r| r.actor == id.actor && r.start > id.counter)
                    .filter(|r| next.is_none_or(|n| r.start < n))
                    .map(|r| r.start)
                    .min()
            });
            if let Some(start) = after {
                self.index.insert((id.actor, start), old);
            }
        }
    }

    /// Keeps the index right after a leaf split moved the runs `moved` from leaf `from`,
    /// which kept the runs `stay`, to leaf `to`. Each moved run's range names `to`; runs
    /// left in `from` that the entry covering a moved run also covered get an entry of their
    /// own naming `from`.
    fn index_moved(&mut self, moved: &[Run], stay: &[Run], from: LeafIdx, to: LeafIdx) {
        self.covered = None;
        for r in moved {
            let (actor, start) = (r.actor, r.start);
            let end = start.saturating_add(u64::from(r.len));
            // Entries keyed inside the run named `from`: drop them.
            let mut next = self.next_key(actor, start);
            while let Some(k) = next.filter(|&k| k < end) {
                self.index.remove(&(actor, k));
                next = self.next_key(actor, k);
            }
            self.index.insert((actor, start), to);
            // Every element of `actor` in `end..next` was covered, with this run, by one
            // entry naming `from`; those still in `from` need it back.
            let left = stay
                .iter()
                .filter(|s| s.actor == actor && s.start >= end)
                .filter(|s| next.is_none_or(|n| s.start < n))
                .map(|s| s.start)
                .min();
            if let Some(s) = left {
                self.index.insert((actor, s), from);
            }
        }
    }

    /// Where `id` is, if in `leaf`.
    fn find_in(&self, leaf: LeafIdx, id: super::Id) -> Option<Loc> {
        let runs = &self.leaves.get(leaf.0)?.runs;
        runs.iter().enumerate().find_map(|(run, r)| {
            Some(Loc {
                leaf,
                run,
                off: r.offset_of(id)?,
            })
        })
    }

    /// The run at `loc`.
    pub(super) fn run_at(&self, leaf: LeafIdx, run: usize) -> Option<&Run> {
        self.leaves.get(leaf.0)?.runs.get(run)
    }

    /// The first leaf in document order.
    pub(super) fn first_leaf(&self) -> Option<LeafIdx> {
        self.edge_leaf(self.root, true)
    }

    /// The last leaf in document order.
    pub(super) fn last_leaf(&self) -> Option<LeafIdx> {
        self.edge_leaf(self.root, false)
    }

    /// The first or last leaf under `from`.
    fn edge_leaf(&self, from: Child, first: bool) -> Option<LeafIdx> {
        let mut cur = from;
        loop {
            match cur {
                Child::Leaf(l) => return Some(l),
                Child::Node(n) => {
                    let node = self.nodes.get(n.0)?;
                    let raw = if first {
                        node.children.first()
                    } else {
                        node.children.last()
                    };
                    cur = node.child(*raw?);
                }
            }
        }
    }

    /// The leaf before `leaf` in document order (climb to the first ancestor with a left
    /// sibling, then descend to that sibling's last leaf).
    fn prev_leaf(&self, leaf: LeafIdx) -> Option<LeafIdx> {
        let mut child = leaf.0;
        let mut parent = self.leaves.get(leaf.0)?.parent;
        while let Some(p) = parent {
            let node = self.nodes.get(p.0)?;
            let slot = node.slot(child)?;
            if let Some(&left) = slot.checked_sub(1).and_then(|s| node.children.get(s)) {
                return self.edge_leaf(node.child(left), false);
            }
            child = p.0;
            parent = node.parent;
        }
        None
    }

    /// Number of visible elements before `leaf`: from the position cache if it is about
    /// `leaf`, else [`Sequence::count_before`].
    pub(super) fn leaf_start(&self, leaf: LeafIdx) -> usize {
        match self.cursor {
            Some((l, start)) if l == leaf => start,
            _ => self.count_before(leaf),
        }
    }

    /// Number of visible elements before `leaf`: the counts of left siblings of the leaf and
    /// of each of its ancestors.
    pub(super) fn count_before(&self, leaf: LeafIdx) -> usize {
        let mut total = 0usize;
        let mut child = leaf.0;
        let mut parent = self.leaves.get(leaf.0).and_then(|l| l.parent);
        while let Some(p) = parent {
            let Some(node) = self.nodes.get(p.0) else {
                break;
            };
            for (&c, &n) in node.children.iter().zip(&node.counts) {
                if c == child {
                    break;
                }
                total = total.saturating_add(n);
            }
            child = p.0;
            parent = node.parent;
        }
        total
    }

    /// Number of visible elements before `gap`.
    pub(super) fn visible_before(&self, gap: Gap) -> usize {
        self.leaf_start(gap.leaf)
            .saturating_add(self.visible_in_leaf_before(gap))
    }

    /// Number of visible elements of `gap.leaf` before `gap`.
    pub(super) fn visible_in_leaf_before(&self, gap: Gap) -> usize {
        let Some(leaf) = self.leaves.get(gap.leaf.0) else {
            return 0;
        };
        let mut total = 0usize;
        for r in leaf.runs.iter().take(gap.run) {
            total = total.saturating_add(r.visible_len());
        }
        if leaf.runs.get(gap.run).is_some_and(|r| r.visible) {
            total = total.saturating_add(gap.off);
        }
        total
    }

    /// Id of the visible element `index` of `leaf` (counting from the leaf's first).
    pub(super) fn nth_in_leaf(&self, leaf: LeafIdx, mut index: usize) -> Option<super::Id> {
        for run in self.leaves.get(leaf.0)?.runs.iter().filter(|r| r.visible) {
            if index < run.len() {
                return Some(run.id_at(index));
            }
            index -= run.len();
        }
        None
    }

    /// The leaf holding the visible element `index`, and that element's visible index within
    /// the leaf. Descends by subtree counts.
    pub(super) fn descend(&self, mut index: usize) -> Option<(LeafIdx, usize)> {
        let mut cur = self.root;
        loop {
            match cur {
                Child::Leaf(l) => return Some((l, index)),
                Child::Node(n) => {
                    let node = self.nodes.get(n.0)?;
                    let mut next = None;
                    for (&c, &count) in node.children.iter().zip(&node.counts) {
                        if index < count {
                            next = Some(c);
                            break;
                        }
                        index -= count;
                    }
                    cur = node.child(next?);
                }
            }
        }
    }

    // ---- Run edits inside one leaf (index kept in step) ------------------------------------

    /// Splits run `run` of `leaf` before its element `at` (`0 < at < len`); the tail becomes
    /// run `run + 1`.
    pub(super) fn split_run(&mut self, leaf: LeafIdx, run: usize, at: usize) -> Option<()> {
        let l = self.leaves.get_mut(leaf.0)?;
        let tail = l.runs.get_mut(run)?.split(at)?;
        l.runs.insert(run + 1, tail);
        Some(())
    }

    /// Makes the element at `loc` a run of its own; returns that run's position in the leaf.
    pub(super) fn isolate(&mut self, loc: Loc) -> Option<usize> {
        let len = self.run_at(loc.leaf, loc.run)?.len();
        if loc.off + 1 < len {
            self.split_run(loc.leaf, loc.run, loc.off + 1)?;
        }
        if loc.off > 0 {
            self.split_run(loc.leaf, loc.run, loc.off)?;
            return Some(loc.run + 1);
        }
        Some(loc.run)
    }

    /// Merges runs `run` and `run + 1` of `leaf` if the second continues the first.
    pub(super) fn merge_at(&mut self, leaf: LeafIdx, run: usize) {
        let Some(l) = self.leaves.get_mut(leaf.0) else {
            return;
        };
        let Some(&next) = l.runs.get(run + 1) else {
            return;
        };
        let Some(r) = l.runs.get_mut(run) else {
            return;
        };
        if r.can_append(&next) {
            r.append(next);
            l.runs.remove(run + 1);
        }
    }

    /// Merges run `run` of `leaf` with its neighbours where they continue each other.
    pub(super) fn merge_around(&mut self, leaf: LeafIdx, run: usize) {
        self.merge_at(leaf, run);
        if let Some(prev) = run.checked_sub(1) {
            self.merge_at(leaf, prev);
        }
    }

    // ---- Counts ----------------------------------------------------------------------------

    /// Adds `delta` visible elements to `leaf`'s count in every ancestor and to the total.
    pub(super) fn add_visible(&mut self, leaf: LeafIdx, delta: isize) {
        self.visible = self.visible.saturating_add_signed(delta);
        let mut child = leaf.0;
        let mut parent = self.leaves.get(leaf.0).and_then(|l| l.parent);
        while let Some(p) = parent {
            let Some(node) = self.nodes.get_mut(p.0) else {
                return;
            };
            if let Some(count) = node.slot(child).and_then(|s| node.counts.get_mut(s)) {
                *count = count.saturating_add_signed(delta);
            }
            child = p.0;
            parent = node.parent;
        }
    }

    // ---- Structure -------------------------------------------------------------------------

    /// Splits `leaf` in two if it holds more than [`LEAF_CAP`] runs. Call after the counts
    /// are up to date: the split moves part of the leaf's count to its new sibling.
    pub(super) fn fix_overflow(&mut self, leaf: LeafIdx) {
        let over = self
            .leaves
            .get(leaf.0)
            .is_some_and(|l| l.runs.len() > LEAF_CAP);
        if over {
            // A leaf never holds more than LEAF_CAP + 2 runs (one edit adds at most two), so
            // one split brings both halves within the cap.
            let _ = self.split_leaf(leaf);
        }
    }

    /// Moves the second half of `leaf`'s runs to a new leaf right after it.
    fn split_leaf(&mut self, leaf: LeafIdx) -> Option<()> {
        let new = self.alloc_leaf();
        let l = self.leaves.get_mut(leaf.0)?;
        let tail = l.runs.split_off(l.runs.len() / 2);
        let next = l.next.replace(new);
        let parent = l.parent;
        let moved: usize = tail.iter().map(Run::visible_len).sum();
        let stay = std::mem::take(&mut l.runs);
        self.index_moved(&tail, &stay, leaf, new);
        self.leaves.get_mut(leaf.0)?.runs = stay;
        *self.leaves.get_mut(new.0)? = Leaf {
            runs: tail,
            parent,
            next,
        };
        self.attach(parent, leaf.0, new.0, moved, true)
    }

    /// Moves the second half of node `n`'s children to a new node right after it.
    fn split_node(&mut self, n: NodeIdx) -> Option<()> {
        let new = self.alloc_node();
        let node = self.nodes.get_mut(n.0)?;
        let mid = node.children.len() / 2;
        let children = node.children.split_off(mid);
        let counts = node.counts.split_off(mid);
        let leaf_children = node.leaf_children;
        let parent = node.parent;
        let moved: usize = counts.iter().sum();
        for &c in &children {
            self.set_parent(c, leaf_children, Some(new));
        }
        *self.nodes.get_mut(new.0)? = Node {
            children,
            counts,
            leaf_children,
            parent,
        };
        self.attach(parent, n.0, new.0, moved, false)
    }

    /// Puts `right` (a leaf if `leaves`, else a node; its `parent` already set to `parent`)
    /// just after its sibling `left` under `parent`, moving `moved` visible elements from
    /// `left`'s count to `right`'s. With no parent, `left` was the root: a new root holds both.
    fn attach(
        &mut self,
        parent: Option<NodeIdx>,
        left: usize,
        right: usize,
        moved: usize,
        leaves: bool,
    ) -> Option<()> {
        let Some(p) = parent else {
            let root = self.alloc_node();
            *self.nodes.get_mut(root.0)? = Node {
                children: vec![left, right],
                counts: vec![self.visible.saturating_sub(moved), moved],
                leaf_children: leaves,
                parent: None,
            };
            self.set_parent(left, leaves, Some(root));
            self.set_parent(right, leaves, Some(root));
            self.root = Child::Node(root);
            return Some(());
        };
        let node = self.nodes.get_mut(p.0)?;
        let slot = node.slot(left)?;
        let count = node.counts.get_mut(slot)?;
        *count = count.saturating_sub(moved);
        node.children.insert(slot + 1, right);
        node.counts.insert(slot + 1, moved);
        if node.children.len() > NODE_CAP {
            self.split_node(p)?;
        }
        Some(())
    }

    fn set_parent(&mut self, child: usize, leaf: bool, parent: Option<NodeIdx>) {
        if leaf {
            if let Some(l) = self.leaves.get_mut(child) {
                l.parent = parent;
            }
        } else if let Some(n) = self.nodes.get_mut(child) {
            n.parent = parent;
        }
    }

    /// Takes an empty leaf out of the tree (its left neighbour's `next` skips it, ancestors left
    /// empty go too, and a root with one child gives way to that child). The only leaf stays,
    /// as the empty root.
    pub(super) fn unlink_leaf(&mut self, leaf: LeafIdx) -> Option<()> {
        let l = self.leaves.get(leaf.0)?;
        if !l.runs.is_empty() {
            return Some(());
        }
        let (next, mut parent) = (l.next, l.parent);
        let prev = self.prev_leaf(leaf);
        if prev.is_none() && next.is_none() {
            return Some(());
        }
        if let Some(p) = prev.and_then(|p| self.leaves.get_mut(p.0)) {
            p.next = next;
        }
        self.free_leaf(leaf);
        let mut child = leaf.0;
        while let Some(p) = parent {
            let node = self.nodes.get_mut(p.0)?;
            let slot = node.slot(child)?;
            node.children.remove(slot);
            node.counts.remove(slot);
            if !node.children.is_empty() {
                break;
            }
            // Not the root: the root still holds the leaf `prev` or `next`.
            child = p.0;
            parent = node.parent;
            self.free_node(p);
        }
        self.collapse_root();
        Some(())
    }

    /// While the root is a node with a single child, makes that child the root.
    fn collapse_root(&mut self) {
        while let Child::Node(n) = self.root {
            let Some(node) = self.nodes.get(n.0) else {
                return;
            };
            let &[only] = node.children.as_slice() else {
                return;
            };
            let (child, leaf) = (node.child(only), node.leaf_children);
            self.set_parent(only, leaf, None);
            self.root = child;
            self.free_node(n);
        }
    }

    fn alloc_leaf(&mut self) -> LeafIdx {
        self.free_leaves.pop().unwrap_or_else(|| {
            self.leaves.push(Leaf::default());
            LeafIdx(self.leaves.len() - 1)
        })
    }

    fn alloc_node(&mut self) -> NodeIdx {
        self.free_nodes.pop().unwrap_or_else(|| {
            self.nodes.push(Node::default());
            NodeIdx(self.nodes.len() - 1)
        })
    }

    fn free_leaf(&mut self, leaf: LeafIdx) {
        if let Some(l) = self.leaves.get_mut(leaf.0) {
            *l = Leaf::default();
            self.free_leaves.push(leaf);
        }
    }

    fn free_node(&mut self, n: NodeIdx) {
        if let Some(node) = self.nodes.get_mut(n.0) {
            *node = Node::default();
            self.free_nodes.push(n);
        }
    }

    // ---- Invariants ------------------------------------------------------------------------

    /// Checks every invariant of the structure; panics (in tests) if one is broken.
    ///
    /// 1. The root has no parent. Every internal node has 1 to [`NODE_CAP`] children (the root
    ///    too) and one count per child; each child's `parent` is that node; `leaf_children`
    ///    says truly whether the children are leaves, and all leaves are at the same depth.
    /// 2. Each count in a node equals the number of visible elements in that child's subtree,
    ///    and `visible` equals the number of visible elements in the tree.
    /// 3. Every leaf holds at most [`LEAF_CAP`] runs and none is empty, except a root leaf
    ///    (the sequence has no elements).
    /// 4. Following `next` from the first leaf visits exactly the leaves of an in-order walk,
    ///    in that order, and ends with `None`.
    /// 5. Every run has `len ≥ 1`, its ids do not overflow, a character run's arena slots lie
    ///    inside `chars`, and a complex run has `text == 0`.
    /// 6. No two runs of one leaf are adjacent and mergeable (`can_append`); every edit
    ///    re-merges what it split. (Across a leaf boundary a mergeable pair is allowed.)
    /// 7. The id index sends every element to its leaf: for each run, the entry with the
    ///    greatest key `≤ (actor, start)` has that actor and names the run's leaf, and so does
    ///    every entry keyed inside the run. Ids are unique: an actor's runs cover disjoint
    ///    counter ranges.
    /// 8. The free lists name distinct arena slots reachable from nowhere, holding empty
    ///    defaults; reachable and free slots together are the whole arenas.
    /// 9. The position cache, if set, names a leaf of the tree and the number of visible
    ///    elements before it. (The hint leaf needs no invariant: any value is safe.)
    /// 10. No element has a counter above `max_counter`.
    #[cfg(test)]
    pub(crate) fn dbg_check(&self) {
        use std::collections::{BTreeMap, HashSet};

        struct Walk {
            leaves: Vec<LeafIdx>,
            leaf_set: HashSet<usize>,
            nodes: HashSet<usize>,
            leaf_depth: Option<usize>,
        }
        fn walk(
            seq: &Sequence,
            at: Child,
            parent: Option<NodeIdx>,
            depth: usize,
            w: &mut Walk,
        ) -> usize {
            match at {
                Child::Leaf(l) => {
                    let leaf = &seq.leaves[l.0];
                    assert_eq!(leaf.parent, parent, "leaf {l:?}: parent pointer");
                    assert!(leaf.runs.len() <= LEAF_CAP, "leaf {l:?}: overfull");
                    assert!(
                        !leaf.runs.is_empty() || parent.is_none(),
                        "leaf {l:?}: empty non-root leaf"
                    );
                    match w.leaf_depth {
                        None => w.leaf_depth = Some(depth),
                        Some(d) => assert_eq!(d, depth, "leaf {l:?}: leaves at different depths"),
                    }
                    assert!(w.leaf_set.insert(l.0), "leaf {l:?} reached twice");
                    w.leaves.push(l);
                    leaf.runs.iter().map(Run::visible_len).sum()
                }
                Child::Node(n) => {
                    let node = &seq.nodes[n.0];
                    assert!(w.nodes.insert(n.0), "node {n:?} reached twice");
                    assert_eq!(node.parent, parent, "node {n:?}: parent pointer");
                    assert!(!node.children.is_empty(), "node {n:?}: no children");
                    assert!(node.children.len() <= NODE_CAP, "node {n:?}: overfull");
                    assert_eq!(node.children.len(), node.counts.len(), "node {n:?}: counts");
                    let mut total = 0;
                    for (&c, &count) in node.children.iter().zip(&node.counts) {
                        let sub = walk(seq, node.child(c), Some(n), depth + 1, w);
                        assert_eq!(sub, count, "node {n:?}: cached count of child {c}");
                        total += sub;
                    }
                    total
                }
            }
        }

        // 1-3.
        let mut w = Walk {
            leaves: Vec::new(),
            leaf_set: HashSet::new(),
            nodes: HashSet::new(),
            leaf_depth: None,
        };
        let total = walk(self, self.root, None, 0, &mut w);
        assert_eq!(total, self.visible, "total visible count");
        if let Child::Node(_) = self.root {
            // Only a root leaf may be empty (checked in walk); below a node no leaf is.
            assert!(w.leaves.iter().all(|l| !self.leaves[l.0].runs.is_empty()));
        }

        // 4.
        let mut chain = Vec::new();
        let mut cur = self.first_leaf();
        while let Some(l) = cur {
            assert!(chain.len() <= self.leaves.len(), "leaf chain has a cycle");
            chain.push(l);
            cur = self.leaves[l.0].next;
        }
        assert_eq!(
            chain, w.leaves,
            "next pointers disagree with the tree order"
        );

        // 5-7.
        let mut runs = 0;
        let mut ranges: BTreeMap<(u32, u64), u64> = BTreeMap::new();
        for &l in &w.leaves {
            let leaf = &self.leaves[l.0];
            for (i, r) in leaf.runs.iter().enumerate() {
                assert!(r.len >= 1, "empty run {r:?}");
                assert!(
                    r.start.checked_add(u64::from(r.len) - 1).is_some(),
                    "run {r:?}: ids overflow"
                );
                if r.complex {
                    assert_eq!(r.text, 0, "complex run {r:?}: text");
                } else {
                    assert!(
                        r.text + r.len() <= self.chars.len(),
                        "run {r:?}: outside the arena"
                    );
                }
                if let Some(next) = leaf.runs.get(i + 1) {
                    assert!(
                        !r.can_append(next),
                        "leaf {l:?}: mergeable runs {r:?} {next:?}"
                    );
                }
                assert_eq!(
                    self.floor(r.actor, r.start).map(|(_, leaf)| leaf),
                    Some(l),
                    "index entry covering {r:?}"
                );
                let end = r.start + u64::from(r.len);
                for (_, &leaf) in self.index.range((r.actor, r.start)..(r.actor, end)) {
                    assert_eq!(leaf, l, "index entry inside {r:?}");
                }
                assert!(ranges
                    .insert((r.actor, r.start), u64::from(r.len))
                    .is_none());
                runs += 1;
            }
        }
        assert!(runs <= self.leaves.len() * LEAF_CAP);
        let mut last: Option<(u32, u64)> = None;
        for (&(actor, start), &len) in &ranges {
            if let Some((a, end)) = last {
                assert!(
                    a != actor || end <= start,
                    "duplicate ids: actor {actor}, counter {start}"
                );
            }
            last = Some((actor, start + len));
            // 10.
            assert!(
                start + len - 1 <= self.max_counter,
                "counter above max_counter"
            );
        }

        // 8.
        let free_leaves: HashSet<usize> = self.free_leaves.iter().map(|l| l.0).collect();
        assert_eq!(
            free_leaves.len(),
            self.free_leaves.len(),
            "leaf freed twice"
        );
        for &l in &free_leaves {
            assert!(!w.leaf_set.contains(&l), "free leaf {l} in the tree");
            let leaf = &self.leaves[l];
            assert!(leaf.runs.is_empty() && leaf.parent.is_none() && leaf.next.is_none());
        }
        assert_eq!(
            w.leaves.len() + free_leaves.len(),
            self.leaves.len(),
            "leaked leaves"
        );
        let free_nodes: HashSet<usize> = self.free_nodes.iter().map(|n| n.0).collect();
        assert_eq!(free_nodes.len(), self.free_nodes.len(), "node freed twice");
        for &n in &free_nodes {
            assert!(!w.nodes.contains(&n), "free node {n} in the tree");
            assert!(self.nodes[n].children.is_empty());
        }
        assert_eq!(
            w.nodes.len() + free_nodes.len(),
            self.nodes.len(),
            "leaked nodes"
        );

        // 9.
        if let Some((leaf, start)) = self.cursor {
            assert!(
                w.leaf_set.contains(&leaf.0),
                "position cache names a leaf not in the tree"
            );
            assert_eq!(
                self.count_before(leaf),
                start,
                "position cache of leaf {leaf:?}"
            );
        }
    }
}
