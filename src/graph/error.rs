//! Errors of the graph layer.
//!
//! Three kinds of failure, kept apart because a caller treats them differently:
//!
//! * [`DecodeError`]: the bytes are not a well-formed node or sync message. Nothing is
//!   remembered: the bytes are not authenticated, so they say nothing about any real node.
//! * Authentication and context failures ([`GraphError::BadSignature`],
//!   [`GraphError::WrongGroup`]): also not remembered, because a body with a corrupted
//!   signature has the same hash as the genuine node.
//! * Invalid nodes: correctly signed, but breaking a rule of the graph or of the payload
//!   (including the group layer's rules, [`GraphError::Refused`]). Their hash is remembered
//!   and they are never validated again ([`GraphError::is_invalid_node`]).
//! * [`GraphError::NotApplied`]: a layer above declined a node for a reason outside the
//!   node (its delivery); not remembered.
//!
//! Every rejection leaves the log and the document as they were, apart from remembering the
//! hash of an invalid node.

use thiserror::Error;

use super::id::{DeviceId, GroupId, NodeHash};
use crate::doc::DocError;

/// Why bytes did not decode. Every check happens before the allocation it guards.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than the message kind allows.
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input ended in the middle of a field.
    #[error("input ended at byte {at} in the middle of a field")]
    Truncated {
        /// Offset where more bytes were needed.
        at: usize,
    },
    /// Bytes were left after a complete message.
    #[error("{extra} bytes after the end of the message")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A length prefix claims more bytes (or elements) than the rest of the input holds.
    #[error("length prefix claims {claimed} but only {available} bytes remain")]
    LengthOverrun {
        /// What the prefix claimed (elements or bytes).
        claimed: u64,
        /// Bytes left in the input.
        available: usize,
    },
    /// A varint used more bytes than its value needs (postcard accepts these; we do not,
    /// because one value must have one encoding).
    #[error("non-canonical varint at byte {at}")]
    OverlongVarint {
        /// Offset of the varint.
        at: usize,
    },
    /// A varint does not fit its type.
    #[error("varint overflows its type at byte {at}")]
    VarintOverflow {
        /// Offset of the varint.
        at: usize,
    },
    /// Decoding succeeded but re-encoding gave different bytes.
    #[error("non-canonical encoding")]
    NonCanonical,
    /// An unknown format version.
    #[error("unsupported version {found}, expected {expected}")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
        /// The version this code reads.
        expected: u8,
    },
    /// An enum tag this version does not know (for example a payload kind from a newer
    /// version).
    #[error("unknown {what} tag {tag}")]
    UnknownVariant {
        /// Which enum.
        what: &'static str,
        /// The tag found.
        tag: u32,
    },
    /// A boolean byte other than 0 or 1.
    #[error("invalid boolean at byte {at}")]
    InvalidBool {
        /// Offset.
        at: usize,
    },
    /// A string is not UTF-8.
    #[error("invalid UTF-8 at byte {at}")]
    InvalidUtf8 {
        /// Offset of the string.
        at: usize,
    },
    /// More dependencies than [`MAX_DEPS`](super::MAX_DEPS).
    #[error("{count} dependencies, at most {max} allowed")]
    TooManyDeps {
        /// Count claimed.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// Dependencies are not in ascending order.
    #[error("dependencies are not sorted")]
    DepsNotSorted,
    /// A dependency is listed twice.
    #[error("dependency {dep:?} is listed twice")]
    DuplicateDep {
        /// The repeated hash.
        dep: NodeHash,
    },
    /// More operations than [`MAX_OPS_PER_NODE`](super::MAX_OPS_PER_NODE).
    #[error("{count} operations, at most {max} allowed")]
    TooManyOps {
        /// Count claimed.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// A node without operations that does not merge anything (fewer than two dependencies).
    #[error("a node without operations must merge at least two dependencies")]
    EmptyNode,
    /// Sequence number 0 (they start at 1).
    #[error("sequence numbers start at 1")]
    ZeroSequence,
    /// The node's last Lamport counter overflows.
    #[error("Lamport counter overflows")]
    CounterOverflow,
    /// A cursor path deeper than [`MAX_PATH_DEPTH`](super::MAX_PATH_DEPTH).
    #[error("path of depth {depth}, at most {max} allowed")]
    PathTooDeep {
        /// Depth claimed.
        depth: u64,
        /// The limit.
        max: usize,
    },
    /// A map key longer than [`MAX_KEY_LEN`](super::MAX_KEY_LEN).
    #[error("map key of {len} bytes, at most {max} allowed")]
    KeyTooLong {
        /// Length claimed.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A string value longer than [`MAX_STRING_LEN`](super::MAX_STRING_LEN).
    #[error("string of {len} bytes, at most {max} allowed")]
    StringTooLong {
        /// Length claimed.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A NaN or infinite float.
    #[error("non-finite float")]
    NonFiniteFloat,
    /// An operation names an element made by itself or a later operation of the same node.
    #[error("op {op} names element {index} of its own node, which is not earlier")]
    ForwardReference {
        /// Index of the op.
        op: u32,
        /// Index it named.
        index: u32,
    },
    /// More heads than [`MAX_HAVE_HEADS`](super::MAX_HAVE_HEADS) or hashes than
    /// [`MAX_WANT`](super::MAX_WANT).
    #[error("{count} hashes, at most {max} allowed")]
    TooManyHashes {
        /// Count claimed.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// A hash list that must be sorted and unique is not.
    #[error("hash list is not sorted and unique")]
    HashesNotSorted,
    /// A sync message of another kind than the one asked for.
    #[error("expected a {expected} message")]
    WrongMessageKind {
        /// The kind asked for.
        expected: &'static str,
    },
    /// A field that must not be empty is (for example a group payload).
    #[error("empty {what}")]
    Empty {
        /// The field.
        what: &'static str,
    },
    /// A count above its limit, in a structure of a layer above that reuses this codec.
    #[error("{count} {what}, at most {max} allowed")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// Count claimed.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// A list that must be sorted and unique is not.
    #[error("{what} are not sorted and unique")]
    NotSorted {
        /// The list.
        what: &'static str,
    },
}

/// Why a node or sync message was rejected, or a local change failed.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum GraphError {
    /// The bytes are malformed (nothing remembered).
    #[error("malformed input: {0}")]
    Decode(#[from] DecodeError),
    /// The node or message belongs to another group (nothing remembered).
    #[error("belongs to group {found:?}, this log is group {expected:?}")]
    WrongGroup {
        /// This log's group.
        expected: GroupId,
        /// The group named.
        found: GroupId,
    },
    /// The signature does not verify under the author's key with `verify_strict`: forged,
    /// corrupted, signed by someone else or under another label (nothing remembered; one
    /// opaque variant, as for any authentication failure).
    #[error("signature verification failed")]
    BadSignature,
    /// This node was rejected before; it is not validated again.
    #[error("node {hash:?} was rejected before")]
    KnownInvalid {
        /// The node.
        hash: NodeHash,
    },
    /// Invalid: a dependency is a node that was rejected, so this node's causal past is
    /// invalid too.
    #[error("depends on rejected node {dep:?}")]
    DependsOnInvalid {
        /// The rejected dependency.
        dep: NodeHash,
    },
    /// Invalid: the author's sequence number skips ahead of its causal past.
    #[error("author {author:?} sequence {seq} skips: its causal past ends at {}", expected - 1)]
    SequenceSkipped {
        /// The author.
        author: DeviceId,
        /// Sequence number claimed.
        seq: u64,
        /// The number it should have had.
        expected: u64,
    },
    /// Invalid: the author's sequence number is not above every one of its own nodes in its
    /// causal past.
    #[error("author {author:?} sequence {seq} regresses: its causal past has {seen}")]
    SequenceRegressed {
        /// The author.
        author: DeviceId,
        /// Sequence number claimed.
        seq: u64,
        /// Greatest sequence number of the author in the node's causal past.
        seen: u64,
    },
    /// Invalid: the author's previous node (sequence − 1) is not among the dependencies.
    #[error("author {author:?} sequence {seq} does not name its previous node as a dependency")]
    PreviousNotInDeps {
        /// The author.
        author: DeviceId,
        /// Sequence number of the node.
        seq: u64,
    },
    /// Invalid: the Lamport counter is not 1 + the greatest counter of its dependencies.
    #[error("Lamport counter {lamport}, expected {expected}")]
    LamportMismatch {
        /// Counter claimed.
        lamport: u64,
        /// 1 + the greatest last counter among the dependencies.
        expected: u64,
    },
    /// Invalid: the payload names an element of a node this replica does not have.
    #[error("payload names an element of unknown node {node:?}")]
    UnknownNode {
        /// The node named.
        node: NodeHash,
    },
    /// Invalid: the payload names an op index past the end of the node it refers to.
    #[error("payload names op {index} of node {node:?}, which has fewer ops")]
    ElementOutOfRange {
        /// The node named.
        node: NodeHash,
        /// The index named.
        index: u32,
    },
    /// The document refused the operations: invalid when received (the payload is forged or
    /// corrupt), or a local edit that failed (the transaction was rolled back).
    #[error("document: {0}")]
    Doc(#[from] DocError),
    /// A local transaction made more ops than fit in one node; it was rolled back.
    #[error("transaction made {count} ops, at most {max} fit in one node")]
    TooManyOps {
        /// Ops made.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A local change encodes to more than [`MAX_NODE_SIZE`](super::MAX_NODE_SIZE) bytes;
    /// it was undone.
    #[error("change encodes to {len} bytes, at most {max} fit in one node")]
    NodeTooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Invalid: the state the log feeds (the group layer: membership, roles, keys) refused the
    /// payload. That layer reports the precise reason; this names it briefly. Remembered like
    /// every invalid node.
    #[error("refused by the group layer: {0}")]
    Refused(&'static str),
    /// Not applied, for a reason outside the node itself (how it was delivered, for example
    /// an envelope naming epochs the node cannot have been encrypted under). The node is not
    /// remembered as invalid and may be received again.
    #[error("not applied: {0}")]
    NotApplied(&'static str),
    /// A skeleton names a dependency that is not in the graph (skeletons are inserted in
    /// topological order, dependencies first).
    #[error("dependency {dep:?} is not in the graph")]
    MissingDependency {
        /// The missing dependency.
        dep: NodeHash,
    },
    /// This device's sequence number or the Lamport clock is exhausted.
    #[error("sequence number or Lamport counter exhausted")]
    CounterOverflow,
    /// A local change could not be turned into a node: a bug, reported rather than hidden.
    /// The change was undone.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl GraphError {
    /// True if this error means the node was correctly signed but invalid, so its hash is now
    /// remembered and the node will never be validated again.
    pub fn is_invalid_node(&self) -> bool {
        matches!(
            self,
            GraphError::KnownInvalid { .. }
                | GraphError::DependsOnInvalid { .. }
                | GraphError::SequenceSkipped { .. }
                | GraphError::SequenceRegressed { .. }
                | GraphError::PreviousNotInDeps { .. }
                | GraphError::LamportMismatch { .. }
                | GraphError::UnknownNode { .. }
                | GraphError::ElementOutOfRange { .. }
                | GraphError::Doc(_)
                | GraphError::Refused(_)
        )
    }
}
