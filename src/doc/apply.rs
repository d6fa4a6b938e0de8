//! Applying one operation to the tree: the paper's Fig. 11 (DESCEND, ASSIGN, EMPTY-MAP,
//! EMPTY-LIST, INSERT1/2) and Fig. 12 (DELETE, CLEAR-*), plus an undo log so that a batch that
//! fails half-way, or a local transaction that returns `Err`, leaves the document unchanged.
//!
//! Two departures from a literal transcription, both equivalent in effect:
//!
//! * **Assigning a primitive clears all three namespaces** (`clearElem`), not only `regT(k)`.
//!   This is the deliberate departure recorded in DESIGN.md: after `a := {}; a.x := 1; a := "s"`
//!   a sequential reader expects just `"s"`. Concurrent semantics are unchanged, because the
//!   clear still removes only ids in the op's causal past.
//! * **Clearing skips subtrees with nothing to clear.** Every id in a child's presence sets is
//!   also in the parent's presence set for that namespace (DESCEND adds an op's id to every
//!   ancestor, and a clear removes the same ids from a whole subtree). So if clearing a
//!   namespace of `pres(k)` removed nothing, nothing below it is in the causal past either, and
//!   the recursion stops. `CLEAR-ELEM`'s `pres1 ∪ pres2 \ deps` equals `pres2 \ deps` for the
//!   same reason.

use std::sync::Arc;

use super::error::DocError;
use super::id::{ActorTable, Id};
use super::node::{Entry, ListNode, MapNode};
use super::op::Tag;
use super::patch::{Patch, PatchAction, PathSeg};
use super::read::{has_conflict, render_entry, Ns};
use super::seq::Content;
use super::value::Value;

/// An untagged key with interned element ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum K {
    Doc,
    Str(String),
    Elem(Id),
    Head,
}

/// A cursor path with interned element ids. Shared (by undo records, and by consecutive ops
/// on the same container, see `Doc::intern_cursor`), so cloning it is a reference count.
pub(crate) type IPath = Arc<[(Tag, K)]>;

/// A cursor with interned element ids.
#[derive(Clone, Debug)]
pub(crate) struct ICursor<'p> {
    pub path: &'p IPath,
    pub key: K,
}

/// A mutation with its value.
pub(crate) enum IMut<'a> {
    Assign(&'a Value),
    Insert(&'a Value),
    Delete,
}

/// A container path, and the tag and key of the step taken from it.
type Step<'a> = (&'a [(Tag, K)], Tag, &'a K);

/// A place on the path of the op being applied: the first `depth` tagged keys of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Loc<'p> {
    path: &'p [(Tag, K)],
    depth: usize,
}

impl<'p> Loc<'p> {
    fn child(self) -> Loc<'p> {
        Loc {
            depth: self.depth + 1,
            ..self
        }
    }
}

/// Where an undo step applies: the first `depth` tagged keys of path number `path` of the
/// [`UndoLog`]. Two integers, so that logging a step costs no allocation and no reference
/// count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct At {
    path: u32,
    depth: u32,
}

/// An emptied [`UndoLog`] keeps a step buffer up to this capacity for reuse.
const KEEP_UNDO_STEPS: usize = 256;

/// The paths of the logged ops (each once: consecutive ops on one container share theirs)
/// and the steps to undo, oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct UndoLog {
    paths: Vec<IPath>,
    steps: Vec<Undo>,
}

impl UndoLog {
    /// The number of `path` in the log, adding it if it is not the last one added.
    fn path_number(&mut self, path: &IPath) -> u32 {
        match self.paths.last() {
            Some(last) if Arc::ptr_eq(last, path) => {}
            _ => self.paths.push(path.clone()),
        }
        // Invariant: at most one path per logged op, and a transaction holds far fewer than
        // u32::MAX ops (MAX_OPS_PER_CHANGE); saturating keeps this total anyway.
        u32::try_from(self.paths.len() - 1).unwrap_or(u32::MAX)
    }

    /// Empties the log for reuse. Keeps the last path (the next transaction most likely
    /// works on the same container) and the step buffer unless it grew large.
    pub(crate) fn reset(&mut self) {
        if self.steps.capacity() > KEEP_UNDO_STEPS {
            self.steps = Vec::new();
        } else {
            self.steps.clear();
        }
        if self.paths.len() > 1 {
            let last = self.paths.pop();
            self.paths.clear();
            self.paths.extend(last);
        }
    }
}

impl At {
    /// The keys this names, given the log's paths.
    fn keys(self, paths: &[IPath]) -> &[(Tag, K)] {
        paths
            .get(self.path as usize)
            .and_then(|p| p.get(..self.depth as usize))
            .unwrap_or(&[])
    }

    /// The container holding the entry that the last step passes through, and that step:
    /// `(container path, tag, key)`.
    fn split_last(self, paths: &[IPath]) -> Option<Step<'_>> {
        let (last, parent) = self.keys(paths).split_last()?;
        Some((parent, last.0, &last.1))
    }
}

/// One step to undo, recorded just before the state changes. Replayed newest first.
#[derive(Clone, Debug)]
pub(crate) enum Undo {
    /// An entry (map entry, root, or complex list element) before a final-key mutation.
    /// Boxed: it is rare, and much bigger than the other steps.
    Snapshot(Box<Snapshot>),
    /// An id added to the presence set of the entry that `entry`'s last step passes through,
    /// in that step's namespace.
    PresAdded { entry: At, id: Id },
    /// The child container that `entry`'s last step descends into was created.
    ChildCreated { entry: At },
    /// The map entry that `entry`'s last step passes through was created.
    EntryCreated { entry: At },
    /// A list element inserted.
    ElemInserted { loc: At, id: Id },
    /// A list element's visibility changed from `before`.
    Visibility { loc: At, id: Id, before: bool },
    /// A simple element turned complex; `before` is its old content.
    MadeComplex { loc: At, id: Id, before: Content },
}

/// The entry at `key` in the container at `loc` before a final-key mutation; `before` is
/// `None` if it did not exist.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    loc: At,
    key: K,
    before: Option<Entry>,
}

/// The kind of container holding an entry, for patch emission.
#[derive(Clone, Copy)]
enum Parent {
    Top,
    Map,
    List,
}

/// The last segment of a patch path (the rest comes from the op's path).
#[derive(Clone, Copy)]
enum Last<'k> {
    /// None: the patch is for the root.
    Root,
    Key(&'k str),
    Index(usize),
}

/// Applies one op. Holds everything the recursion needs.
pub(crate) struct Applier<'a> {
    pub actors: &'a ActorTable,
    pub id: Id,
    pub delete: bool,
    /// Whiteout (group layer): an insert becomes an invisible anchor (the element exists, with
    /// no value), and no presence is added on the way down, so the op has no visible effect
    /// while honest inserts that name the element keep their place.
    pub anchor: bool,
    pub in_past: &'a mut dyn FnMut(Id) -> bool,
    pub undo: Option<&'a mut UndoLog>,
    /// The number of the op's path in the undo log (when logging).
    upath: u32,
    pub patches: Option<&'a mut Vec<Patch>>,
    /// Visible indexes of the list elements on the op's path so far, outermost first, kept
    /// while patches are emitted (not suppressed). With the op's path this gives the patch
    /// path, which is built only when a patch is emitted.
    pidx: Vec<usize>,
    /// An ancestor will emit a patch covering this whole subtree.
    suppress: bool,
}

impl<'a> Applier<'a> {
    pub(crate) fn new(
        actors: &'a ActorTable,
        id: Id,
        in_past: &'a mut dyn FnMut(Id) -> bool,
        undo: Option<&'a mut UndoLog>,
        patches: Option<&'a mut Vec<Patch>>,
    ) -> Self {
        let suppress = patches.is_none();
        Applier {
            actors,
            id,
            delete: false,
            anchor: false,
            in_past,
            undo,
            upath: 0,
            patches,
            pidx: Vec::new(),
            suppress,
        }
    }

    fn log(&mut self, u: impl FnOnce() -> Undo) {
        if let Some(undo) = self.undo.as_deref_mut() {
            undo.steps.push(u());
        }
    }

    /// `loc` in the undo log.
    fn at(&self, loc: Loc<'_>) -> At {
        At {
            path: self.upath,
            depth: u32::try_from(loc.depth).unwrap_or(u32::MAX),
        }
    }

    fn snapshot(&mut self, loc: Loc<'_>, key: K, before: Option<Entry>) {
        let loc = self.at(loc);
        self.log(|| Undo::Snapshot(Box::new(Snapshot { loc, key, before })));
    }

    fn logging(&self) -> bool {
        self.undo.is_some()
    }

    /// The patch path of the place `loc` (a container on the op's path) then `last`: the
    /// keys of the op's path below the root, with list elements as their visible indexes.
    fn patch_path(&self, loc: Loc<'_>, last: Last<'_>) -> Vec<PathSeg> {
        let keys = loc.path.get(1..loc.depth).unwrap_or(&[]);
        let mut out = Vec::with_capacity(keys.len() + 1);
        let mut idx = self.pidx.iter();
        for (_, k) in keys {
            match k {
                K::Str(s) => out.push(PathSeg::Key(s.clone())),
                K::Elem(_) => out.push(PathSeg::Index(idx.next().copied().unwrap_or(0))),
                K::Doc | K::Head => {}
            }
        }
        match last {
            Last::Root => {}
            Last::Key(k) => out.push(PathSeg::Key(k.to_owned())),
            Last::Index(i) => out.push(PathSeg::Index(i)),
        }
        out
    }

    /// Emits a patch at `loc` then `last`, unless patches are suppressed.
    fn emit(&mut self, loc: Loc<'_>, last: Last<'_>, action: PatchAction) {
        if self.suppress || self.patches.is_none() {
            return;
        }
        let path = self.patch_path(loc, last);
        if let Some(p) = self.patches.as_deref_mut() {
            p.push(Patch { path, action });
        }
    }

    /// Emits the patch for an entry (at `loc` then `last`) whose visible value may have
    /// changed.
    fn emit_entry(
        &mut self,
        parent: Parent,
        before_visible: bool,
        entry: &Entry,
        loc: Loc<'_>,
        last: Last<'_>,
    ) {
        if self.suppress {
            return;
        }
        let after = entry.is_visible();
        let value = || render_entry(entry, self.actors).unwrap_or(serde_json::Value::Null);
        match parent {
            Parent::Top => {
                let value = render_entry(entry, self.actors)
                    .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
                let conflict = has_conflict(entry);
                self.emit(loc, last, PatchAction::Put { value, conflict });
            }
            Parent::Map | Parent::List => {
                if after {
                    let v = value();
                    let action = if before_visible || matches!(parent, Parent::Map) {
                        PatchAction::Put {
                            value: v,
                            conflict: has_conflict(entry),
                        }
                    } else {
                        PatchAction::Insert { value: v }
                    };
                    self.emit(loc, last, action);
                } else if before_visible {
                    self.emit(loc, last, PatchAction::Delete);
                }
            }
        }
    }

    /// Applies `cur`/`m` starting at the root entry.
    pub(crate) fn apply(
        &mut self,
        root: &mut Entry,
        cur: &ICursor<'_>,
        m: &IMut<'_>,
    ) -> Result<(), DocError> {
        self.delete = matches!(m, IMut::Delete);
        if let Some(undo) = self.undo.as_deref_mut() {
            self.upath = undo.path_number(cur.path);
        }
        let mut loc = Loc {
            path: cur.path,
            depth: 0,
        };
        match cur.path.split_first() {
            None => {
                // Final key is `doc` itself: assign or delete at the root.
                let before = root.is_visible();
                if self.logging() {
                    self.snapshot(loc, K::Doc, Some(root.clone()));
                }
                self.clear_entry(root);
                match m {
                    IMut::Assign(v) => self.write_value(root, v),
                    IMut::Delete => {}
                    IMut::Insert(_) => {
                        return Err(DocError::MalformedCursor("insert outside a list"))
                    }
                }
                self.emit_entry(Parent::Top, before, root, loc, Last::Root);
                Ok(())
            }
            Some(((tag, K::Doc), rest)) => {
                let before = root.is_visible();
                let emit = self.through_entry(root, &mut loc, *tag, rest, &cur.key, m)?;
                if emit {
                    self.emit_entry(Parent::Top, before, root, loc, Last::Root);
                }
                Ok(())
            }
            Some(_) => Err(DocError::MalformedCursor("must start at doc")),
        }
    }

    /// DESCEND through `entry` (at `key` in the container at `loc`) into its `tag` child.
    /// Returns true if the caller must emit a patch for this entry (its visibility or shown
    /// namespace changed, so inner patches were suppressed).
    #[allow(clippy::too_many_arguments)]
    fn through_entry(
        &mut self,
        entry: &mut Entry,
        loc: &mut Loc<'_>,
        tag: Tag,
        rest: &[(Tag, K)],
        fin: &K,
        m: &IMut<'_>,
    ) -> Result<bool, DocError> {
        let before = (!self.suppress).then(|| (entry.is_visible(), Ns::shown(entry, self.actors)));
        if !self.delete && !self.anchor {
            entry.pres_mut(tag).add(self.id);
            let (id, l) = (self.id, self.at(loc.child()));
            self.log(|| Undo::PresAdded { entry: l, id });
        }
        let outer_suppress = self.suppress;
        let mut changed = false;
        if let Some(before) = before {
            let shown = match before {
                // A delete adds nothing; an id added to the only live namespace, the one
                // shown, leaves it the one shown.
                _ if self.delete => before.1,
                (_, Some(ns)) if ns == Ns::from(tag) && entry.live_count() == 1 => before.1,
                _ => Ns::shown(entry, self.actors),
            };
            changed = before != (entry.is_visible(), shown);
            // Inner patches are dropped when this entry gets a patch of its own, and when the
            // namespace we descend through is not the one rendered (type clash, paper Fig. 5).
            if changed || shown != Some(Ns::from(tag)) {
                self.suppress = true;
            }
        }
        loc.depth += 1;
        let r = match tag {
            Tag::Map => {
                if entry.map.is_none() {
                    if self.delete {
                        loc.depth -= 1;
                        self.suppress = outer_suppress;
                        return Ok(false);
                    }
                    entry.map = Some(Box::default());
                    let l = self.at(*loc);
                    self.log(|| Undo::ChildCreated { entry: l });
                }
                match entry.map.as_deref_mut() {
                    Some(map) => self.in_map(map, loc, rest, fin, m),
                    None => Ok(()),
                }
            }
            Tag::List => {
                if entry.list.is_none() {
                    if self.delete {
                        loc.depth -= 1;
                        self.suppress = outer_suppress;
                        return Ok(false);
                    }
                    entry.list = Some(Box::default());
                    let l = self.at(*loc);
                    self.log(|| Undo::ChildCreated { entry: l });
                }
                match entry.list.as_deref_mut() {
                    Some(list) => self.in_list(list, loc, rest, fin, m),
                    None => Ok(()),
                }
            }
        };
        loc.depth -= 1;
        self.suppress = outer_suppress;
        r.map(|()| changed)
    }

    fn in_map(
        &mut self,
        map: &mut MapNode,
        loc: &mut Loc<'_>,
        rest: &[(Tag, K)],
        fin: &K,
        m: &IMut<'_>,
    ) -> Result<(), DocError> {
        match rest.split_first() {
            Some(((tag, K::Str(s)), rest2)) => {
                if !map.entries.contains_key(s) {
                    if self.delete {
                        return Ok(());
                    }
                    map.entries.insert(s.clone(), Entry::default());
                    let l = self.at(loc.child());
                    self.log(|| Undo::EntryCreated { entry: l });
                }
                let Some(entry) = map.entries.get_mut(s) else {
                    return Ok(());
                };
                let before = entry.is_visible();
                let emit = self.through_entry(entry, loc, *tag, rest2, fin, m)?;
                if emit {
                    self.emit_entry(Parent::Map, before, entry, *loc, Last::Key(s));
                }
                Ok(())
            }
            Some(_) => Err(DocError::MalformedCursor("map entry key is not a string")),
            None => match fin {
                K::Str(s) => self.final_map(map, *loc, s, m),
                _ => Err(DocError::MalformedCursor("map entry key is not a string")),
            },
        }
    }

    fn in_list(
        &mut self,
        list: &mut ListNode,
        loc: &mut Loc<'_>,
        rest: &[(Tag, K)],
        fin: &K,
        m: &IMut<'_>,
    ) -> Result<(), DocError> {
        match rest.split_first() {
            Some(((tag, K::Elem(eid)), rest2)) => {
                let eid = *eid;
                let Some((content, before)) = list.seq.get(eid) else {
                    return Err(self.missing(eid));
                };
                if let Content::Char(_) = content {
                    if self.delete {
                        // A simple character has no children: nothing below it to delete.
                        return Ok(());
                    }
                    self.make_complex(list, *loc, eid, content, before);
                }
                let tracked = !self.suppress;
                if tracked {
                    let index = list.seq.index_of(eid).unwrap_or(0);
                    self.pidx.push(index);
                }
                let Some(entry) = list.elems.get_mut(&eid) else {
                    return Err(self.missing(eid));
                };
                let emit = self.through_entry(entry, loc, *tag, rest2, fin, m)?;
                let after = entry.is_visible();
                self.sync_visible(list, *loc, eid, after);
                if emit && tracked {
                    let index = list.seq.index_of(eid).unwrap_or(0);
                    if let Some(entry) = list.elems.get(&eid) {
                        self.emit_entry(Parent::List, before, entry, *loc, Last::Index(index));
                    }
                }
                if tracked {
                    self.pidx.pop();
                }
                Ok(())
            }
            Some(_) => Err(DocError::MalformedCursor("list key is not an element id")),
            None => self.final_list(list, *loc, fin, m),
        }
    }

    fn missing(&self, eid: Id) -> DocError {
        DocError::MissingElement {
            op: self.actors.op_id(self.id),
            elem: self.actors.op_id(eid),
        }
    }

    fn make_complex(
        &mut self,
        list: &mut ListNode,
        loc: Loc<'_>,
        eid: Id,
        content: Content,
        visible: bool,
    ) {
        if let Content::Char(c) = content {
            list.elems.insert(eid, Entry::from_char(eid, c, visible));
            list.seq.set_content(eid, Content::Complex);
            let loc = self.at(loc);
            self.log(|| Undo::MadeComplex {
                loc,
                id: eid,
                before: content,
            });
        }
    }

    fn sync_visible(&mut self, list: &mut ListNode, loc: Loc<'_>, eid: Id, visible: bool) {
        if list.seq.set_visible(eid, visible) {
            let loc = self.at(loc);
            self.log(|| Undo::Visibility {
                loc,
                id: eid,
                before: !visible,
            });
        }
    }

    fn final_map(
        &mut self,
        map: &mut MapNode,
        loc: Loc<'_>,
        s: &str,
        m: &IMut<'_>,
    ) -> Result<(), DocError> {
        let existed = map.entries.contains_key(s);
        if !existed && self.delete {
            return Ok(());
        }
        if self.logging() {
            let before = map.entries.get(s).cloned();
            self.snapshot(loc, K::Str(s.to_owned()), before);
        }
        let entry = map.entries.entry(s.to_owned()).or_default();
        let before = entry.is_visible();
        self.clear_entry(entry);
        match m {
            IMut::Assign(v) => self.write_value(entry, v),
            IMut::Delete => {}
            IMut::Insert(_) => return Err(DocError::MalformedCursor("insert outside a list")),
        }
        if !self.suppress {
            let entry = &*entry;
            self.emit_entry(Parent::Map, before, entry, loc, Last::Key(s));
        }
        Ok(())
    }

    fn final_list(
        &mut self,
        list: &mut ListNode,
        loc: Loc<'_>,
        fin: &K,
        m: &IMut<'_>,
    ) -> Result<(), DocError> {
        match (fin, m) {
            (K::Head | K::Elem(_), IMut::Insert(v)) => {
                let prev = match fin {
                    // `check` (or, for the library's own ops, how they were made) established
                    // that `p` exists before anything changed.
                    K::Elem(p) => {
                        debug_assert!(list.seq.contains(*p));
                        Some(*p)
                    }
                    _ => None,
                };
                let id = self.id;
                let content = match v {
                    _ if self.anchor => Content::Complex,
                    Value::Str(s) => single_char(s).map_or(Content::Complex, Content::Char),
                    _ => Content::Complex,
                };
                if content == Content::Complex {
                    let mut e = Entry::default();
                    if !self.anchor {
                        self.write_value(&mut e, v);
                    }
                    list.elems.insert(id, e);
                }
                let actors = self.actors;
                let visible = !self.anchor;
                let index = list.seq.insert(prev, id, content, visible, |a, b| {
                    actors.cmp(a, b) == std::cmp::Ordering::Greater
                });
                let at = self.at(loc);
                self.log(|| Undo::ElemInserted { loc: at, id });
                if !self.suppress {
                    let value = match content {
                        Content::Char(c) => serde_json::Value::String(c.to_string()),
                        Content::Complex => list
                            .elems
                            .get(&id)
                            .and_then(|e| render_entry(e, self.actors))
                            .unwrap_or(serde_json::Value::Null),
                    };
                    self.emit(loc, Last::Index(index), PatchAction::Insert { value });
                }
                Ok(())
            }
            (K::Elem(eid), IMut::Delete) => {
                let eid = *eid;
                let Some((content, before)) = list.seq.get(eid) else {
                    return Err(self.missing(eid));
                };
                match content {
                    Content::Char(_) => {
                        // The register is {eid ↦ c} and the presence {eid}: both go iff eid
                        // is in the causal past (it always is for a valid op).
                        if before && (self.in_past)(eid) {
                            if let Some(index) = list.seq.hide(eid) {
                                let at = self.at(loc);
                                self.log(|| Undo::Visibility {
                                    loc: at,
                                    id: eid,
                                    before: true,
                                });
                                self.emit(loc, Last::Index(index), PatchAction::Delete);
                            }
                        }
                        Ok(())
                    }
                    Content::Complex => self.final_elem(list, loc, eid, before, m),
                }
            }
            (K::Elem(eid), IMut::Assign(_)) => {
                let eid = *eid;
                let Some((content, before)) = list.seq.get(eid) else {
                    return Err(self.missing(eid));
                };
                self.make_complex(list, loc, eid, content, before);
                self.final_elem(list, loc, eid, before, m)
            }
            _ => Err(DocError::MalformedCursor("list key is not an element id")),
        }
    }

    /// Assign or delete at a complex list element.
    fn final_elem(
        &mut self,
        list: &mut ListNode,
        loc: Loc<'_>,
        eid: Id,
        before: bool,
        m: &IMut<'_>,
    ) -> Result<(), DocError> {
        let index = if self.suppress {
            0
        } else {
            list.seq.index_of(eid).unwrap_or(0)
        };
        let logging = self.logging();
        let Some(entry) = list.elems.get_mut(&eid) else {
            return Err(self.missing(eid));
        };
        if logging {
            let snap = entry.clone();
            self.snapshot(loc, K::Elem(eid), Some(snap));
        }
        self.clear_entry(entry);
        if let IMut::Assign(v) = m {
            self.write_value(entry, v);
        }
        let after = entry.is_visible();
        self.sync_visible(list, loc, eid, after);
        if !self.suppress {
            if let Some(entry) = list.elems.get(&eid) {
                self.emit_entry(Parent::List, before, entry, loc, Last::Index(index));
            }
        }
        Ok(())
    }

    /// ASSIGN / EMPTY-MAP / EMPTY-LIST after the clear: record the op in the right namespace.
    fn write_value(&mut self, entry: &mut Entry, v: &Value) {
        match v {
            Value::EmptyMap => {
                entry.map_pres.add(self.id);
                if entry.map.is_none() {
                    entry.map = Some(Box::default());
                }
            }
            Value::EmptyList => {
                entry.list_pres.add(self.id);
                if entry.list.is_none() {
                    entry.list = Some(Box::default());
                }
            }
            prim => entry.reg.push((self.id, prim.clone())),
        }
    }

    /// CLEAR-ELEM: remove every id in the op's causal past from `entry` and its subtree.
    fn clear_entry(&mut self, entry: &mut Entry) {
        clear_entry(entry, self.in_past);
    }
}

/// CLEAR-ELEM over an entry (see the module docs for why empty removals stop the recursion).
pub(crate) fn clear_entry(entry: &mut Entry, in_past: &mut dyn FnMut(Id) -> bool) {
    entry.reg.retain(|(id, _)| !in_past(*id));
    let removed = entry.map_pres.remove_past(in_past);
    if !removed.is_empty() {
        if let Some(map) = entry.map.as_deref_mut() {
            for e in map.entries.values_mut() {
                clear_entry(e, in_past);
            }
        }
    }
    let removed = entry.list_pres.remove_past(in_past);
    if !removed.is_empty() {
        if let Some(list) = entry.list.as_deref_mut() {
            clear_list(list, in_past);
        }
    }
}

/// CLEAR-LIST: clear every element, tombstones included.
fn clear_list(list: &mut ListNode, in_past: &mut dyn FnMut(Id) -> bool) {
    let elems: Vec<(Id, Content, bool)> = list.seq.iter().collect();
    for (id, content, visible) in elems {
        match content {
            Content::Char(_) => {
                if visible && in_past(id) {
                    list.seq.set_visible(id, false);
                }
            }
            Content::Complex => {
                if let Some(e) = list.elems.get_mut(&id) {
                    clear_entry(e, in_past);
                    let v = e.is_visible();
                    list.seq.set_visible(id, v);
                }
            }
        }
    }
}

/// The one character of `s`, if it has exactly one.
pub(crate) fn single_char(s: &str) -> Option<char> {
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// Reverts the logged steps, newest first.
pub(crate) fn rollback(root: &mut Entry, log: &mut UndoLog) {
    let paths = &log.paths[..];
    for u in log.steps.drain(..).rev() {
        match u {
            Undo::Snapshot(snap) => {
                let Snapshot { loc, key, before } = *snap;
                match (container_mut(root, loc.keys(paths)), key) {
                    (Some(Container::Top(e)), K::Doc) => *e = before.unwrap_or_default(),
                    (Some(Container::Map(m)), K::Str(s)) => match before {
                        Some(b) => {
                            m.entries.insert(s, b);
                        }
                        None => {
                            m.entries.remove(&s);
                        }
                    },
                    (Some(Container::List(l)), K::Elem(id)) => {
                        if let Some(b) = before {
                            l.elems.insert(id, b);
                        }
                    }
                    _ => {}
                }
            }
            Undo::PresAdded { entry, id } => {
                if let Some((parent, tag, key)) = entry.split_last(paths) {
                    if let Some(e) = entry_mut(root, parent, key) {
                        e.pres_mut(tag).remove(id);
                    }
                }
            }
            Undo::ChildCreated { entry } => {
                if let Some((parent, tag, key)) = entry.split_last(paths) {
                    if let Some(e) = entry_mut(root, parent, key) {
                        match tag {
                            Tag::Map => e.map = None,
                            Tag::List => e.list = None,
                        }
                    }
                }
            }
            Undo::EntryCreated { entry } => {
                if let Some((parent, _, K::Str(key))) = entry.split_last(paths) {
                    if let Some(Container::Map(m)) = container_mut(root, parent) {
                        m.entries.remove(key);
                    }
                }
            }
            Undo::ElemInserted { loc, id } => {
                if let Some(Container::List(l)) = container_mut(root, loc.keys(paths)) {
                    l.seq.remove(id);
                    l.elems.remove(&id);
                }
            }
            Undo::Visibility { loc, id, before } => {
                if let Some(Container::List(l)) = container_mut(root, loc.keys(paths)) {
                    l.seq.set_visible(id, before);
                }
            }
            Undo::MadeComplex { loc, id, before } => {
                if let Some(Container::List(l)) = container_mut(root, loc.keys(paths)) {
                    l.elems.remove(&id);
                    l.seq.set_content(id, before);
                }
            }
        }
    }
}

enum Container<'a> {
    Top(&'a mut Entry),
    Map(&'a mut MapNode),
    List(&'a mut ListNode),
}

fn container_mut<'a>(root: &'a mut Entry, loc: &[(Tag, K)]) -> Option<Container<'a>> {
    let mut c = Container::Top(root);
    for (tag, key) in loc {
        let e = entry_in(c, key)?;
        c = match tag {
            Tag::Map => Container::Map(e.map.as_deref_mut()?),
            Tag::List => Container::List(e.list.as_deref_mut()?),
        };
    }
    Some(c)
}

fn entry_in<'a>(c: Container<'a>, key: &K) -> Option<&'a mut Entry> {
    match (c, key) {
        (Container::Top(e), K::Doc) => Some(e),
        (Container::Map(m), K::Str(s)) => m.entries.get_mut(s),
        (Container::List(l), K::Elem(id)) => l.elems.get_mut(id),
        _ => None,
    }
}

fn entry_mut<'a>(root: &'a mut Entry, loc: &[(Tag, K)], key: &K) -> Option<&'a mut Entry> {
    entry_in(container_mut(root, loc)?, key)
}

/// Checks, without changing anything, that every element id the cursor names exists where it
/// says and is in the op's causal past. Missing maps and lists are fine (rule CHILD-GET creates
/// them), but then nothing below them can name an element.
pub(crate) fn check(
    root: &Entry,
    cur: &ICursor<'_>,
    op: Id,
    in_past: &mut dyn FnMut(Id) -> bool,
    actors: &ActorTable,
) -> Result<(), DocError> {
    let bad = |elem: Id, exists: bool| {
        let (op, elem) = (actors.op_id(op), actors.op_id(elem));
        if exists {
            DocError::ElementNotInPast { op, elem }
        } else {
            DocError::MissingElement { op, elem }
        }
    };
    enum At<'e> {
        Entry(&'e Entry),
        Missing,
    }
    let mut at = At::Entry(root);
    let keys = cur
        .path
        .iter()
        .map(|(t, k)| (Some(*t), k))
        .chain(std::iter::once((None, &cur.key)));
    let mut prev_tag: Option<Tag> = None;
    for (i, (tag, key)) in keys.enumerate() {
        // `at` is the entry whose `prev_tag` child holds `key` (for i > 0).
        if i > 0 {
            let parent = match at {
                At::Entry(e) => Some(e),
                At::Missing => None,
            };
            at = match (prev_tag, key) {
                (Some(Tag::Map), K::Str(s)) => parent
                    .and_then(|e| e.map.as_deref())
                    .and_then(|m| m.entries.get(s))
                    .map_or(At::Missing, At::Entry),
                (Some(Tag::List), K::Elem(id)) => {
                    let list = parent.and_then(|e| e.list.as_deref());
                    let Some(list) = list.filter(|l| l.seq.contains(*id)) else {
                        return Err(bad(*id, false));
                    };
                    if !in_past(*id) {
                        return Err(bad(*id, true));
                    }
                    list.elems.get(id).map_or(At::Missing, At::Entry)
                }
                (Some(Tag::List), K::Head) => At::Missing,
                _ => return Err(DocError::MalformedCursor("key does not match its tag")),
            };
        }
        prev_tag = tag;
    }
    Ok(())
}
