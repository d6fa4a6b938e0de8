//! Shared helpers: replicas, delivery, catch-up, state snapshots.

#![allow(dead_code)]

use sealdoc::graph::{Device, GroupId, Limits, NodeBody, Received, SignedDoc, SignedNode};

pub fn group() -> GroupId {
    GroupId::from_bytes([0x42; 32])
}

pub fn device(seed: u8) -> Device {
    Device::from_seed(&[seed; 32])
}

pub fn replica(seed: u8) -> SignedDoc {
    SignedDoc::new(device(seed), group())
}

pub fn replica_with(seed: u8, limits: Limits) -> SignedDoc {
    SignedDoc::with_limits(device(seed), group(), limits)
}

/// Receives every node, expecting no error, and drains leftover work.
pub fn deliver(to: &mut SignedDoc, nodes: &[Vec<u8>]) {
    for n in nodes {
        let r = to.receive(n).expect("receive");
        assert!(!matches!(r, Received::Pending { .. }) || to.log().pending_len() > 0);
    }
    drain_all(to);
}

pub fn drain_all(to: &mut SignedDoc) {
    while to.ready_len() > 0 {
        let _ = to.drain();
    }
}

/// One round of catch-up from `from` to `to`: `to` says what it has and what it wants,
/// `from` answers. Returns how many nodes were sent.
pub fn pull(to: &mut SignedDoc, from: &SignedDoc) -> usize {
    let have = to.have();
    let mut sent = from.answer_have(&have).expect("answer have");
    let want = to.want();
    if !want.hashes.is_empty() {
        sent.extend(from.answer_want(&want).expect("answer want"));
    }
    let n = sent.len();
    for b in &sent {
        let _ = to.receive(b).expect("catch-up node");
    }
    drain_all(to);
    n
}

/// Pulls both ways until nothing more moves.
pub fn sync(a: &mut SignedDoc, b: &mut SignedDoc) {
    loop {
        let n = pull(a, b) + pull(b, a);
        if n == 0 {
            break;
        }
    }
}

/// Everything a rejection must leave unchanged.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub heads: Vec<sealdoc::graph::NodeHash>,
    pub len: usize,
    pub pending: usize,
    pub pending_bytes: usize,
    pub state: Vec<u8>,
    pub json: serde_json::Value,
}

pub fn snapshot(r: &SignedDoc) -> Snapshot {
    Snapshot {
        heads: r.heads(),
        len: r.log().len(),
        pending: r.log().pending_len(),
        pending_bytes: r.log().pending_bytes(),
        state: r.doc().canonical_state(),
        json: r.doc().to_json(),
    }
}

/// The decoded body of a signed node.
pub fn body_of(bytes: &[u8]) -> NodeBody {
    SignedNode::decode(bytes).expect("decode").body().clone()
}

/// The one node a change made.
pub fn one(nodes: Vec<Vec<u8>>) -> Vec<u8> {
    assert_eq!(nodes.len(), 1);
    nodes.into_iter().next().expect("a node")
}
