//! Catch-up messages: `Have` (my heads) and `Want` (hashes I miss) (security-design.md §4.7,
//! repair protocol).
//!
//! These are payloads for the envelope layer, which encrypts them like everything else; they
//! are never plaintext on the wire. A replica that missed messages sends `Have`; the peer
//! answers with every node not in the causal past of those heads
//! ([`Log::answer_have`](super::Log::answer_have)). A replica with parked nodes sends `Want`
//! for their missing dependencies ([`Log::want`](super::Log::want)); the peer answers with
//! the nodes' bytes. Both work over the same dumb, lossy transport as everything else, and
//! both answers are idempotent, so a lost or repeated message costs only a round.
//!
//! ```text
//! sync message = version: u8 (= 1) ‖ kind: varint (0 = Have, 1 = Want)
//!                ‖ group: [u8; 32] ‖ varint n ‖ n × [u8; 32]   (sorted, unique)
//! ```

use serde::Serialize;

use super::codec::{encodes_to, Reader};
use super::error::{DecodeError, GraphError};
use super::id::{GroupId, NodeHash};
use super::limits::{MAX_HAVE_HEADS, MAX_WANT};
use super::wire::read_hashes;

/// Format version of sync messages.
pub const SYNC_VERSION: u8 = 1;

/// Largest encoded sync message: version, kind, group, count and [`MAX_WANT`] or
/// [`MAX_HAVE_HEADS`] hashes, whichever is more. Checked before decoding.
pub const MAX_SYNC_SIZE: usize = 1 + 1 + 32 + 3 + 32 * max(MAX_HAVE_HEADS, MAX_WANT);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// "These are my heads": everything in their causal past, I have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Have {
    /// The group.
    pub group: GroupId,
    /// Sorted, unique, at most [`MAX_HAVE_HEADS`].
    pub heads: Vec<NodeHash>,
}

/// "Send me these nodes."
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Want {
    /// The group.
    pub group: GroupId,
    /// Sorted, unique, at most [`MAX_WANT`].
    pub hashes: Vec<NodeHash>,
}

/// Either catch-up message, as decoded from bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncMessage {
    /// A [`Have`].
    Have(Have),
    /// A [`Want`].
    Want(Want),
}

/// Borrowed form with the same encoding as [`SyncMessage`].
#[derive(Serialize)]
enum SyncRef<'a> {
    Have(&'a Have),
    Want(&'a Want),
}

fn encode(msg: SyncRef<'_>) -> Result<Vec<u8>, GraphError> {
    postcard::to_allocvec(&(SYNC_VERSION, msg))
        .map_err(|_| GraphError::Internal("sync serialization failed"))
}

impl Have {
    /// The message's bytes.
    ///
    /// # Errors
    ///
    /// [`GraphError::Internal`] if serialization fails (it cannot).
    pub fn encode(&self) -> Result<Vec<u8>, GraphError> {
        encode(SyncRef::Have(self))
    }

    /// Decodes a `Have`.
    ///
    /// # Errors
    ///
    /// As for [`SyncMessage::decode`], and [`DecodeError::WrongMessageKind`] for a `Want`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        match SyncMessage::decode(bytes)? {
            SyncMessage::Have(h) => Ok(h),
            SyncMessage::Want(_) => Err(DecodeError::WrongMessageKind { expected: "have" }),
        }
    }
}

impl Want {
    /// The message's bytes.
    ///
    /// # Errors
    ///
    /// [`GraphError::Internal`] if serialization fails (it cannot).
    pub fn encode(&self) -> Result<Vec<u8>, GraphError> {
        encode(SyncRef::Want(self))
    }

    /// Decodes a `Want`.
    ///
    /// # Errors
    ///
    /// As for [`SyncMessage::decode`], and [`DecodeError::WrongMessageKind`] for a `Have`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        match SyncMessage::decode(bytes)? {
            SyncMessage::Want(w) => Ok(w),
            SyncMessage::Have(_) => Err(DecodeError::WrongMessageKind { expected: "want" }),
        }
    }
}

impl SyncMessage {
    /// The message's bytes.
    ///
    /// # Errors
    ///
    /// [`GraphError::Internal`] if serialization fails (it cannot).
    pub fn encode(&self) -> Result<Vec<u8>, GraphError> {
        match self {
            SyncMessage::Have(h) => h.encode(),
            SyncMessage::Want(w) => w.encode(),
        }
    }

    /// Strictly decodes a sync message.
    ///
    /// # Errors
    ///
    /// [`DecodeError::TooLarge`] above [`MAX_SYNC_SIZE`]; [`DecodeError::TooManyHashes`],
    /// [`DecodeError::HashesNotSorted`], and the framing errors of any strict decoder.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_SYNC_SIZE {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_SYNC_SIZE,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != SYNC_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                expected: SYNC_VERSION,
            });
        }
        let kind = r.tag(2, "sync message")?;
        let group = GroupId::from_bytes(r.array32()?);
        let max = if kind == 0 { MAX_HAVE_HEADS } else { MAX_WANT };
        let hashes = read_hashes(
            &mut r,
            max,
            |count| DecodeError::TooManyHashes { count, max },
            |_, _| DecodeError::HashesNotSorted,
        )?;
        r.finish()?;
        let msg = if kind == 0 {
            SyncMessage::Have(Have {
                group,
                heads: hashes,
            })
        } else {
            SyncMessage::Want(Want { group, hashes })
        };
        let canonical = match &msg {
            SyncMessage::Have(h) => encodes_to(&(SYNC_VERSION, SyncRef::Have(h)), bytes),
            SyncMessage::Want(w) => encodes_to(&(SYNC_VERSION, SyncRef::Want(w)), bytes),
        };
        if !canonical {
            return Err(DecodeError::NonCanonical);
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> NodeHash {
        NodeHash::from_bytes([b; 32])
    }

    #[test]
    fn round_trip() {
        let have = Have {
            group: GroupId::from_bytes([1; 32]),
            heads: vec![h(1), h(2)],
        };
        let want = Want {
            group: GroupId::from_bytes([1; 32]),
            hashes: vec![h(3)],
        };
        assert_eq!(Have::decode(&have.encode().unwrap()), Ok(have.clone()));
        assert_eq!(Want::decode(&want.encode().unwrap()), Ok(want.clone()));
        assert_eq!(
            Have::decode(&want.encode().unwrap()),
            Err(DecodeError::WrongMessageKind { expected: "have" })
        );
        assert_eq!(
            SyncMessage::decode(&have.encode().unwrap()),
            Ok(SyncMessage::Have(have))
        );
    }

    #[test]
    fn limits_and_order_are_enforced() {
        let unsorted = Have {
            group: GroupId::from_bytes([1; 32]),
            heads: vec![h(2), h(1)],
        };
        assert_eq!(
            Have::decode(&unsorted.encode().unwrap()),
            Err(DecodeError::HashesNotSorted)
        );
        let too_many = Want {
            group: GroupId::from_bytes([1; 32]),
            hashes: (0..=MAX_WANT as u32)
                .map(|i| {
                    let mut b = [0u8; 32];
                    b[..4].copy_from_slice(&i.to_be_bytes());
                    NodeHash::from_bytes(b)
                })
                .collect(),
        };
        assert!(matches!(
            Want::decode(&too_many.encode().unwrap()),
            Err(DecodeError::TooLarge { .. })
        ));
        // A count above the limit is refused before the bytes are even looked at.
        let mut b = vec![SYNC_VERSION, 0];
        b.extend_from_slice(&[1; 32]);
        b.extend_from_slice(&postcard::to_allocvec(&(MAX_HAVE_HEADS as u64 + 1)).unwrap());
        assert!(matches!(
            Have::decode(&b),
            Err(DecodeError::TooManyHashes { count: 257, .. })
        ));
        // A count that claims more hashes than the bytes hold.
        let mut b = vec![SYNC_VERSION, 1];
        b.extend_from_slice(&[1; 32]);
        b.extend_from_slice(&[5, 0xaa]);
        assert!(matches!(
            Want::decode(&b),
            Err(DecodeError::LengthOverrun { claimed: 5, .. })
        ));
        assert!(matches!(
            SyncMessage::decode(&[SYNC_VERSION, 2]),
            Err(DecodeError::UnknownVariant { .. })
        ));
    }
}
