//! Skeletons: the structure of a node without its content (security-design.md §4.8, "op
//! skeleton").
//!
//! A replica that must know *that* a node exists, and where it sits in the graph, without
//! being allowed to read it holds the node's skeleton instead: its hash, author, sequence
//! number, Lamport counter, number of document ops and dependencies. The group layer gives
//! skeletons of pre-join content to a member who joins a group whose history policy is
//! `FutureOnly`: the newcomer verifies the signed membership history itself, and needs the
//! skeletons only so that nodes written later, which depend on nodes it may not read, can be
//! placed in its graph.
//!
//! A skeleton cannot be authenticated (the body that its hash covers is not there): a log
//! accepts one only from a caller that trusts its source ([`Log::insert_skeleton`]), checks
//! its structure like a node's (dependencies present, sequence, previous-node and Lamport
//! rules), and marks it *opaque*: it is never offered to peers in catch-up, never replayed,
//! and a document op naming one of its elements is the caller's business. If the node itself
//! arrives later, it is a duplicate.
//!
//! ```text
//! skeleton = hash [32] ‖ author [32] ‖ seq: varint ≥ 1 ‖ lamport: varint ≥ 1
//!            ‖ ops: varint ≤ 256 ‖ deps: varint n ≤ 32, n × [32] (sorted, unique)
//! ```
//!
//! [`Log::insert_skeleton`]: super::Log::insert_skeleton

use serde::Serialize;

use super::codec::{encodes_to, Reader};
use super::error::{DecodeError, GraphError};
use super::id::{DeviceId, NodeHash};
use super::limits::{MAX_DEPS, MAX_OPS_PER_NODE};
use super::wire::read_hashes;

/// Largest encoded skeleton: hash, author, two 10-byte varints, a 2-byte varint, the count
/// and [`MAX_DEPS`] hashes.
pub const MAX_SKELETON_SIZE: usize = 32 + 32 + 10 + 10 + 2 + 1 + 32 * MAX_DEPS;

/// The structure of one node, without its payload or signature. Unauthenticated: see the
/// module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Skeleton {
    /// The node's hash.
    pub hash: NodeHash,
    /// Its author.
    pub author: DeviceId,
    /// The author's sequence number.
    pub seq: u64,
    /// Lamport counter of its first op.
    pub lamport: u64,
    /// Number of document ops it carries.
    pub ops: u32,
    /// Its dependencies, sorted and unique.
    pub deps: Vec<NodeHash>,
}

impl Skeleton {
    /// A skeleton with these fields.
    pub fn new(
        hash: NodeHash,
        author: DeviceId,
        seq: u64,
        lamport: u64,
        ops: u32,
        deps: Vec<NodeHash>,
    ) -> Self {
        Skeleton {
            hash,
            author,
            seq,
            lamport,
            ops,
            deps,
        }
    }

    /// Lamport counter of the last op (`lamport − 1` for a node without document ops, as for
    /// [`NodeBody::lamport_end`](super::NodeBody::lamport_end)).
    pub fn lamport_end(&self) -> u64 {
        if self.ops == 0 {
            self.lamport.saturating_sub(1)
        } else {
            self.lamport.saturating_add(u64::from(self.ops) - 1)
        }
    }

    /// The skeleton's bytes.
    ///
    /// # Errors
    ///
    /// [`GraphError::Internal`] if serialization fails (it cannot).
    pub fn encode(&self) -> Result<Vec<u8>, GraphError> {
        postcard::to_allocvec(self)
            .map_err(|_| GraphError::Internal("skeleton serialization failed"))
    }

    /// Strictly decodes a skeleton.
    ///
    /// # Errors
    ///
    /// The [`DecodeError`] naming the first rule broken.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_SKELETON_SIZE {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_SKELETON_SIZE,
            });
        }
        let mut r = Reader::new(bytes);
        let hash = NodeHash::from_bytes(r.array32()?);
        let author = DeviceId::from_bytes(r.array32()?);
        let seq = r.u64()?;
        if seq == 0 {
            return Err(DecodeError::ZeroSequence);
        }
        let lamport = r.u64()?;
        if lamport == 0 {
            return Err(DecodeError::CounterOverflow);
        }
        let ops = r.u32()?;
        if ops as usize > MAX_OPS_PER_NODE {
            return Err(DecodeError::TooManyOps {
                count: u64::from(ops),
                max: MAX_OPS_PER_NODE,
            });
        }
        if ops > 0 && lamport.checked_add(u64::from(ops) - 1).is_none() {
            return Err(DecodeError::CounterOverflow);
        }
        let deps = read_hashes(
            &mut r,
            MAX_DEPS,
            |count| DecodeError::TooManyDeps {
                count,
                max: MAX_DEPS,
            },
            |prev, h| {
                if prev == h {
                    DecodeError::DuplicateDep { dep: h }
                } else {
                    DecodeError::DepsNotSorted
                }
            },
        )?;
        r.finish()?;
        let s = Skeleton {
            hash,
            author,
            seq,
            lamport,
            ops,
            deps,
        };
        if !encodes_to(&s, bytes) {
            return Err(DecodeError::NonCanonical);
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Skeleton {
        Skeleton::new(
            NodeHash::from_bytes([1; 32]),
            DeviceId::from_bytes([2; 32]),
            3,
            300,
            2,
            vec![NodeHash::from_bytes([4; 32]), NodeHash::from_bytes([5; 32])],
        )
    }

    #[test]
    fn skeleton_round_trips_and_is_strict() {
        let s = sample();
        let b = s.encode().unwrap();
        assert_eq!(Skeleton::decode(&b), Ok(s.clone()));
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            Skeleton::decode(&long),
            Err(DecodeError::TrailingBytes { extra: 1 })
        );
        let mut unsorted = s.clone();
        unsorted.deps.reverse();
        assert_eq!(
            Skeleton::decode(&unsorted.encode().unwrap()),
            Err(DecodeError::DepsNotSorted)
        );
        let mut zero = s;
        zero.seq = 0;
        assert_eq!(
            Skeleton::decode(&zero.encode().unwrap()),
            Err(DecodeError::ZeroSequence)
        );
    }

    #[test]
    fn lamport_end_matches_node_bodies() {
        let mut s = sample();
        assert_eq!(s.lamport_end(), 301);
        s.ops = 0;
        assert_eq!(s.lamport_end(), 299);
    }
}
