//! Paths for everyday editing: a sequence of map keys and list indexes.
//!
//! The paper addresses values through cursors built with `get` and `idx`
//! ([`Cursor`](super::Cursor)); a [`Path`] is the friendlier form used by the path helpers
//! (`set`, `insert`, `push`, `delete`, `splice_text`) and the readers. It resolves against the
//! document at the moment it is used, so an index means "the i-th visible element now".

use std::fmt;

use super::error::DocError;
use super::patch::PathSeg;

/// A path from the root: map keys and list indexes.
///
/// Build one from an array of keys (`["items"]`), a JSON Pointer (`"/items/0/name"`, RFC 6901),
/// a `Vec<PathSeg>`, or the [`path!`](crate::path) macro for mixed keys and indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<PathSeg>);

impl Path {
    /// The root.
    pub fn root() -> Self {
        Path(Vec::new())
    }

    /// Parses a JSON Pointer (RFC 6901): `""` is the root, `"/a/0/b"` has three segments.
    /// Segments that are all digits become indexes when they meet a list, keys otherwise.
    ///
    /// # Errors
    ///
    /// [`DocError::InvalidPath`] if the pointer is non-empty and does not start with `/`, or
    /// has a `~` not followed by `0` or `1`.
    pub fn parse_pointer(s: &str) -> Result<Self, DocError> {
        if s.is_empty() {
            return Ok(Path::root());
        }
        let Some(rest) = s.strip_prefix('/') else {
            return Err(DocError::InvalidPath(s.to_owned()));
        };
        let mut segs = Vec::new();
        for raw in rest.split('/') {
            let mut out = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(DocError::InvalidPath(s.to_owned())),
                    }
                } else {
                    out.push(c);
                }
            }
            segs.push(PathSeg::Key(out));
        }
        Ok(Path(segs))
    }

    /// Appends a map key.
    #[must_use]
    pub fn key(mut self, k: impl Into<String>) -> Self {
        self.0.push(PathSeg::Key(k.into()));
        self
    }

    /// Appends a list index.
    #[must_use]
    pub fn index(mut self, i: usize) -> Self {
        self.0.push(PathSeg::Index(i));
        self
    }

    /// The segments.
    pub fn segments(&self) -> &[PathSeg] {
        &self.0
    }
}

impl fmt::Display for Path {
    /// JSON Pointer form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for seg in &self.0 {
            match seg {
                PathSeg::Key(k) => write!(f, "/{}", k.replace('~', "~0").replace('/', "~1"))?,
                PathSeg::Index(i) => write!(f, "/{i}")?,
            }
        }
        Ok(())
    }
}

impl<const N: usize> From<[&str; N]> for Path {
    fn from(keys: [&str; N]) -> Self {
        Path(keys.iter().map(|k| PathSeg::Key((*k).to_owned())).collect())
    }
}

impl From<&[&str]> for Path {
    fn from(keys: &[&str]) -> Self {
        Path(keys.iter().map(|k| PathSeg::Key((*k).to_owned())).collect())
    }
}

impl From<Vec<PathSeg>> for Path {
    fn from(segs: Vec<PathSeg>) -> Self {
        Path(segs)
    }
}

impl From<&Path> for Path {
    fn from(p: &Path) -> Self {
        p.clone()
    }
}

/// Parses as a JSON Pointer; a string that is not one (no leading `/`) is taken as a single
/// key, so `"title"` and `"/title"` both name the root key `title`.
impl From<&str> for Path {
    fn from(s: &str) -> Self {
        if !s.is_empty() && !s.starts_with('/') {
            // Not a pointer (the common `"title"`): skip the parser and its error.
            return Path(vec![PathSeg::Key(s.to_owned())]);
        }
        Path::parse_pointer(s).unwrap_or_else(|_| Path(vec![PathSeg::Key(s.to_owned())]))
    }
}

/// Segment conversion used by [`path!`](crate::path).
pub trait IntoPathSeg {
    /// The segment.
    fn into_path_seg(self) -> PathSeg;
}

impl IntoPathSeg for &str {
    fn into_path_seg(self) -> PathSeg {
        PathSeg::Key(self.to_owned())
    }
}

impl IntoPathSeg for String {
    fn into_path_seg(self) -> PathSeg {
        PathSeg::Key(self)
    }
}

impl IntoPathSeg for usize {
    fn into_path_seg(self) -> PathSeg {
        PathSeg::Index(self)
    }
}

/// Builds a [`Path`] from keys and indexes: `path!["items", 0, "name"]`.
///
/// ```
/// use sealdoc::{path, doc::{Path, PathSeg}};
/// let p: Path = path!["items", 0, "name"];
/// assert_eq!(p.segments()[1], PathSeg::Index(0));
/// ```
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => {
        $crate::doc::Path(vec![$($crate::doc::IntoPathSeg::into_path_seg($seg)),*])
    };
}

/// Integer literals default to `i32`, so `path!["a", 0]` needs this; a negative index never
/// resolves (it reports an out-of-range error when used).
impl IntoPathSeg for i32 {
    fn into_path_seg(self) -> PathSeg {
        PathSeg::Index(usize::try_from(self).unwrap_or(usize::MAX))
    }
}
