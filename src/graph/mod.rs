//! The signed, hash-linked operation graph: authentic ops, causal order, catch-up.
//!
//! This layer sits between the document ([`crate::doc`]) and the group layer
//! ([`crate::group`]), which encrypts nodes and decides who may write them. It makes every
//! change authentic (signed by its author's device), orders changes causally without any
//! clock, and keeps replicas convergent even when a malicious member signs two different
//! changes with the same sequence number.
//!
//! # The graph
//!
//! Every change is a *node*: a body naming the group, the author (an Ed25519 key), the
//! author's sequence number, a Lamport counter, the hashes of the nodes the author had seen
//! (its dependencies), and a payload (one transaction's document ops, or a membership or key
//! op of the group layer, opaque here: [`Payload::Group`]). A node's identity is
//! the BLAKE3 hash of its body; the signature is over the same labelled bytes. Four nodes by
//! two devices, where `c` was made after seeing both `a2` and `b1`:
//!
//! ```text
//!     a1 ◄──── a2 ◄──┐
//!      ▲             c (by a)
//!      └──── b1 ◄────┘
//! ```
//!
//! | node | author | seq | deps       | ops | Lamport | last counter |
//! |------|--------|-----|------------|-----|---------|--------------|
//! | a1   | A      | 1   | —          | 2   | 1       | 2            |
//! | a2   | A      | 2   | a1         | 1   | 3       | 3            |
//! | b1   | B      | 1   | a1         | 4   | 3       | 6            |
//! | c    | A      | 3   | a2, b1     | 1   | 7       | 7            |
//!
//! Rules checked for every node, against its causal past only (never a clock):
//!
//! 1. The signature verifies with `verify_strict` under the author's key.
//! 2. Dependencies are sorted, unique, at most [`MAX_DEPS`], and all applied first (until
//!    then the node waits in the causal buffer).
//! 3. `seq` is one more than the author's greatest sequence number in the causal past, and
//!    the author's previous node (`seq − 1`) is a direct dependency.
//! 4. `lamport` is one more than the greatest last counter among the dependencies.
//! 5. The payload applies to the document (elements it names exist in its causal past).
//!
//! A node breaking 3–5 is *invalid*: its hash is remembered and it is never validated again,
//! and nodes depending on it are invalid too.
//!
//! # Operation ids
//!
//! Op `i` of node `N` gets the document id `(lamport(N) + i, author(N) ‖ hash(N))`. The
//! document orders ids by counter, then actor bytes, so concurrent inserts order by
//! (Lamport, author, node hash): the paper's order with the hash as the final tiebreak.
//! Because the hash is part of the id, ids stay unique, and totally ordered, even when an
//! author equivocates: two nodes with one `(author, seq)` are simply two nodes, both applied
//! everywhere, and reported as [`Equivocation`] evidence. Which elements a node's clears
//! remove is decided from the graph, exactly, even across forks (see `GraphPast`).
//!
//! # Genesis and skeletons
//!
//! A group's id is the hash of its first node, the *genesis*, which names the all-zero group
//! ([`GroupId::GENESIS`]) because it cannot name its own hash; a log accepts that field only on
//! the node whose hash is the log's group id. A [`Skeleton`] is a node's structure without its
//! content (hash, author, counters, dependencies): a log can hold it as an *opaque* node
//! ([`Log::insert_skeleton`]), for a member who may not read what was written before it joined
//! but must place later nodes that depend on it. The [`Apply`] implementation decides what
//! document ops naming elements of opaque nodes mean (the group layer skips them).
//!
//! # Receiving, buffering, catch-up
//!
//! [`Log::receive`] (or [`SignedDoc::receive`]) takes untrusted bytes: decode strictly
//! (every length checked before allocation, one encoding per value), skip duplicates, verify,
//! park the node if a dependency is missing (bounded per author and in total, oldest
//! evicted), otherwise validate and apply it, then apply parked nodes it unblocked, with
//! bounded work per call ([`Log::drain`] continues). [`Have`] and [`Want`] let a replica that
//! missed nodes catch up over the same transport.
//!
//! # Local changes
//!
//! [`SignedDoc::change`] runs a document transaction as a provisional actor, signs the ops
//! into a node whose element references to its own ops use a "this node" marker
//! ([`ElemRef::This`]), then renames the actor to `author ‖ hash`. The transaction must fit
//! one node ([`MAX_OPS_PER_NODE`], [`MAX_NODE_SIZE`]); the op count is checked before commit.
//! The encoded size can only be checked after commit, because the document does not expose
//! a transaction's ops earlier: a change that is too large is undone by rebuilding the
//! document from the graph, which is slow but exact.
//!
//! # Example
//!
//! ```
//! use sealdoc::graph::{Device, GroupId, SignedDoc};
//! use serde_json::json;
//!
//! let group = GroupId::from_bytes([1; 32]);
//! let mut a = SignedDoc::new(Device::from_seed(&[1; 32]), group);
//! let mut b = SignedDoc::new(Device::from_seed(&[2; 32]), group);
//!
//! let x = a.change(|tx| tx.set("list", json!(["milk"])))?;
//! for n in &x.nodes { let _ = b.receive(n)?; }
//!
//! // Concurrent edits, delivered in any order, converge.
//! let ya = a.change(|tx| tx.push("list", "eggs"))?;
//! let yb = b.change(|tx| tx.insert("list", 0, "tea"))?;
//! for n in &yb.nodes { let _ = a.receive(n)?; }
//! for n in &ya.nodes { let _ = b.receive(n)?; }
//! assert_eq!(a.doc().to_json(), b.doc().to_json());
//! assert_eq!(a.heads(), b.heads());
//! assert_eq!(a.doc().len("list")?, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod buffer;
pub(crate) mod codec;
mod dag;
mod device;
mod error;
mod id;
mod limits;
mod log;
mod node;
mod signed_doc;
mod skeleton;
mod sync;
pub mod wire;

pub use dag::GraphPast;
pub use device::Device;
pub use error::{DecodeError, GraphError};
pub use id::{DeviceId, GroupId, NodeHash};
pub use limits::{
    Limits, DEFAULT_DRAIN_PER_CALL, DEFAULT_PENDING_BYTES, DEFAULT_PENDING_NODES,
    DEFAULT_PENDING_PER_AUTHOR, MAX_ANSWER_BYTES, MAX_ANSWER_NODES, MAX_DEPS, MAX_HAVE_HEADS,
    MAX_KEY_LEN, MAX_NODE_SIZE, MAX_OPS_PER_NODE, MAX_PATH_DEPTH, MAX_REMEMBERED_INVALID,
    MAX_STRING_LEN, MAX_WANT,
};
pub use log::{Apply, Drained, Equivocation, Log, NodeInfo, Outcome, Ready};
pub use node::{SignedNode, VerifiedNode};
pub(crate) use signed_doc::{apply_crdt, apply_crdt_whiteout, Prepared};
pub use signed_doc::{LocalChange, Received, SignedDoc};
pub use skeleton::{Skeleton, MAX_SKELETON_SIZE};
pub use sync::{Have, SyncMessage, Want, MAX_SYNC_SIZE, SYNC_VERSION};
pub use wire::{ElemRef, NodeBody, Payload};
