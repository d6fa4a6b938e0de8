//! Reading the document: JSON rendering, conflicts, keys, values, and path resolution.
//!
//! ## Rendering rule (the paper defines none; §3.9 item 2)
//!
//! * A key or list element is shown iff its presence set is non-empty (paper §1).
//! * Each of its three namespaces (map, list, register) is *live* if its part of the presence
//!   set is non-empty. One live namespace is shown as it is. When several are live (a type
//!   clash, Fig. 5), the one written by the greatest op id is shown.
//! * A multi-value register with several values (Fig. 1) shows the value with the greatest op
//!   id.
//! * [`Doc::conflicts`] lists everything a key holds, greatest id first, so nothing concurrent
//!   is hidden from an application that asks.
//! * A list whose elements are all one-character strings (text) renders as an array of
//!   one-character strings; [`Doc::text`] reads it as a `String`.
//! * A root that holds nothing renders as `{}`.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde::de::DeserializeOwned;

use super::error::DocError;
use super::id::{ActorTable, Id, OpId};
use super::node::{Entry, ListNode, MapNode};
use super::op::{Cursor, Key, Tag};
use super::patch::PathSeg;
use super::path::Path;
use super::seq::Content;
use super::value::Value;
use super::Doc;

/// One of the three namespaces of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ns {
    Map,
    List,
    Reg,
}

impl From<Tag> for Ns {
    fn from(t: Tag) -> Self {
        match t {
            Tag::Map => Ns::Map,
            Tag::List => Ns::List,
        }
    }
}

impl Ns {
    /// The namespace the renderer shows for `entry`, if any is live.
    pub(crate) fn shown(entry: &Entry, actors: &ActorTable) -> Option<Ns> {
        match entry.live_count() {
            0 => None,
            1 => Some(if !entry.map_pres.is_empty() {
                Ns::Map
            } else if !entry.list_pres.is_empty() {
                Ns::List
            } else {
                Ns::Reg
            }),
            _ => {
                let cmp = |a: Id, b: Id| actors.cmp(a, b);
                let mut best: Option<(Id, Ns)> = None;
                let cands = [
                    (entry.map_pres.max_by(cmp), Ns::Map),
                    (entry.list_pres.max_by(cmp), Ns::List),
                    (reg_winner(entry, actors).map(|(id, _)| id), Ns::Reg),
                ];
                for (id, ns) in cands {
                    if let Some(id) = id {
                        if best.is_none_or(|(b, _)| cmp(id, b) == Ordering::Greater) {
                            best = Some((id, ns));
                        }
                    }
                }
                best.map(|(_, ns)| ns)
            }
        }
    }
}

/// The register value with the greatest id.
fn reg_winner<'e>(entry: &'e Entry, actors: &ActorTable) -> Option<(Id, &'e Value)> {
    entry
        .reg
        .iter()
        .max_by(|a, b| actors.cmp(a.0, b.0))
        .map(|(id, v)| (*id, v))
}

/// True if the entry holds more than one concurrent value.
pub(crate) fn has_conflict(entry: &Entry) -> bool {
    entry.reg.len() > 1 || entry.live_count() > 1
}

/// Renders a visible entry; `None` if it is not visible.
pub(crate) fn render_entry(entry: &Entry, actors: &ActorTable) -> Option<serde_json::Value> {
    match Ns::shown(entry, actors)? {
        Ns::Map => Some(render_map(entry.map.as_deref(), actors)),
        Ns::List => Some(render_list(entry.list.as_deref(), actors)),
        Ns::Reg => reg_winner(entry, actors).map(|(_, v)| v.to_json()),
    }
}

fn render_map(map: Option<&MapNode>, actors: &ActorTable) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    if let Some(map) = map {
        for (k, e) in &map.entries {
            if let Some(v) = render_entry(e, actors) {
                out.insert(k.clone(), v);
            }
        }
    }
    serde_json::Value::Object(out)
}

fn render_list(list: Option<&ListNode>, actors: &ActorTable) -> serde_json::Value {
    let mut out = Vec::new();
    if let Some(list) = list {
        for (id, content, visible) in list.seq.iter() {
            if !visible {
                continue;
            }
            match content {
                Content::Char(c) => out.push(serde_json::Value::String(c.to_string())),
                Content::Complex => {
                    if let Some(v) = list.elems.get(&id).and_then(|e| render_entry(e, actors)) {
                        out.push(v);
                    }
                }
            }
        }
    }
    serde_json::Value::Array(out)
}

/// What a path or cursor resolved to.
pub(crate) enum View<'a> {
    /// An entry (map key, complex element, or the root).
    Entry(&'a Entry),
    /// A simple character element.
    Char(Id, char, bool),
    /// Nothing there (yet).
    Missing,
}

impl<'a> View<'a> {
    fn entry(&self) -> Option<Cow<'a, Entry>> {
        match self {
            View::Entry(e) => Some(Cow::Borrowed(*e)),
            View::Char(id, c, vis) => Some(Cow::Owned(Entry::from_char(*id, *c, *vis))),
            View::Missing => None,
        }
    }

    fn visible(&self) -> bool {
        match self {
            View::Entry(e) => e.is_visible(),
            View::Char(_, _, vis) => *vis,
            View::Missing => false,
        }
    }
}

/// The result of resolving a [`Path`].
pub(crate) struct Resolved<'a> {
    pub cursor: Cursor,
    pub view: View<'a>,
}

fn pointer(segs: &[PathSeg]) -> String {
    Path(segs.to_vec()).to_string()
}

impl Doc {
    /// The whole document as JSON, following the rendering rule in the module docs.
    pub fn to_json(&self) -> serde_json::Value {
        render_entry(&self.root, &self.actors)
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()))
    }

    /// The value at `path` as JSON, or `None` if nothing visible is there.
    pub fn get(&self, path: impl Into<Path>) -> Option<serde_json::Value> {
        let path = path.into();
        let r = self.resolve(&path, false).ok()?;
        if path.0.is_empty() {
            return Some(self.to_json());
        }
        r.view.entry().and_then(|e| render_entry(&e, &self.actors))
    }

    /// The value at `path`, deserialized into `T` (typed getters via serde).
    ///
    /// # Errors
    ///
    /// [`DocError::NotFound`] if nothing is there; [`DocError::Deserialize`] if the JSON does
    /// not fit `T`.
    pub fn get_as<T: DeserializeOwned>(&self, path: impl Into<Path>) -> Result<T, DocError> {
        let path = path.into();
        let v = self.get(&path).ok_or_else(|| DocError::NotFound {
            path: path.to_string(),
        })?;
        serde_json::from_value(v).map_err(|e| DocError::Deserialize(e.to_string()))
    }

    /// The visible keys of the map at `path`, in key order (rule KEYS).
    ///
    /// # Errors
    ///
    /// [`DocError::NotFound`] or [`DocError::WrongType`] if `path` does not hold a map.
    pub fn keys(&self, path: impl Into<Path>) -> Result<Vec<String>, DocError> {
        let path = path.into();
        let r = self.resolve(&path, false)?;
        let map = match &r.view {
            View::Entry(e) => e.map.as_deref(),
            _ => None,
        };
        let map = map.ok_or_else(|| DocError::WrongType {
            expected: "map",
            path: path.to_string(),
        })?;
        Ok(visible_keys(map))
    }

    /// Number of visible elements of the list at `path`.
    ///
    /// # Errors
    ///
    /// [`DocError::NotFound`] or [`DocError::WrongType`] if `path` does not hold a list.
    pub fn len(&self, path: impl Into<Path>) -> Result<usize, DocError> {
        let path = path.into();
        Ok(self.list_at(&path)?.seq.len())
    }

    /// The list at `path` read as text: its visible string elements concatenated.
    ///
    /// # Errors
    ///
    /// [`DocError::WrongType`] if `path` does not hold a list, or an element is not a string.
    pub fn text(&self, path: impl Into<Path>) -> Result<String, DocError> {
        let path = path.into();
        let list = self.list_at(&path)?;
        let mut out = String::new();
        for (id, content, visible) in list.seq.iter() {
            if !visible {
                continue;
            }
            match content {
                Content::Char(c) => out.push(c),
                Content::Complex => match list
                    .elems
                    .get(&id)
                    .and_then(|e| render_entry(e, &self.actors))
                {
                    Some(serde_json::Value::String(s)) => out.push_str(&s),
                    _ => {
                        return Err(DocError::WrongType {
                            expected: "text",
                            path: path.to_string(),
                        });
                    }
                },
            }
        }
        Ok(out)
    }

    /// Everything the key or element at `path` holds concurrently, greatest op id first: every
    /// value of its multi-value register (paper Fig. 1) and every live container (Fig. 5),
    /// each with the id of the op that wrote it. The first one is what [`to_json`] shows.
    ///
    /// Empty if nothing visible is there.
    ///
    /// # Errors
    ///
    /// [`DocError::NotFound`], [`DocError::WrongType`] or [`DocError::IndexOutOfRange`] if the
    /// path's parents do not resolve.
    ///
    /// [`to_json`]: Doc::to_json
    pub fn conflicts(&self, path: impl Into<Path>) -> Result<Vec<Conflict>, DocError> {
        let path = path.into();
        let r = match self.resolve(&path, false) {
            Ok(r) => r,
            // The parents resolved but nothing visible is at the final key.
            Err(DocError::NotFound { path: p }) if p == path.to_string() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let Some(entry) = r.view.entry() else {
            return Ok(Vec::new());
        };
        let cmp = |a: Id, b: Id| self.actors.cmp(a, b);
        let mut out: Vec<(Id, serde_json::Value)> = Vec::new();
        for (id, v) in &entry.reg {
            out.push((*id, v.to_json()));
        }
        if let Some(id) = entry.map_pres.max_by(cmp) {
            out.push((id, render_map(entry.map.as_deref(), &self.actors)));
        }
        if let Some(id) = entry.list_pres.max_by(cmp) {
            out.push((id, render_list(entry.list.as_deref(), &self.actors)));
        }
        out.sort_by(|a, b| cmp(b.0, a.0));
        Ok(out
            .into_iter()
            .map(|(id, value)| Conflict {
                id: self.actors.op_id(id),
                value,
            })
            .collect())
    }

    /// The cursor for `path`: a network-portable handle that names list elements by identity,
    /// so it keeps pointing at the same element when others are inserted before it (Fig. 8).
    ///
    /// # Errors
    ///
    /// As for [`Doc::conflicts`].
    pub fn cursor(&self, path: impl Into<Path>) -> Result<Cursor, DocError> {
        Ok(self.resolve(&path.into(), true)?.cursor)
    }

    /// The paper's `cur.idx(i)`: the cursor of the `i`-th visible element (1-based) of the
    /// list at `cur`, or its head for `i = 0` (rules IDX1–5).
    ///
    /// # Errors
    ///
    /// [`DocError::WrongType`] if no list exists at `cur` (IDX2 needs it), and
    /// [`DocError::IndexOutOfRange`] if `i` exceeds the visible length (the paper's "stuck").
    pub fn idx(&self, cur: &Cursor, i: usize) -> Result<Cursor, DocError> {
        let view = self.view_at(cur)?;
        let list = match &view {
            View::Entry(e) => e.list.as_deref(),
            _ => None,
        };
        let list = list.ok_or_else(|| DocError::WrongType {
            expected: "list",
            path: format!("{cur:?}"),
        })?;
        let mut path = cur.path.clone();
        path.push((Tag::List, cur.key.clone()));
        if i == 0 {
            return Ok(Cursor {
                path,
                key: Key::Head,
            });
        }
        let id = list
            .seq
            .nth_visible(i - 1)
            .ok_or_else(|| DocError::IndexOutOfRange {
                index: i,
                len: list.seq.len(),
                path: format!("{cur:?}"),
            })?;
        Ok(Cursor {
            path,
            key: Key::Elem(self.actors.op_id(id)),
        })
    }

    /// The paper's `cur.keys`: visible keys of the map at `cur`.
    ///
    /// # Errors
    ///
    /// [`DocError::WrongType`] if no map exists at `cur`.
    pub fn keys_at(&self, cur: &Cursor) -> Result<Vec<String>, DocError> {
        let view = self.view_at(cur)?;
        match &view {
            View::Entry(e) => e.map.as_deref().map(visible_keys),
            _ => None,
        }
        .ok_or_else(|| DocError::WrongType {
            expected: "map",
            path: format!("{cur:?}"),
        })
    }

    /// The paper's `cur.values`: the set of values in the register at `cur`, greatest id
    /// first. Like the paper, it ignores presence: a cleared register gives an empty set.
    ///
    /// # Errors
    ///
    /// [`DocError::NotFound`] if a list element on the way does not exist.
    pub fn values_at(&self, cur: &Cursor) -> Result<Vec<Value>, DocError> {
        let view = self.view_at(cur)?;
        let Some(e) = view.entry() else {
            return Ok(Vec::new());
        };
        let mut reg: Vec<(Id, Value)> = e.reg.clone();
        reg.sort_by(|a, b| self.actors.cmp(b.0, a.0));
        Ok(reg.into_iter().map(|(_, v)| v).collect())
    }

    /// Resolves a path against the current state. `write` allows map keys that do not exist
    /// yet (they are created by the op, rule CHILD-GET) and returns the cursor to write at.
    pub(crate) fn resolve(&self, path: &Path, write: bool) -> Result<Resolved<'_>, DocError> {
        // One more than needed here: callers that want a list's children push its key.
        let mut cpath: Vec<(Tag, Key)> = Vec::with_capacity(path.0.len() + 1);
        let mut key = Key::Doc;
        let mut view = View::Entry(&self.root);
        for (n, seg) in path.0.iter().enumerate() {
            let here = || pointer(&path.0[..n]);
            let entry = match &view {
                View::Entry(e) if write || e.is_visible() || n == 0 => Some(*e),
                View::Missing if write => None,
                View::Char(..) => {
                    return Err(DocError::WrongType {
                        expected: "map or list",
                        path: here(),
                    });
                }
                _ => return Err(DocError::NotFound { path: here() }),
            };
            // A key segment that is all digits indexes a list when the entry shows a list.
            let seg = match seg {
                PathSeg::Key(s) => match entry {
                    Some(e) if e.list.is_some() && Ns::shown(e, &self.actors) == Some(Ns::List) => {
                        match s.parse::<usize>() {
                            Ok(i) => PathSeg::Index(i),
                            Err(_) => seg.clone(),
                        }
                    }
                    _ => seg.clone(),
                },
                PathSeg::Index(_) => seg.clone(),
            };
            match seg {
                PathSeg::Key(s) => {
                    if let Some(e) = entry {
                        let map_live = !e.map_pres.is_empty();
                        if !map_live && e.is_visible() {
                            // It shows a list or a value: a key cannot be looked up in it.
                            return Err(DocError::WrongType {
                                expected: "map",
                                path: here(),
                            });
                        }
                        if !map_live && !write {
                            // Nothing visible here (an empty document, a deleted map).
                            return Err(DocError::NotFound {
                                path: pointer(&path.0[..=n]),
                            });
                        }
                    }
                    cpath.push((Tag::Map, key));
                    view = entry
                        .and_then(|e| e.map.as_deref())
                        .and_then(|m| m.entries.get(&s))
                        .map_or(View::Missing, View::Entry);
                    key = Key::Str(s);
                }
                PathSeg::Index(i) => {
                    let list = entry.and_then(|e| e.list.as_deref()).ok_or_else(|| {
                        DocError::WrongType {
                            expected: "list",
                            path: here(),
                        }
                    })?;
                    let id = list
                        .seq
                        .nth_visible(i)
                        .ok_or_else(|| DocError::IndexOutOfRange {
                            index: i,
                            len: list.seq.len(),
                            path: here(),
                        })?;
                    cpath.push((Tag::List, key));
                    key = Key::Elem(self.actors.op_id(id));
                    view = elem_view(list, id);
                }
            }
        }
        if !write && !path.0.is_empty() && !view.visible() {
            return Err(DocError::NotFound {
                path: path.to_string(),
            });
        }
        Ok(Resolved {
            cursor: Cursor { path: cpath, key },
            view,
        })
    }

    /// The list at `path`.
    pub(crate) fn list_at(&self, path: &Path) -> Result<&ListNode, DocError> {
        let r = self.resolve(path, false)?;
        match r.view {
            View::Entry(e) => e.list.as_deref(),
            _ => None,
        }
        .ok_or_else(|| DocError::WrongType {
            expected: "list",
            path: path.to_string(),
        })
    }

    /// What a cursor names, following its tags exactly (no namespace guessing).
    pub(crate) fn view_at(&self, cur: &Cursor) -> Result<View<'_>, DocError> {
        let mut view = View::Entry(&self.root);
        let keys = cur
            .path
            .iter()
            .map(|(t, k)| (Some(*t), k))
            .chain(std::iter::once((None, &cur.key)));
        let mut prev: Option<Tag> = None;
        for (i, (tag, key)) in keys.enumerate() {
            if i > 0 {
                let e = match view {
                    View::Entry(e) => Some(e),
                    _ => None,
                };
                view = match (prev, key) {
                    (Some(Tag::Map), Key::Str(s)) => e
                        .and_then(|e| e.map.as_deref())
                        .and_then(|m| m.entries.get(s))
                        .map_or(View::Missing, View::Entry),
                    (Some(Tag::List), Key::Elem(op)) => {
                        let list = e.and_then(|e| e.list.as_deref());
                        match (list, self.actors.find(op)) {
                            (Some(l), Some(id)) if l.seq.contains(id) => elem_view(l, id),
                            _ => {
                                return Err(DocError::NotFound {
                                    path: format!("{cur:?}"),
                                })
                            }
                        }
                    }
                    (Some(Tag::List), Key::Head) => View::Missing,
                    _ => return Err(DocError::MalformedCursor("key does not match its tag")),
                };
            } else if *key != Key::Doc {
                return Err(DocError::MalformedCursor("must start at doc"));
            }
            prev = tag;
        }
        Ok(view)
    }
}

fn elem_view(list: &ListNode, id: Id) -> View<'_> {
    match list.seq.get(id) {
        Some((Content::Char(c), vis)) => View::Char(id, c, vis),
        Some((Content::Complex, _)) => list.elems.get(&id).map_or(View::Missing, View::Entry),
        None => View::Missing,
    }
}

fn visible_keys(map: &MapNode) -> Vec<String> {
    map.entries
        .iter()
        .filter(|(_, e)| e.is_visible())
        .map(|(k, _)| k.clone())
        .collect()
}

/// One concurrent value at a key (see [`Doc::conflicts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    /// The op that wrote it (for a container: the greatest op id in its presence).
    pub id: OpId,
    /// The value, rendered.
    pub value: serde_json::Value,
}
