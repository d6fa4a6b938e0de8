//! The element sequence of one list: RGA order, tombstones, and index lookups.
//!
//! This is the paper's `next(k)` linked list (§1, "List node") flattened into one ordered
//! sequence of elements, each with its id, its visibility (`pres ≠ {}`) and, for the common
//! case of a one-character string that nothing else has touched, its character inline.
//! Elements whose state is richer (a map, a list, a multi-value register, a non-character
//! value) are `Content::Complex` and their state lives in the list's side table.
//!
//! NOTE: this is the reference implementation (a plain `Vec`, O(n) per call). It defines the
//! contract; an order-statistic tree replaces it for speed.

use super::id::Id;

/// What the sequence stores for an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Content {
    /// A one-character string whose register holds only its own insert (`{id ↦ "c"}`) and
    /// whose presence is `{id}` when visible, `{}` when deleted.
    Char(char),
    /// Anything else; the list's side table holds the element's full state.
    Complex,
}

#[derive(Clone, Debug)]
struct Elem {
    id: Id,
    content: Content,
    visible: bool,
}

/// One list's elements in document order, tombstones included.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sequence {
    elems: Vec<Elem>,
}

impl Sequence {
    /// Number of visible elements.
    pub(crate) fn len(&self) -> usize {
        self.elems.iter().filter(|e| e.visible).count()
    }

    fn pos(&self, id: Id) -> Option<usize> {
        self.elems.iter().position(|e| e.id == id)
    }

    /// True if the list has an element with this id (visible or not).
    pub(crate) fn contains(&self, id: Id) -> bool {
        self.pos(id).is_some()
    }

    /// Content and visibility of an element.
    pub(crate) fn get(&self, id: Id) -> Option<(Content, bool)> {
        self.pos(id).map(|p| (self.elems[p].content, self.elems[p].visible))
    }

    /// Id of the visible element at `index` (0-based).
    pub(crate) fn nth_visible(&self, index: usize) -> Option<Id> {
        self.elems
            .iter()
            .filter(|e| e.visible)
            .nth(index)
            .map(|e| e.id)
    }

    /// Number of visible elements before `id`, if the element exists.
    pub(crate) fn index_of(&self, id: Id) -> Option<usize> {
        let p = self.pos(id)?;
        Some(self.elems[..p].iter().filter(|e| e.visible).count())
    }

    /// Inserts a new element after `prev` (`None` = the head) following RGA (rules INSERT1/2):
    /// starting right after `prev`, skip every element whose id is greater than `id`
    /// (`greater(a, b)` says whether `a > b` in the id order), then insert.
    ///
    /// Returns the number of visible elements before the new one. The caller guarantees that
    /// `prev` exists and `id` is new.
    pub(crate) fn insert(
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
    pub(crate) fn set_visible(&mut self, id: Id, visible: bool) -> bool {
        match self.pos(id) {
            Some(p) if self.elems[p].visible != visible => {
                self.elems[p].visible = visible;
                true
            }
            _ => false,
        }
    }

    /// Replaces an element's content.
    pub(crate) fn set_content(&mut self, id: Id, content: Content) {
        if let Some(p) = self.pos(id) {
            self.elems[p].content = content;
        }
    }

    /// Physically removes an element. Only used to roll back an insert that failed validation
    /// later in the same batch; never part of the CRDT semantics (tombstones stay).
    pub(crate) fn remove(&mut self, id: Id) {
        if let Some(p) = self.pos(id) {
            self.elems.remove(p);
        }
    }

    /// Every element in order: `(id, content, visible)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Id, Content, bool)> + '_ {
        self.elems.iter().map(|e| (e.id, e.content, e.visible))
    }

    /// Checks internal invariants; panics (in tests) if one is broken.
    #[cfg(test)]
    pub(crate) fn dbg_check(&self) {
        let mut seen = std::collections::HashSet::new();
        for e in &self.elems {
            assert!(seen.insert(e.id), "duplicate id {:?}", e.id);
        }
    }
}

