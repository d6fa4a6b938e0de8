//! Signed nodes: decoded but unverified, then verified.
//!
//! A [`SignedNode`] is what came off the wire: strictly decoded, hashed, not yet trusted.
//! [`SignedNode::verify`] checks the signature with `verify_strict` and is the only way to
//! make a [`VerifiedNode`], which carries a private proof token; the [`Log`](super::Log)
//! accepts nothing else into its graph or its causal buffer.

use std::collections::HashMap;
use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};

use super::error::{DecodeError, GraphError};
use super::id::{DeviceId, NodeHash};
use super::wire::{unframe, NodeBody, NODE_LABEL, SIGNATURE_LEN};

/// `BLAKE3(NODE_LABEL ‖ body)`: a node's identity.
pub(crate) fn hash_body(body: &[u8]) -> NodeHash {
    let mut h = blake3::Hasher::new();
    h.update(NODE_LABEL);
    h.update(body);
    NodeHash::from_bytes(*h.finalize().as_bytes())
}

/// A strictly decoded node whose signature has not been checked.
#[derive(Clone)]
pub struct SignedNode {
    /// The exact bytes received.
    bytes: Box<[u8]>,
    /// Where the body starts in `bytes`.
    body_start: usize,
    /// Length of the body.
    body_len: usize,
    sig: [u8; SIGNATURE_LEN],
    body: NodeBody,
    hash: NodeHash,
}

impl SignedNode {
    /// Decodes a signed node: frame, then body, each strictly (see [`wire`](super::wire)).
    /// The hash is computed over the body bytes as received.
    ///
    /// # Errors
    ///
    /// The [`DecodeError`] naming the first rule broken. Nothing is allocated beyond a bound
    /// proportional to `bytes.len()`, which is itself at most
    /// [`MAX_NODE_SIZE`](super::MAX_NODE_SIZE).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (body_bytes, sig, body_start) = unframe(bytes)?;
        let body = NodeBody::decode(body_bytes)?;
        Ok(SignedNode {
            hash: hash_body(body_bytes),
            body_len: body_bytes.len(),
            bytes: bytes.into(),
            body_start,
            sig,
            body,
        })
    }

    /// The node's identity.
    pub fn hash(&self) -> NodeHash {
        self.hash
    }

    /// The decoded body.
    pub fn body(&self) -> &NodeBody {
        &self.body
    }

    /// The body bytes exactly as received (what the hash and signature cover, after the label).
    pub fn body_bytes(&self) -> &[u8] {
        // In bounds: `unframe` returned this range of these bytes.
        self.bytes
            .get(self.body_start..self.body_start + self.body_len)
            .unwrap_or_default()
    }

    /// The signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.sig
    }

    /// The whole signed node, exactly as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Checks the signature over `NODE_LABEL ‖ body bytes` against the author's key with
    /// `verify_strict` (which refuses malleable signatures and weak keys, so one body has one
    /// accepted signature per key).
    ///
    /// # Errors
    ///
    /// [`GraphError::BadSignature`] if the author's key is not a valid point or the signature
    /// does not verify.
    pub fn verify(self) -> Result<VerifiedNode, GraphError> {
        let key = VerifyingKey::from_bytes(self.body.author.as_bytes())
            .map_err(|_| GraphError::BadSignature)?;
        self.verify_with(&key)
    }

    /// [`SignedNode::verify`] with author keys from `cache` (decompressing a key costs about
    /// a fifth of a verification, and a group has few authors).
    pub(crate) fn verify_cached(self, cache: &mut KeyCache) -> Result<VerifiedNode, GraphError> {
        let author = self.body.author;
        let key = match cache.keys.get(&author) {
            Some(k) => *k,
            None => {
                VerifyingKey::from_bytes(author.as_bytes()).map_err(|_| GraphError::BadSignature)?
            }
        };
        let verified = self.verify_with(&key)?;
        // Only keys that verified a signature are kept, so junk cannot fill the cache.
        if !cache.keys.contains_key(&author) {
            if cache.keys.len() >= MAX_CACHED_KEYS {
                cache.keys.clear();
            }
            cache.keys.insert(author, key);
        }
        Ok(verified)
    }

    /// A node this replica verified before and kept in its own store, authenticated under the
    /// application's storage key: accepted without verifying the signature again. Only the
    /// replica's restore path may call this, with bytes read back from its own store (never
    /// with input from a peer); every other rule of the DAG is still checked.
    pub(crate) fn stored(self) -> VerifiedNode {
        VerifiedNode {
            node: self,
            _proof: SignatureChecked(()),
        }
    }

    /// A node this replica signed itself a moment ago: accepted without verifying the
    /// signature again, after checking that it names `signer` as its author.
    ///
    /// Only for bytes that [`Device::sign`](super::Device::sign) just produced with `signer`'s
    /// key inside this crate (never for input): Ed25519 signing with a valid key cannot yield
    /// a signature that fails `verify_strict`, and verifying our own signature cost about
    /// half of making a change. Everything else about the node is still checked by the DAG.
    pub(crate) fn signed_by_us(self, signer: &DeviceId) -> Result<VerifiedNode, GraphError> {
        if self.body.author != *signer {
            return Err(GraphError::Internal("local node names another author"));
        }
        Ok(VerifiedNode {
            node: self,
            _proof: SignatureChecked(()),
        })
    }

    fn verify_with(self, key: &VerifyingKey) -> Result<VerifiedNode, GraphError> {
        let body = self.body_bytes();
        let mut msg = Vec::with_capacity(NODE_LABEL.len() + body.len());
        msg.extend_from_slice(NODE_LABEL);
        msg.extend_from_slice(body);
        key.verify_strict(&msg, &Signature::from_bytes(&self.sig))
            .map_err(|_| GraphError::BadSignature)?;
        Ok(VerifiedNode {
            node: self,
            _proof: SignatureChecked(()),
        })
    }
}

/// Most author keys kept decompressed; the cache starts over when full.
const MAX_CACHED_KEYS: usize = 4096;

/// Decompressed verifying keys of authors whose signatures verified.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    keys: HashMap<DeviceId, VerifyingKey>,
}

impl fmt::Debug for SignedNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            bytes,
            body_start: _,
            body_len: _,
            sig: _,
            body,
            hash,
        } = self;
        f.debug_struct("SignedNode")
            .field("hash", hash)
            .field("len", &bytes.len())
            .field("body", body)
            .finish()
    }
}

/// Proof that a signature was checked: only [`SignedNode::verify`] can make one.
#[derive(Clone)]
struct SignatureChecked(());

/// A node whose signature verified under its author's key. Only
/// [`SignedNode::verify`] makes one.
#[derive(Clone)]
pub struct VerifiedNode {
    node: SignedNode,
    _proof: SignatureChecked,
}

impl VerifiedNode {
    /// The node's identity.
    pub fn hash(&self) -> NodeHash {
        self.node.hash
    }

    /// The decoded body.
    pub fn body(&self) -> &NodeBody {
        &self.node.body
    }

    /// The author (whose key verified the signature).
    pub fn author(&self) -> DeviceId {
        self.node.body.author
    }

    /// The whole signed node, exactly as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.node.bytes
    }

    /// The signed node's bytes, without copying them.
    pub(crate) fn into_bytes(self) -> Box<[u8]> {
        self.node.bytes
    }
}

impl fmt::Debug for VerifiedNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { node, _proof: _ } = self;
        f.debug_tuple("VerifiedNode").field(node).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::id::GroupId;
    use crate::graph::wire::{frame, Payload, NODE_VERSION};
    use crate::graph::Device;

    fn merge_body(author: DeviceId) -> NodeBody {
        NodeBody {
            version: NODE_VERSION,
            group: GroupId::from_bytes([1; 32]),
            author,
            seq: 1,
            lamport: 1,
            deps: vec![NodeHash::from_bytes([1; 32]), NodeHash::from_bytes([2; 32])],
            payload: Payload::Crdt(Vec::new()),
        }
    }

    #[test]
    fn signed_node_verifies_and_hash_covers_label_and_body() {
        let d = Device::from_seed(&[4; 32]);
        let bytes = d.sign(&merge_body(d.id())).unwrap();
        let n = SignedNode::decode(&bytes).unwrap();
        let body = merge_body(d.id()).encode().unwrap();
        assert_eq!(n.body_bytes(), &body[..]);
        let mut labelled = NODE_LABEL.to_vec();
        labelled.extend_from_slice(&body);
        assert_eq!(n.hash().as_bytes(), blake3::hash(&labelled).as_bytes());
        let v = n.verify().unwrap();
        assert_eq!(v.author(), d.id());
        assert_eq!(v.as_bytes(), &bytes[..]);
    }

    #[test]
    fn signature_by_another_key_or_label_fails() {
        let (a, b) = (Device::from_seed(&[4; 32]), Device::from_seed(&[5; 32]));
        let forged = b.sign(&merge_body(a.id())).unwrap();
        assert!(matches!(
            SignedNode::decode(&forged).unwrap().verify(),
            Err(GraphError::BadSignature)
        ));
        let body = merge_body(a.id()).encode().unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let mut msg = b"sealdoc/v1/xx\0".to_vec();
        msg.extend_from_slice(&body);
        let sig = ed25519_dalek::Signer::sign(&key, &msg).to_bytes();
        let wrong_label = frame(&body, &sig).unwrap();
        assert!(matches!(
            SignedNode::decode(&wrong_label).unwrap().verify(),
            Err(GraphError::BadSignature)
        ));
    }
}
