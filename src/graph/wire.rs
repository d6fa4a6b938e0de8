//! The wire format of a node: its body, its payload, and the signed frame around it.
//!
//! ```text
//! signed node = len(body) ‖ body ‖ signature[64]          (postcard: bytes, then [u8; 64])
//! body        = version: u8 (= 1)
//!               group:   [u8; 32]
//!               author:  [u8; 32]          Ed25519 verifying key
//!               seq:     varint            1, 2, 3, … per author
//!               lamport: varint            1 + greatest last counter among deps
//!               deps:    varint n ≤ 32, n × [u8; 32]     sorted ascending, unique
//!               payload: varint kind, then the kind's fields
//! ```
//!
//! | kind | payload | fields |
//! |------|---------|--------|
//! | 0 | [`Payload::Crdt`] | varint n ≤ 256, n × op |
//! | 1 | [`Payload::Group`] | varint len (1 ..= [`MAX_NODE_SIZE`]), len bytes, opaque here |
//!
//! The group field of the group's first node, its *genesis*, is all zeros
//! ([`GroupId::GENESIS`]): the group id is the hash of that node, which cannot name its own
//! hash. Every other node names the group id.
//!
//! The signature covers `"sealdoc/v1/op\0" ‖ body`, and the node's hash is
//! `BLAKE3("sealdoc/v1/op\0" ‖ body)`, both over the body bytes exactly as received.
//!
//! Payload kind 0 is [`Payload::Crdt`]: the operations of one local transaction, op `i` having
//! Lamport counter `lamport + i`. Operations are flat (paper §4.2.2): a cursor and a mutation
//! whose value is a primitive or an empty container, so nothing on the wire is recursive. A
//! list element is named by the node that inserted it and the op's index in that node
//! ([`ElemRef`]); the author, and so the document's element id `(lamport + index, author ‖
//! hash)`, follows from the node.
//!
//! Payload kind 1 is [`Payload::Group`]: a membership or key operation of the group layer
//! ([`crate::group`]), carried as opaque bytes that this layer signs, hashes and orders but
//! does not interpret; the group layer decodes them strictly itself. A group node carries no
//! document operation and takes no Lamport counter (like a merge node), so the document's
//! clock and the graph's stay equal. A reader that predates a kind rejects it with
//! [`DecodeError::UnknownVariant`].

use serde::Serialize;

use super::codec::{encodes_to, Array64, Bytes, Reader};
use super::error::{DecodeError, GraphError};
use super::id::{DeviceId, GroupId, NodeHash};
use super::limits::{
    MAX_DEPS, MAX_KEY_LEN, MAX_NODE_SIZE, MAX_OPS_PER_NODE, MAX_PATH_DEPTH, MAX_STRING_LEN,
};

/// Domain-separation label prefixed to a node body before it is hashed or signed, so that a
/// signature over a node can never be taken for a signature over anything else.
pub const NODE_LABEL: &[u8] = b"sealdoc/v1/op\0";

/// The body format version this code writes and reads.
pub const NODE_VERSION: u8 = 1;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The signed part of a node.
///
/// This is the low-level form: [`SignedDoc::change`](super::SignedDoc::change) builds bodies
/// for you, and [`Device::sign`](super::Device::sign) signs one built by hand (tests and
/// tools that need to craft unusual nodes use it). Nothing here is validated until a
/// [`Log`](super::Log) receives the signed node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
pub struct NodeBody {
    /// Format version; [`NODE_VERSION`].
    pub version: u8,
    /// The group the node belongs to.
    pub group: GroupId,
    /// The signing device.
    pub author: DeviceId,
    /// Per-author sequence number: 1 for the author's first node, then +1 each node.
    pub seq: u64,
    /// Lamport counter of the first op: 1 + the greatest last counter among `deps`.
    pub lamport: u64,
    /// Hashes of the heads the author had seen, sorted and unique, always including the
    /// author's previous node.
    pub deps: Vec<NodeHash>,
    /// What the node does.
    pub payload: Payload,
}

/// What a node carries. Versioned by its tag on the wire.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
#[non_exhaustive]
pub enum Payload {
    /// A batch of document operations: one local transaction. Empty only in a merge node,
    /// which exists to join more heads than one node may name.
    Crdt(Vec<WireOp>),
    /// A membership or key operation of the group layer, as opaque bytes (1 to
    /// [`MAX_NODE_SIZE`]). This layer only signs, hashes and orders it; the group layer
    /// decodes and validates it (see [`crate::group`]). It applies nothing to the document.
    /// (postcard writes a `Vec<u8>` as a varint length and the bytes.)
    Group(Vec<u8>),
}

impl Payload {
    /// The document operations, if this is a [`Payload::Crdt`].
    pub fn crdt_ops(&self) -> Option<&[WireOp]> {
        match self {
            Payload::Crdt(ops) => Some(ops),
            Payload::Group(_) => None,
        }
    }

    /// The document operations, mutably, if this is a [`Payload::Crdt`] (for tools and tests
    /// that craft nodes).
    pub fn crdt_ops_mut(&mut self) -> Option<&mut Vec<WireOp>> {
        match self {
            Payload::Crdt(ops) => Some(ops),
            Payload::Group(_) => None,
        }
    }

    /// The group layer's bytes, if this is a [`Payload::Group`].
    pub fn group_bytes(&self) -> Option<&[u8]> {
        match self {
            Payload::Group(b) => Some(b),
            Payload::Crdt(_) => None,
        }
    }
}

/// Number of payload kinds this version reads.
const PAYLOAD_KINDS: u32 = 2;

/// One document operation on the wire (the document layer's
/// [`OpBody`](crate::doc::OpBody) with element ids made relative to nodes).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
pub struct WireOp {
    /// Where the mutation applies.
    pub cursor: WireCursor,
    /// What it does.
    pub mutation: WireMutation,
}

/// A cursor on the wire (see [`Cursor`](crate::doc::Cursor)).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
pub struct WireCursor {
    /// Tagged branch keys from the root, at most [`MAX_PATH_DEPTH`].
    pub path: Vec<(WireTag, WireKey)>,
    /// The final key.
    pub key: WireKey,
}

/// A branch tag (see [`Tag`](crate::doc::Tag)). Its own type so that the wire format does not
/// follow the document layer's serde derives by accident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
#[non_exhaustive]
pub enum WireTag {
    /// `mapT(k)`.
    Map,
    /// `listT(k)`.
    List,
}

/// An untagged key on the wire (see [`Key`](crate::doc::Key)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
#[non_exhaustive]
pub enum WireKey {
    /// The document root.
    Doc,
    /// A map key, at most [`MAX_KEY_LEN`] bytes.
    Str(String),
    /// A list element.
    Elem(ElemRef),
    /// The head of a list.
    Head,
}

/// A list element, named by the node and op that inserted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
#[non_exhaustive]
pub enum ElemRef {
    /// Made by op `index` of this same node (which must come before the op naming it). The
    /// node's hash is unknown while it is being built, hence this marker.
    This {
        /// Index of the op within the node.
        index: u32,
    },
    /// Made by op `index` of node `node`.
    Node {
        /// The node that made the element.
        node: NodeHash,
        /// Index of the op within that node.
        index: u32,
    },
}

/// A mutation on the wire (see [`Mutation`](crate::doc::Mutation)).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
#[non_exhaustive]
pub enum WireMutation {
    /// `cursor := v`.
    Assign(WireValue),
    /// `cursor.insertAfter(v)`.
    Insert(WireValue),
    /// `cursor.delete`.
    Delete,
}

/// A flat value on the wire (see [`Value`](crate::doc::Value)).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
#[non_exhaustive]
pub enum WireValue {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A finite float.
    Float(f64),
    /// A string of at most [`MAX_STRING_LEN`] bytes.
    Str(String),
    /// `{}`.
    EmptyMap,
    /// `[]`.
    EmptyList,
}

impl NodeBody {
    /// Number of document operations in the payload (0 for a [`Payload::Group`]).
    pub fn op_count(&self) -> usize {
        match &self.payload {
            Payload::Crdt(ops) => ops.len(),
            Payload::Group(_) => 0,
        }
    }

    /// Lamport counter of the last op; for a node without document ops (a merge node or a
    /// group node) `lamport − 1`, so that the next node's counter is the same as if that node
    /// were not there. Saturates; a decoded body never overflows.
    pub fn lamport_end(&self) -> u64 {
        let n = self.op_count() as u64;
        if n == 0 {
            self.lamport.saturating_sub(1)
        } else {
            self.lamport.saturating_add(n - 1)
        }
    }

    /// The postcard encoding of this body. It is not validated: a body built by hand may
    /// break any rule, and receivers will reject it.
    ///
    /// # Errors
    ///
    /// [`GraphError::Internal`] if serialization fails (it cannot for these types).
    pub fn encode(&self) -> Result<Vec<u8>, GraphError> {
        postcard::to_allocvec(self).map_err(|_| GraphError::Internal("body serialization failed"))
    }

    /// Strictly decodes a body: every limit, order and canonical-form rule of the module docs,
    /// then re-encodes and compares.
    ///
    /// # Errors
    ///
    /// The [`DecodeError`] naming the first rule broken.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_NODE_SIZE {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_NODE_SIZE,
            });
        }
        let mut r = Reader::new(bytes);
        let body = read_body(&mut r)?;
        r.finish()?;
        // Defence in depth: the reader already refuses every alternative encoding it knows of.
        if !encodes_to(&body, bytes) {
            return Err(DecodeError::NonCanonical);
        }
        Ok(body)
    }
}

fn read_body(r: &mut Reader<'_>) -> Result<NodeBody, DecodeError> {
    let version = r.u8()?;
    if version != NODE_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: version,
            expected: NODE_VERSION,
        });
    }
    let group = GroupId::from_bytes(r.array32()?);
    let author = DeviceId::from_bytes(r.array32()?);
    let seq = r.u64()?;
    if seq == 0 {
        return Err(DecodeError::ZeroSequence);
    }
    let lamport = r.u64()?;
    let deps = read_hashes(
        r,
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
    let payload = match r.tag(PAYLOAD_KINDS, "payload")? {
        0 => {
            // The smallest op is three bytes (empty path, a key tag, `Delete`), which bounds
            // the count by the input.
            let n = r.count(MAX_OPS_PER_NODE, 3, |count| DecodeError::TooManyOps {
                count,
                max: MAX_OPS_PER_NODE,
            })?;
            let mut ops = Vec::with_capacity(n);
            for i in 0..n {
                // n <= MAX_OPS_PER_NODE, far below u32::MAX.
                ops.push(read_op(r, i as u32)?);
            }
            Payload::Crdt(ops)
        }
        _ => {
            let b = r.bytes(MAX_NODE_SIZE, |len| DecodeError::TooLarge {
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max: MAX_NODE_SIZE,
            })?;
            if b.is_empty() {
                return Err(DecodeError::Empty {
                    what: "group payload",
                });
            }
            Payload::Group(b.to_vec())
        }
    };
    let body = NodeBody {
        version,
        group,
        author,
        seq,
        lamport,
        deps,
        payload,
    };
    let n = body.op_count() as u64;
    if n == 0 && body.deps.len() < 2 && matches!(body.payload, Payload::Crdt(_)) {
        return Err(DecodeError::EmptyNode);
    }
    if n > 0 && body.lamport.checked_add(n - 1).is_none() {
        return Err(DecodeError::CounterOverflow);
    }
    Ok(body)
}

/// A sorted, unique list of at most `max` hashes. `unsorted(prev, next)` names the error for a
/// pair out of order.
pub(crate) fn read_hashes(
    r: &mut Reader<'_>,
    max: usize,
    over: impl FnOnce(u64) -> DecodeError,
    unsorted: impl Fn(NodeHash, NodeHash) -> DecodeError,
) -> Result<Vec<NodeHash>, DecodeError> {
    let n = r.count(max, 32, over)?;
    let mut out: Vec<NodeHash> = Vec::with_capacity(n);
    for _ in 0..n {
        let h = NodeHash::from_bytes(r.array32()?);
        if let Some(&prev) = out.last() {
            if prev >= h {
                return Err(unsorted(prev, h));
            }
        }
        out.push(h);
    }
    Ok(out)
}

fn read_op(r: &mut Reader<'_>, op: u32) -> Result<WireOp, DecodeError> {
    let depth = r.count(MAX_PATH_DEPTH, 2, |depth| DecodeError::PathTooDeep {
        depth,
        max: MAX_PATH_DEPTH,
    })?;
    let mut path = Vec::with_capacity(depth);
    for _ in 0..depth {
        let tag = match r.tag(2, "tag")? {
            0 => WireTag::Map,
            _ => WireTag::List,
        };
        path.push((tag, read_key(r, op)?));
    }
    let key = read_key(r, op)?;
    let mutation = match r.tag(3, "mutation")? {
        0 => WireMutation::Assign(read_value(r)?),
        1 => WireMutation::Insert(read_value(r)?),
        _ => WireMutation::Delete,
    };
    Ok(WireOp {
        cursor: WireCursor { path, key },
        mutation,
    })
}

fn read_key(r: &mut Reader<'_>, op: u32) -> Result<WireKey, DecodeError> {
    Ok(match r.tag(4, "key")? {
        0 => WireKey::Doc,
        1 => WireKey::Str(r.string(MAX_KEY_LEN, |len| DecodeError::KeyTooLong {
            len,
            max: MAX_KEY_LEN,
        })?),
        2 => WireKey::Elem(match r.tag(2, "element")? {
            0 => {
                let index = r.u32()?;
                if index >= op {
                    return Err(DecodeError::ForwardReference { op, index });
                }
                ElemRef::This { index }
            }
            _ => {
                let node = NodeHash::from_bytes(r.array32()?);
                ElemRef::Node {
                    node,
                    index: r.u32()?,
                }
            }
        }),
        _ => WireKey::Head,
    })
}

fn read_value(r: &mut Reader<'_>) -> Result<WireValue, DecodeError> {
    Ok(match r.tag(7, "value")? {
        0 => WireValue::Null,
        1 => WireValue::Bool(r.bool()?),
        2 => WireValue::Int(r.i64()?),
        3 => {
            let f = r.f64()?;
            if !f.is_finite() {
                return Err(DecodeError::NonFiniteFloat);
            }
            WireValue::Float(f)
        }
        4 => WireValue::Str(r.string(MAX_STRING_LEN, |len| DecodeError::StringTooLong {
            len,
            max: MAX_STRING_LEN,
        })?),
        5 => WireValue::EmptyMap,
        _ => WireValue::EmptyList,
    })
}

/// Frames body bytes and a signature into a signed node: `len(body) ‖ body ‖ signature`.
///
/// Low level: [`Device::sign`](super::Device::sign) does this for you. Exposed so that tools
/// and tests can frame bytes signed some other way.
///
/// # Errors
///
/// [`GraphError::Internal`] if serialization fails (it cannot).
pub fn frame(body: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<Vec<u8>, GraphError> {
    postcard::to_allocvec(&(Bytes(body), Array64(signature)))
        .map_err(|_| GraphError::Internal("frame serialization failed"))
}

/// Splits a signed node into its body bytes and signature, strictly.
pub(crate) fn unframe(bytes: &[u8]) -> Result<(&[u8], [u8; SIGNATURE_LEN], usize), DecodeError> {
    if bytes.len() > MAX_NODE_SIZE {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MAX_NODE_SIZE,
        });
    }
    let mut r = Reader::new(bytes);
    let body = r.bytes(MAX_NODE_SIZE, |len| DecodeError::TooLarge {
        len: usize::try_from(len).unwrap_or(usize::MAX),
        max: MAX_NODE_SIZE,
    })?;
    let start = r.pos() - body.len();
    let sig = r.array64()?;
    r.finish()?;
    Ok((body, sig, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_body() -> NodeBody {
        let h = |b: u8| NodeHash::from_bytes([b; 32]);
        let list = (WireTag::List, WireKey::Str("text".into()));
        NodeBody {
            version: NODE_VERSION,
            group: GroupId::from_bytes([7; 32]),
            author: DeviceId::from_bytes([9; 32]),
            seq: 3,
            lamport: 300,
            deps: vec![h(1), h(2)],
            payload: Payload::Crdt(vec![
                WireOp {
                    cursor: WireCursor {
                        path: vec![(WireTag::Map, WireKey::Doc), list.clone()],
                        key: WireKey::Elem(ElemRef::Node {
                            node: h(1),
                            index: 4,
                        }),
                    },
                    mutation: WireMutation::Insert(WireValue::Str("x".into())),
                },
                WireOp {
                    cursor: WireCursor {
                        path: vec![(WireTag::Map, WireKey::Doc), list],
                        key: WireKey::Elem(ElemRef::This { index: 0 }),
                    },
                    mutation: WireMutation::Delete,
                },
                WireOp {
                    cursor: WireCursor {
                        path: vec![(WireTag::Map, WireKey::Doc)],
                        key: WireKey::Str("n".into()),
                    },
                    mutation: WireMutation::Assign(WireValue::Float(-0.5)),
                },
                WireOp {
                    cursor: WireCursor {
                        path: vec![(WireTag::Map, WireKey::Doc)],
                        key: WireKey::Str("i".into()),
                    },
                    mutation: WireMutation::Assign(WireValue::Int(-7)),
                },
                WireOp {
                    cursor: WireCursor {
                        path: vec![(WireTag::Map, WireKey::Doc)],
                        key: WireKey::Str("b".into()),
                    },
                    mutation: WireMutation::Assign(WireValue::Bool(true)),
                },
                WireOp {
                    cursor: WireCursor {
                        path: vec![(WireTag::Map, WireKey::Doc)],
                        key: WireKey::Str("m".into()),
                    },
                    mutation: WireMutation::Assign(WireValue::EmptyMap),
                },
            ]),
        }
    }

    #[test]
    fn body_round_trips_and_agrees_with_postcard() {
        let body = sample_body();
        let bytes = body.encode().unwrap();
        assert_eq!(NodeBody::decode(&bytes), Ok(body.clone()));
        // The hand-written reader reads exactly what postcard's own deserializer reads.
        let (pc, rest): (NodeBody, &[u8]) = postcard::take_from_bytes(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(pc, body);
    }

    #[test]
    fn forward_reference_within_a_node_is_rejected() {
        let mut body = sample_body();
        let Payload::Crdt(ops) = &mut body.payload else {
            panic!("sample body carries document ops")
        };
        ops[1].cursor.key = WireKey::Elem(ElemRef::This { index: 1 });
        let bytes = body.encode().unwrap();
        assert_eq!(
            NodeBody::decode(&bytes),
            Err(DecodeError::ForwardReference { op: 1, index: 1 })
        );
    }

    #[test]
    fn body_rules_are_checked() {
        let mut b = sample_body();
        b.deps.reverse();
        assert_eq!(
            NodeBody::decode(&b.encode().unwrap()),
            Err(DecodeError::DepsNotSorted)
        );
        let mut b = sample_body();
        b.deps[1] = b.deps[0];
        assert!(matches!(
            NodeBody::decode(&b.encode().unwrap()),
            Err(DecodeError::DuplicateDep { .. })
        ));
        let mut b = sample_body();
        b.seq = 0;
        assert_eq!(
            NodeBody::decode(&b.encode().unwrap()),
            Err(DecodeError::ZeroSequence)
        );
        let mut b = sample_body();
        b.version = 2;
        assert!(matches!(
            NodeBody::decode(&b.encode().unwrap()),
            Err(DecodeError::UnsupportedVersion { found: 2, .. })
        ));
        let mut b = sample_body();
        b.payload = Payload::Crdt(Vec::new());
        b.deps.truncate(1);
        assert_eq!(
            NodeBody::decode(&b.encode().unwrap()),
            Err(DecodeError::EmptyNode)
        );
        let mut b = sample_body();
        b.lamport = u64::MAX - 2;
        assert_eq!(
            NodeBody::decode(&b.encode().unwrap()),
            Err(DecodeError::CounterOverflow)
        );
        let mut b = sample_body();
        let Some(ops) = b.payload.crdt_ops_mut() else {
            panic!("sample body carries document ops")
        };
        ops[2].mutation = WireMutation::Assign(WireValue::Float(f64::NAN));
        assert_eq!(
            NodeBody::decode(&b.encode().unwrap()),
            Err(DecodeError::NonFiniteFloat)
        );
        let mut b = sample_body();
        let Some(ops) = b.payload.crdt_ops_mut() else {
            panic!("sample body carries document ops")
        };
        ops[2].cursor.path = vec![(WireTag::Map, WireKey::Doc); MAX_PATH_DEPTH + 1];
        assert!(matches!(
            NodeBody::decode(&b.encode().unwrap()),
            Err(DecodeError::PathTooDeep { depth: 65, .. })
        ));
        let mut b = sample_body();
        let Some(ops) = b.payload.crdt_ops_mut() else {
            panic!("sample body carries document ops")
        };
        ops[2].cursor.key = WireKey::Str("k".repeat(MAX_KEY_LEN + 1));
        assert!(matches!(
            NodeBody::decode(&b.encode().unwrap()),
            Err(DecodeError::KeyTooLong { .. })
        ));
    }

    #[test]
    fn unknown_payload_kind_is_its_own_error() {
        let mut bytes = sample_body().encode().unwrap();
        // version, group, author, seq (1 byte), lamport (2 bytes), deps (1 + 64): then the tag.
        let at = 1 + 32 + 32 + 1 + 2 + 1 + 64;
        assert_eq!(bytes[at], 0);
        bytes[at] = 5;
        assert_eq!(
            NodeBody::decode(&bytes),
            Err(DecodeError::UnknownVariant {
                what: "payload",
                tag: 5
            })
        );
    }

    #[test]
    fn frame_round_trips() {
        let body = sample_body().encode().unwrap();
        let sig = [3u8; 64];
        let f = frame(&body, &sig).unwrap();
        let (b, s, start) = unframe(&f).unwrap();
        assert_eq!((b, s), (&body[..], sig));
        assert_eq!(&f[start..start + body.len()], &body[..]);
        assert!(matches!(
            unframe(&f[..f.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut long = f.clone();
        long.push(0);
        assert_eq!(unframe(&long), Err(DecodeError::TrailingBytes { extra: 1 }));
    }
}
