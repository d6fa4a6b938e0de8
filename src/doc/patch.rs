//! Patches: what visibly changed when an operation was applied, so a UI can update without
//! diffing (after automerge's `PatchAction`).

use serde::{Deserialize, Serialize};

/// One step of a path to a visible value: a map key or a list index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PathSeg {
    /// A key of a map.
    Key(String),
    /// A 0-based index into a list's visible elements.
    Index(usize),
}

/// A visible change at `path`.
///
/// Patches are emitted in application order; each one's indices refer to the document as it
/// was right after the previous patch. Applying them in order to the JSON seen before the
/// change yields [`Doc::to_json`](super::Doc::to_json) after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    /// Where the change happened. Empty for the root.
    pub path: Vec<PathSeg>,
    /// What happened there.
    pub action: PatchAction,
}

/// What a [`Patch`] did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PatchAction {
    /// The map key (or list element, or root) at `path` now shows `value`, which replaces
    /// whatever was there. `conflict` is true when concurrent values exist; see
    /// [`Doc::conflicts`](super::Doc::conflicts).
    Put {
        /// The new rendered value.
        value: serde_json::Value,
        /// Whether other concurrent values exist at this key.
        conflict: bool,
    },
    /// A new element became visible at the list index that ends `path` (inserted, or
    /// resurrected by a concurrent edit inside it); later elements shift right.
    Insert {
        /// The element's rendered value.
        value: serde_json::Value,
    },
    /// The key or list element at `path` is no longer visible; later elements shift left.
    Delete,
}

impl Patch {
    /// Applies this patch to a JSON value (the view a UI keeps).
    ///
    /// Returns false if the path does not fit `json` (the UI's view is out of sync).
    pub fn apply_to(&self, json: &mut serde_json::Value) -> bool {
        let Some((last, parents)) = self.path.split_last() else {
            return match &self.action {
                PatchAction::Put { value, .. } => {
                    *json = value.clone();
                    true
                }
                _ => false,
            };
        };
        let mut cur = json;
        for seg in parents {
            let next = match (seg, cur) {
                (PathSeg::Key(k), serde_json::Value::Object(m)) => m.get_mut(k),
                (PathSeg::Index(i), serde_json::Value::Array(a)) => a.get_mut(*i),
                _ => None,
            };
            match next {
                Some(n) => cur = n,
                None => return false,
            }
        }
        match (last, &self.action, cur) {
            (PathSeg::Key(k), PatchAction::Put { value, .. }, serde_json::Value::Object(m)) => {
                m.insert(k.clone(), value.clone());
                true
            }
            (PathSeg::Key(k), PatchAction::Delete, serde_json::Value::Object(m)) => {
                m.remove(k).is_some()
            }
            (PathSeg::Index(i), PatchAction::Put { value, .. }, serde_json::Value::Array(a)) => {
                match a.get_mut(*i) {
                    Some(slot) => {
                        *slot = value.clone();
                        true
                    }
                    None => false,
                }
            }
            (PathSeg::Index(i), PatchAction::Insert { value }, serde_json::Value::Array(a))
                if *i <= a.len() =>
            {
                a.insert(*i, value.clone());
                true
            }
            (PathSeg::Index(i), PatchAction::Delete, serde_json::Value::Array(a))
                if *i < a.len() =>
            {
                a.remove(*i);
                true
            }
            _ => false,
        }
    }
}
