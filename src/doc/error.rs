//! Errors of the document layer.
//!
//! Two kinds share this enum: a caller's mistake while editing (a bad path, an index past the
//! end: what the paper calls getting "stuck"), and a remote operation that cannot be applied
//! (malformed, or referring to something that cannot exist in its causal past). Either way the
//! document is left exactly as it was.

use thiserror::Error;

use super::id::OpId;

/// Why a document operation or read failed.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum DocError {
    /// An actor id was empty or longer than [`MAX_ACTOR_LEN`](super::MAX_ACTOR_LEN).
    #[error("actor id must be 1 to 64 bytes, got {len}")]
    InvalidActor {
        /// The rejected length.
        len: usize,
    },
    /// `rename_actor` named an actor the document does not know.
    #[error("unknown actor")]
    UnknownActor,
    /// `rename_actor` named a new actor that already has ops in the document.
    #[error("actor already has operations in this document")]
    ActorInUse,
    /// A value broke an invariant (non-finite float, over-long string, out-of-range number).
    #[error("invalid value: {0}")]
    InvalidValue(&'static str),
    /// A cursor broke a shape rule (see [`Cursor::validate`](super::Cursor::validate)).
    #[error("malformed cursor: {0}")]
    MalformedCursor(&'static str),
    /// A path segment named a key or index that does not exist (the paper's "stuck").
    #[error("no value at {path}")]
    NotFound {
        /// The path as far as it resolved, in JSON Pointer form.
        path: String,
    },
    /// A list index was past the end: `idx(i)` with `i` greater than the visible length.
    #[error("index {index} out of range for list of length {len} at {path}")]
    IndexOutOfRange {
        /// The requested index.
        index: usize,
        /// The list's visible length.
        len: usize,
        /// The list's path in JSON Pointer form.
        path: String,
    },
    /// A path or cursor expected one kind of container and found another.
    #[error("expected a {expected} at {path}")]
    WrongType {
        /// What the operation needed: "map", "list", "register" or "text".
        expected: &'static str,
        /// Where, in JSON Pointer form.
        path: String,
    },
    /// A JSON pointer did not parse.
    #[error("invalid path {0:?}: a JSON Pointer starts with '/' and escapes '~' as ~0, '/' as ~1")]
    InvalidPath(String),
    /// A remote op named a list element that this document does not have.
    #[error("op {op:?} refers to element {elem:?}, which does not exist")]
    MissingElement {
        /// The offending operation.
        op: OpId,
        /// The element it named.
        elem: OpId,
    },
    /// A remote op named an element that exists but is not in the op's causal past, so the
    /// author cannot have seen it: the op is forged or corrupt.
    #[error("op {op:?} refers to element {elem:?}, which is not in its causal past")]
    ElementNotInPast {
        /// The offending operation.
        op: OpId,
        /// The element it named.
        elem: OpId,
    },
    /// A remote op's counter is not greater than every counter in its causal past (Lamport
    /// rule), or overflowed.
    #[error("op counter {counter} must exceed every counter in its causal past ({max_dep})")]
    BadCounter {
        /// The op's counter.
        counter: u64,
        /// The greatest counter in its causal context.
        max_dep: u64,
    },
    /// A change's causal context names ops this document has not applied yet. Deliver those
    /// first (the graph layer buffers such changes).
    #[error("change depends on ops not yet applied")]
    MissingDependencies,
    /// A change reused op ids that were already applied with different content.
    #[error("change overlaps ops already applied from actor {0:?}")]
    Overlap(super::id::ActorId),
    /// A change carried no ops, or more than [`MAX_OPS_PER_CHANGE`](super::MAX_OPS_PER_CHANGE).
    #[error("change must hold 1 to MAX_OPS_PER_CHANGE ops, got {0}")]
    BadBatch(usize),
    /// A value did not deserialize into the requested type.
    #[error("value does not fit the requested type: {0}")]
    Deserialize(String),
    /// An op counter would exceed [`MAX_COUNTER`](super::MAX_COUNTER).
    #[error("op counter exceeds MAX_COUNTER")]
    CounterOverflow,
}
