//! The reference model of [`Sequence`](super::Sequence): a plain `Vec` of elements, O(n) per
//! call, written straight from the contract. The model tests drive it and the real structure
//! side by side and compare them after every step.

use super::super::id::Id;
use super::Content;

#[derive(Clone, Debug)]
struct Elem {
    id: Id,
    content: Content,
    visible: bool,
}

/// The naive model: one list's elements in document order, tombstones included.
#[derive(Clone, Debug, Default)]
pub(super) struct Reference {
    elems: Vec<Elem>,
}

impl Reference {
    /// Number of visible elements.
    pub(super) fn len(&self) -> usize {
        self.elems.iter().filter(|e| e.visible).count()
    }

    fn pos(&self, id: Id) -> Option<usize> {
        self.elems.iter().position(|e| e.id == id)
    }

    /// True if the list has an element with this id (visible or not).
    pub(super) fn contains(&self, id: Id) -> bool {
        self.pos(id).is_some()
    }

    /// Content and visibility of an element.
    pub(super) fn get(&self, id: Id) -> Option<(Content, bool)> {
        self.pos(id)
            .map(|p| (self.elems[p].content, self.elems[p].visible))
    }

    /// Id of the visible element at `index` (0-based).
    pub(super) fn nth_visible(&self, index: usize) -> Option<Id> {
        self.elems
            .iter()
            .filter(|e| e.visible)
            .nth(index)
            .map(|e| e.id)
    }

    /// Number of visible elements before `id`, if the element exists.
    pub(super) fn index_of(&self, id: Id) -> Option<usize> {
        let p = self.pos(id)?;
        Some(self.elems[..p].iter().filter(|e| e.visible).count())
    }

    /// Inserts a new element after `prev` (`None` = the head) following RGA (rules INSERT1/2):
    /// starting right after `prev`, skip every element whose id is greater than `id`
    /// (`greater(a, b)` says whether `a > b` in the id order), then insert.
    ///
    /// Returns the number of visible elements before the new one. The caller guarantees that
    /// `prev` exists and `id` is new.
    pub(super) fn insert(
        &mut self,
        prev: Option<Id>,
        id: Id,
        content: Content,
        visible: bool,
        mut greater: impl FnMut(Id, Id) -> bool,
    ) -> usize {
        let mut p = match prev {
            None => 0,
            Some(prev) => self.pos(prev).map_or(self.elems.len(), |p| p + 1),
        };
        while p < self.elems.len() && greater(self.elems[p].id, id) {
            p += 1;
        }
        let index = self.elems[..p].iter().filter(|e| e.visible).count();
        self.elems.insert(
            p,
            Elem {
                id,
                content,
                visible,
            },
        );
        index
    }

    /// Sets an element's visibility; returns true if it changed.
    pub(super) fn set_visible(&mut self, id: Id, visible: bool) -> bool {
        match self.pos(id) {
            Some(p) if self.elems[p].visible != visible => {
                self.elems[p].visible = visible;
                true
            }
            _ => false,
        }
    }

    /// Replaces an element's content.
    pub(super) fn set_content(&mut self, id: Id, content: Content) {
        if let Some(p) = self.pos(id) {
            self.elems[p].content = content;
        }
    }

    /// Physically removes an element. Only used to roll back an insert that failed validation
    /// later in the same batch; never part of the CRDT semantics (tombstones stay).
    pub(super) fn remove(&mut self, id: Id) {
        if let Some(p) = self.pos(id) {
            self.elems.remove(p);
        }
    }

    /// Every element in order: `(id, content, visible)`.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Id, Content, bool)> + '_ {
        self.elems.iter().map(|e| (e.id, e.content, e.visible))
    }

    /// Checks internal invariants; panics if one is broken.
    pub(super) fn dbg_check(&self) {
        let mut seen = std::collections::HashSet::new();
        for e in &self.elems {
            assert!(seen.insert(e.id), "duplicate id {:?}", e.id);
        }
    }
}
