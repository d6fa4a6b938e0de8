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

use std::rc::Rc;

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

/// A cursor with interned element ids.
#[derive(Clone, Debug)]
pub(crate) struct ICursor {
    pub path: Rc<[(Tag, K)]>,
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

/// A place on the path of the op being applied: the first `depth` tagged keys of it. Sharing
/// the op's path makes undo records allocation-free.
#[derive(Clone, Debug)]
pub(crate) struct Loc {
    path: Rc<[(Tag, K)]>,
    depth: usize,
}

impl Loc {
    fn keys(&self) -> &[(Tag, K)] {
        self.path.get(..self.depth).unwrap_or(&[])
    }

    /// The container holding the entry this location's last step passes through, and that
    /// step: `(container path, tag, key)`.
    fn split_last(&self) -> Option<Step<'_>> {
        let (last, parent) = self.keys().split_last()?;
        Some((parent, last.0, &last.1))
    }

    fn child(&self) -> Loc {
        Loc {
            path: self.path.clone(),
            depth: self.depth + 1,
        }
    }
}

/// One step to undo, recorded just before the state changes. Replayed newest first.
#[derive(Debug)]
pub(crate) enum Undo {
    /// An entry (map entry, root, or complex list element) before a final-key mutation;
    /// `None` if it did not exist.
    Snapshot {
        loc: Loc,
        key: K,
        before: Option<Entry>,
    },
    /// An id added to the presence set of the entry that `entry`'s last step passes through,
    /// in that step's namespace.
    PresAdded { entry: Loc, id: Id },
    /// The child container that `entry`'s last step descends into was created.
    ChildCreated { entry: Loc },
    /// The map entry that `entry`'s last step passes through was created.
    EntryCreated { entry: Loc },
    /// A list element inserted.
    ElemInserted { loc: Loc, id: Id },
    /// A list element's visibility changed from `before`.
    Visibility { loc: Loc, id: Id, before: bool },
    /// A simple element turned complex; `before` is its old content.
    MadeComplex { loc: Loc, id: Id, before: Content },
}

/// The kind of container holding an entry, for patch emission.
#[derive(Clone, Copy)]
enum Parent {
    Top,
    Map,
    List,
}

/// Applies one op. Holds everything the recursion needs.
pub(crate) struct Applier<'a> {
    pub actors: &'a ActorTable,
    pub id: Id,
    pub delete: bool,
    pub in_past: &'a mut dyn FnMut(Id) -> bool,
    pub undo: Option<&'a mut Vec<Undo>>,
    pub patches: Option<&'a mut Vec<Patch>>,
    ppath: Vec<PathSeg>,
    /// An ancestor will emit a patch covering this whole subtree.
    suppress: bool,
}

impl<'a> Applier<'a> {
    pub(crate) fn new(
        actors: &'a ActorTable,
        id: Id,
        in_past: &'a mut dyn FnMut(Id) -> bool,
        undo: Option<&'a mut Vec<Undo>>,
        patches: Option<&'a mut Vec<Patch>>,
    ) -> Self {
        let suppress = patches.is_none();
        Applier {
            actors,
            id,
            delete: false,
            in_past,
            undo,
            patches,
            ppath: Vec::new(),
            suppress,
        }
    }

    fn log(&mut self, u: impl FnOnce() -> Undo) {
        if let Some(undo) = self.undo.as_deref_mut() {
            undo.push(u());
        }
    }

    fn logging(&self) -> bool {
        self.undo.is_some()
    }

    fn emit(&mut self, path: Vec<PathSeg>, action: PatchAction) {
        if let Some(p) = self.patches.as_deref_mut() {
            p.push(Patch { path, action });
        }
    }

    /// Emits the patch for an entry whose visible value may have changed.
    fn emit_entry(
        &mut self,
        parent: Parent,
        before_visible: bool,
        entry: &Entry,
        list: Option<&ListNode>,
    ) {
        if self.suppress {
            return;
        }
        let after = entry.is_visible();
        let path = self.ppath.clone();
        let value = || render_entry(entry, self.actors).unwrap_or(serde_json::Value::Null);
        match parent {
            Parent::Top => {
                let value = render_entry(entry, self.actors)
                    .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
                let conflict = has_conflict(entry);
                self.emit(path, PatchAction::Put { value, conflict });
            }
            Parent::Map | Parent::List => {
                let _ = list;
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
                    self.emit(path, action);
                } else if before_visible {
                    self.emit(path, PatchAction::Delete);
                }
            }
        }
    }

    /// Applies `cur`/`m` starting at the root entry.
    pub(crate) fn apply(
        &mut self,
        root: &mut Entry,
        cur: &ICursor,
        m: &IMut<'_>,
    ) -> Result<(), DocError> {
        self.delete = matches!(m, IMut::Delete);
        let mut loc = Loc {
            path: cur.path.clone(),
            depth: 0,
        };
        match cur.path.split_first() {
            None => {
                // Final key is `doc` itself: assign or delete at the root.
                let before = root.is_visible();
                if self.logging() {
                    let snap = root.clone();
                    let l = loc.clone();
                    self.log(|| Undo::Snapshot {
                        loc: l,
                        key: K::Doc,
                        before: Some(snap),
                    });
                }
                self.clear_entry(root);
                match m {
                    IMut::Assign(v) => self.write_value(root, v),
                    IMut::Delete => {}
                    IMut::Insert(_) => {
                        return Err(DocError::MalformedCursor("insert outside a list"))
                    }
                }
                self.emit_entry(Parent::Top, before, root, None);
                Ok(())
            }
            Some(((tag, K::Doc), rest)) => {
                let before = root.is_visible();
                let emit = self.through_entry(root, &mut loc, *tag, rest, &cur.key, m)?;
                if emit {
                    self.emit_entry(Parent::Top, before, root, None);
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
        loc: &mut Loc,
        tag: Tag,
        rest: &[(Tag, K)],
        fin: &K,
        m: &IMut<'_>,
    ) -> Result<bool, DocError> {
        let before = (!self.suppress).then(|| (entry.is_visible(), Ns::shown(entry, self.actors)));
        if !self.delete {
            entry.pres_mut(tag).add(self.id);
            let (id, l) = (self.id, loc.child());
            self.log(|| Undo::PresAdded { entry: l, id });
        }
        let changed =
            before.is_some_and(|b| b != (entry.is_visible(), Ns::shown(entry, self.actors)));
        let outer_suppress = self.suppress;
        // Inner patches are dropped when this entry gets a patch of its own, and when the
        // namespace we descend through is not the one rendered (type clash, paper Fig. 5).
        if changed || (!self.suppress && Ns::shown(entry, self.actors) != Some(Ns::from(tag))) {
            self.suppress = true;
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
                    let l = loc.clone();
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
                    let l = loc.clone();
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
        loc: &mut Loc,
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
                    let l = loc.child();
                    self.log(|| Undo::EntryCreated { entry: l });
                }
                let Some(entry) = map.entries.get_mut(s) else {
                    return Ok(());
                };
                if !self.suppress {
                    self.ppath.push(PathSeg::Key(s.clone()));
                }
                let before = entry.is_visible();
                let emit = self.through_entry(entry, loc, *tag, rest2, fin, m)?;
                if emit {
                    self.emit_entry(Parent::Map, before, entry, None);
                }
                if !self.suppress {
                    self.ppath.pop();
                }
                Ok(())
            }
            Some(_) => Err(DocError::MalformedCursor("map entry key is not a string")),
            None => match fin {
                K::Str(s) => self.final_map(map, loc, s, m),
                _ => Err(DocError::MalformedCursor("map entry key is not a string")),
            },
        }
    }

    fn in_list(
        &mut self,
        list: &mut ListNode,
        loc: &mut Loc,
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
                    self.make_complex(list, loc, eid, content, before);
                }
                if !self.suppress {
                    let index = list.seq.index_of(eid).unwrap_or(0);
                    self.ppath.push(PathSeg::Index(index));
                }
                let Some(entry) = list.elems.get_mut(&eid) else {
                    return Err(self.missing(eid));
                };
                let emit = self.through_entry(entry, loc, *tag, rest2, fin, m)?;
                let after = entry.is_visible();
                self.sync_visible(list, loc, eid, after);
                if emit {
                    if let Some(PathSeg::Index(i)) = self.ppath.last_mut() {
                        *i = list.seq.index_of(eid).unwrap_or(0);
                    }
                    if let Some(entry) = list.elems.get(&eid) {
                        self.emit_entry(Parent::List, before, entry, None);
                    }
                }
                if !self.suppress {
                    self.ppath.pop();
                }
                Ok(())
            }
            Some(_) => Err(DocError::MalformedCursor("list key is not an element id")),
            None => self.final_list(list, loc, fin, m),
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
        loc: &Loc,
        eid: Id,
        content: Content,
        visible: bool,
    ) {
        if let Content::Char(c) = content {
            list.elems.insert(eid, Entry::from_char(eid, c, visible));
            list.seq.set_content(eid, Content::Complex);
            self.log(|| Undo::MadeComplex {
                loc: loc.clone(),
                id: eid,
                before: content,
            });
        }
    }

    fn sync_visible(&mut self, list: &mut ListNode, loc: &Loc, eid: Id, visible: bool) {
        if list.seq.set_visible(eid, visible) {
            self.log(|| Undo::Visibility {
                loc: loc.clone(),
                id: eid,
                before: !visible,
            });
        }
    }

    fn final_map(
        &mut self,
        map: &mut MapNode,
        loc: &Loc,
        s: &str,
        m: &IMut<'_>,
    ) -> Result<(), DocError> {
        let existed = map.entries.contains_key(s);
        if !existed && self.delete {
            return Ok(());
        }
        if self.logging() {
            let before = map.entries.get(s).cloned();
            self.log(|| Undo::Snapshot {
                loc: loc.clone(),
                key: K::Str(s.to_owned()),
                before,
            });
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
            self.ppath.push(PathSeg::Key(s.to_owned()));
            self.emit_entry(Parent::Map, before, entry, None);
            self.ppath.pop();
        }
        Ok(())
    }

    fn final_list(
        &mut self,
        list: &mut ListNode,
        loc: &Loc,
        fin: &K,
        m: &IMut<'_>,
    ) -> Result<(), DocError> {
        match (fin, m) {
            (K::Head | K::Elem(_), IMut::Insert(v)) => {
                let prev = match fin {
                    K::Elem(p) => {
                        if !list.seq.contains(*p) {
                            return Err(self.missing(*p));
                        }
                        Some(*p)
                    }
                    _ => None,
                };
                let id = self.id;
                let content = match v {
                    Value::Str(s) => single_char(s).map_or(Content::Complex, Content::Char),
                    _ => Content::Complex,
                };
                if content == Content::Complex {
                    let mut e = Entry::default();
                    self.write_value(&mut e, v);
                    list.elems.insert(id, e);
                }
                let actors = self.actors;
                let index = list.seq.insert(prev, id, content, true, |a, b| {
                    actors.cmp(a, b) == std::cmp::Ordering::Greater
                });
                self.log(|| Undo::ElemInserted {
                    loc: loc.clone(),
                    id,
                });
                if !self.suppress {
                    let mut path = self.ppath.clone();
                    path.push(PathSeg::Index(index));
                    let value = match content {
                        Content::Char(c) => serde_json::Value::String(c.to_string()),
                        Content::Complex => list
                            .elems
                            .get(&id)
                            .and_then(|e| render_entry(e, self.actors))
                            .unwrap_or(serde_json::Value::Null),
                    };
                    self.emit(path, PatchAction::Insert { value });
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
                            let index = list.seq.index_of(eid).unwrap_or(0);
                            self.sync_visible(list, loc, eid, false);
                            if !self.suppress {
                                let mut path = self.ppath.clone();
                                path.push(PathSeg::Index(index));
                                self.emit(path, PatchAction::Delete);
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
        loc: &Loc,
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
            self.log(|| Undo::Snapshot {
                loc: loc.clone(),
                key: K::Elem(eid),
                before: Some(snap),
            });
        }
        self.clear_entry(entry);
        if let IMut::Assign(v) = m {
            self.write_value(entry, v);
        }
        let after = entry.is_visible();
        self.sync_visible(list, loc, eid, after);
        if !self.suppress {
            self.ppath.push(PathSeg::Index(index));
            if let Some(entry) = list.elems.get(&eid) {
                self.emit_entry(Parent::List, before, entry, Some(list));
            }
            self.ppath.pop();
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
pub(crate) fn rollback(root: &mut Entry, undo: Vec<Undo>) {
    for u in undo.into_iter().rev() {
        match u {
            Undo::Snapshot { loc, key, before } => match (container_mut(root, loc.keys()), key) {
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
            },
            Undo::PresAdded { entry, id } => {
                if let Some((parent, tag, key)) = entry.split_last() {
                    if let Some(e) = entry_mut(root, parent, key) {
                        e.pres_mut(tag).remove(id);
                    }
                }
            }
            Undo::ChildCreated { entry } => {
                if let Some((parent, tag, key)) = entry.split_last() {
                    if let Some(e) = entry_mut(root, parent, key) {
                        match tag {
                            Tag::Map => e.map = None,
                            Tag::List => e.list = None,
                        }
                    }
                }
            }
            Undo::EntryCreated { entry } => {
                if let Some((parent, _, K::Str(key))) = entry.split_last() {
                    if let Some(Container::Map(m)) = container_mut(root, parent) {
                        m.entries.remove(key);
                    }
                }
            }
            Undo::ElemInserted { loc, id } => {
                if let Some(Container::List(l)) = container_mut(root, loc.keys()) {
                    l.seq.remove(id);
                    l.elems.remove(&id);
                }
            }
            Undo::Visibility { loc, id, before } => {
                if let Some(Container::List(l)) = container_mut(root, loc.keys()) {
                    l.seq.set_visible(id, before);
                }
            }
            Undo::MadeComplex { loc, id, before } => {
                if let Some(Container::List(l)) = container_mut(root, loc.keys()) {
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
    cur: &ICursor,
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
