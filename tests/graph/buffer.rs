//! The causal buffer: bounded parking, eviction, and bounded work per call.

use sealdoc::graph::wire::{
    WireCursor, WireKey, WireMutation, WireOp, WireTag, WireValue, NODE_VERSION,
};
use sealdoc::graph::{
    Limits, NodeBody, NodeHash, Payload, Received, SignedDoc, DEFAULT_PENDING_BYTES,
    DEFAULT_PENDING_PER_AUTHOR,
};
use serde_json::json;

use crate::common::*;

/// A node by `seed`'s device that depends on a hash nobody has.
fn orphan(seed: u8, i: u32, filler: usize) -> Vec<u8> {
    let mut missing = [0xabu8; 32];
    missing[..4].copy_from_slice(&i.to_be_bytes());
    let body = NodeBody {
        version: NODE_VERSION,
        group: group(),
        author: device(seed).id(),
        seq: 1,
        lamport: 5,
        deps: vec![NodeHash::from_bytes(missing)],
        payload: Payload::Crdt(vec![WireOp {
            cursor: WireCursor {
                path: vec![(WireTag::Map, WireKey::Doc)],
                key: WireKey::Str("k".into()),
            },
            mutation: WireMutation::Assign(WireValue::Str("p".repeat(filler))),
        }]),
    };
    device(seed).sign(&body).unwrap()
}

#[test]
fn a_node_whose_dependency_never_arrives_waits_is_evicted_and_others_keep_applying() {
    let mut b = replica(2);
    let mut alice = replica(1);
    let mallory = 66;
    let total = DEFAULT_PENDING_PER_AUTHOR as u32 + 44;
    let first = orphan(mallory, 0, 10);
    let first_hash = sealdoc::graph::SignedNode::decode(&first).unwrap().hash();
    for i in 0..total {
        let n = if i == 0 {
            first.clone()
        } else {
            orphan(mallory, i, 10)
        };
        match b.receive(&n).unwrap() {
            Received::Pending { missing } => assert_eq!(missing.len(), 1),
            other => panic!("{other:?}"),
        }
        // Alice's nodes keep applying meanwhile.
        if i % 50 == 0 {
            let out = alice.change(|tx| tx.set("i", i as i64)).unwrap();
            assert!(matches!(
                b.receive(&out.nodes[0]).unwrap(),
                Received::Applied(_)
            ));
        }
        assert!(b.log().pending_len_of(&device(mallory).id()) <= DEFAULT_PENDING_PER_AUTHOR);
        assert!(b.log().pending_bytes() <= DEFAULT_PENDING_BYTES);
    }
    assert_eq!(b.log().pending_len(), DEFAULT_PENDING_PER_AUTHOR);
    // The oldest went first.
    assert!(!b.log().is_pending(&first_hash));
    // What is parked is what its missing dependencies are asked for.
    let want = b.want();
    assert_eq!(
        want.hashes.len(),
        sealdoc::graph::MAX_WANT.min(DEFAULT_PENDING_PER_AUTHOR)
    );
    assert_eq!(b.doc().get("i"), alice.doc().get("i"));
    assert_eq!(b.heads(), alice.heads());
    // An evicted node can come back later and is parked again (it was never rejected).
    assert!(matches!(
        b.receive(&first).unwrap(),
        Received::Pending { .. }
    ));
}

#[test]
fn the_buffer_stays_within_its_byte_and_count_budgets() {
    let by_bytes = Limits::default()
        .with_pending_bytes(100_000)
        .with_pending_per_author(1000);
    let mut b = replica_with(2, by_bytes);
    for i in 0..200u32 {
        let seed = 60 + (i % 3) as u8;
        let _ = b.receive(&orphan(seed, i, 900)).unwrap();
        assert!(
            b.log().pending_bytes() <= 100_000,
            "{}",
            b.log().pending_bytes()
        );
    }
    assert!(b.log().pending_len() > 80);
    let by_count = Limits::default()
        .with_pending_nodes(30)
        .with_pending_per_author(25);
    let mut b = replica_with(2, by_count);
    for i in 0..200u32 {
        let seed = 60 + (i % 4).min(1) as u8; // three quarters from one author
        let _ = b.receive(&orphan(seed, i, 10)).unwrap();
        assert!(b.log().pending_len() <= 30);
        assert!(b.log().pending_len_of(&device(seed).id()) <= 25);
    }
    assert_eq!(b.log().pending_len(), 30);
    // The per-author cap held the busy author back, so the other one kept a share.
    assert!(b.log().pending_len_of(&device(60).id()) >= 5);
}

/// Alice makes `n` single-op changes.
fn chain(n: usize) -> (SignedDoc, Vec<Vec<u8>>) {
    let mut a = replica(1);
    let mut nodes = a.change(|tx| tx.set("t", json!([]))).unwrap().nodes;
    for i in 1..n {
        // A position in 0..=len that jumps around.
        let pos = (i.wrapping_mul(2_654_435_761) >> 7) % i;
        let out = a.change(|tx| tx.splice_text("t", pos, 0, "x")).unwrap();
        nodes.extend(out.nodes);
    }
    (a, nodes)
}

#[test]
fn a_chain_of_1000_nodes_in_reverse_order_is_applied_once_its_root_arrives() {
    let (a, nodes) = chain(1000);
    let limits = Limits::default()
        .with_pending_per_author(1024)
        .with_pending_nodes(1024);
    let mut b = replica_with(2, limits);
    for n in nodes[1..].iter().rev() {
        assert!(matches!(b.receive(n).unwrap(), Received::Pending { .. }));
    }
    assert_eq!(b.log().pending_len(), 999);
    assert!(b.log().is_empty());
    match b.receive(&nodes[0]).unwrap() {
        Received::Applied(p) => assert_eq!(p.len(), 1000, "one patch per node"),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.ready_len(), 0);
    assert_eq!(b.log().pending_len(), 0);
    assert_eq!(b.heads(), a.heads());
    assert_eq!(b.doc().canonical_state(), a.doc().canonical_state());
}

#[test]
fn draining_a_long_backlog_takes_bounded_work_per_call() {
    let (a, nodes) = chain(1000);
    let budget = 64;
    let limits = Limits::default()
        .with_pending_per_author(1024)
        .with_pending_nodes(1024)
        .with_drain_per_call(budget);
    let mut b = replica_with(2, limits);
    for n in nodes[1..].iter().rev() {
        let _ = b.receive(n).unwrap();
    }
    match b.receive(&nodes[0]).unwrap() {
        Received::Applied(p) => assert_eq!(p.len(), budget),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.log().len(), budget);
    let mut calls = 0;
    while b.ready_len() > 0 {
        let d = b.drain();
        assert!(d.effects.len() <= budget);
        assert!(!d.effects.is_empty());
        calls += 1;
    }
    assert_eq!(calls, (1000 - budget).div_ceil(budget));
    assert_eq!(b.doc().canonical_state(), a.doc().canonical_state());
    assert_eq!(b.heads(), a.heads());
}

#[test]
fn with_default_limits_a_reverse_chain_completes_through_catch_up() {
    let (a, nodes) = chain(1000);
    let mut b = replica(2);
    for n in nodes.iter().skip(1).rev() {
        let _ = b.receive(n).unwrap();
    }
    assert_eq!(b.log().pending_len(), DEFAULT_PENDING_PER_AUTHOR);
    let _ = b.receive(&nodes[0]).unwrap();
    drain_all(&mut b);
    assert!(b.log().len() < 1000);
    let mut rounds = 0;
    while pull(&mut b, &a) > 0 {
        rounds += 1;
    }
    assert!(rounds >= 1);
    assert_eq!(b.heads(), a.heads());
    assert_eq!(b.doc().canonical_state(), a.doc().canonical_state());
}
