//! [`Run`]: consecutive list elements stored as one span.

use super::super::id::Id;
use super::Content;

/// `len` list elements stored as one entry of a leaf.
///
/// The elements are adjacent in document order and have consecutive ids by one actor,
/// `(start, actor)`, `(start + 1, actor)`, …, the same visibility and the same kind of content.
/// Typing a word makes one run; deleting a character in its middle splits it into three.
///
/// Laws (checked by `run_split_and_append_are_inverse` in the tests): for `0 < at < len`,
/// `split(at)` returns the tail and keeps the head, after which `head.can_append(&tail)` holds
/// and `head.append(tail)` gives back the original run; element `k` of the tail is element
/// `at + k` of the original (same id, content and visibility).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Run {
    /// Counter of the first element: element `k` has id `(start + k, actor)`. The ids of a run
    /// exist, so `start + len - 1` never overflows.
    pub start: u64,
    /// Character runs: element `k` is `Content::Char(chars[text + k])`, `chars` being the
    /// sequence's character arena. Complex runs: always 0 (unused), so that `==` compares
    /// meaningful fields only.
    pub text: usize,
    /// Number of elements, at least 1. `u32` keeps the run at 32 bytes; a run that would
    /// outgrow it simply is not extended (a new run starts).
    pub len: u32,
    /// Interned actor of every element (index into the document's actor table).
    pub actor: u32,
    /// Visibility of every element (`pres ≠ {}`): a run never mixes visible and deleted
    /// elements.
    pub visible: bool,
    /// True: every element is `Content::Complex` (its state lives in the list's side table).
    /// False: every element is a `Content::Char` whose character is in the arena.
    pub complex: bool,
}

impl Run {
    /// A run of one element with id `id`. `text` is the arena slot of its character (ignored,
    /// and stored as 0, for complex content).
    pub fn single(id: Id, complex: bool, text: usize, visible: bool) -> Self {
        Run {
            start: id.counter,
            text: if complex { 0 } else { text },
            len: 1,
            actor: id.actor,
            visible,
            complex,
        }
    }

    /// Number of elements as a `usize`.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Number of visible elements: `len` or 0.
    pub fn visible_len(&self) -> usize {
        if self.visible {
            self.len()
        } else {
            0
        }
    }

    /// Id of element `k` (`k < len`).
    pub fn id_at(&self, k: usize) -> Id {
        Id::new(self.start.saturating_add(k as u64), self.actor)
    }

    /// Index of `id` in this run, if the run holds it.
    pub fn offset_of(&self, id: Id) -> Option<usize> {
        if id.actor != self.actor {
            return None;
        }
        let d = id.counter.checked_sub(self.start)?;
        (d < u64::from(self.len)).then_some(d as usize)
    }

    /// Content of element `k` (`k < len`). A character slot outside the arena cannot happen
    /// (checked by `dbg_check`); it reads as complex rather than panicking.
    pub fn content_at(&self, k: usize, chars: &[char]) -> Content {
        if self.complex {
            return Content::Complex;
        }
        self.text
            .checked_add(k)
            .and_then(|i| chars.get(i))
            .map_or(Content::Complex, |&c| Content::Char(c))
    }

    /// Cuts the run before element `at` (`0 < at < len`): keeps the head, returns the tail.
    /// `None`, with the run unchanged, if `at` is out of range.
    pub fn split(&mut self, at: usize) -> Option<Run> {
        let at = u32::try_from(at).ok().filter(|&a| a > 0 && a < self.len)?;
        let tail = Run {
            start: self.start.checked_add(u64::from(at))?,
            text: if self.complex {
                0
            } else {
                self.text.checked_add(at as usize)?
            },
            len: self.len - at,
            ..*self
        };
        self.len = at;
        Some(tail)
    }

    /// True if `other` continues this run: same actor, visibility and kind, the next ids, and
    /// (for characters) the next arena slots, with the joint length fitting a `u32`.
    pub fn can_append(&self, other: &Run) -> bool {
        self.actor == other.actor
            && self.visible == other.visible
            && self.complex == other.complex
            && self.start.checked_add(u64::from(self.len)) == Some(other.start)
            && (self.complex || self.text.checked_add(self.len()) == Some(other.text))
            && self.len.checked_add(other.len).is_some()
    }

    /// Appends `other`, which must satisfy [`Run::can_append`].
    pub fn append(&mut self, other: Run) {
        self.len = self.len.saturating_add(other.len);
    }
}
