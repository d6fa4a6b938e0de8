//! A Byzantine author signs two different nodes with one sequence number.

use sealdoc::graph::wire::{WireMutation, WireValue};
use sealdoc::graph::{Equivocation, Received, SignedDoc, SignedNode};
use sealdoc::path;
use serde_json::json;

use crate::common::*;

/// Two replicas running the same device (seed 66) from the same state, so their next nodes
/// share (author, seq, Lamport).
fn twins(base: &[Vec<u8>]) -> (SignedDoc, SignedDoc) {
    let mut m1 = replica(66);
    let mut m2 = replica(66);
    deliver(&mut m1, base);
    deliver(&mut m2, base);
    (m1, m2)
}

#[test]
fn both_versions_are_kept_and_both_replicas_report_the_same_evidence() {
    let mut a = replica(1);
    let base = a.change(|tx| tx.set("list", json!([]))).unwrap().nodes;
    let (mut m1, mut m2) = twins(&base);
    let mut r1 = replica(2);
    let mut r2 = replica(3);
    deliver(&mut r1, &base);
    deliver(&mut r2, &base);

    // The same position, the same (Lamport, author): only the node hash orders them.
    let va = one(m1.change(|tx| tx.insert("list", 0, "a")).unwrap().nodes);
    let vb = one(m2.change(|tx| tx.insert("list", 0, "b")).unwrap().nodes);
    let (ba, bb) = (body_of(&va), body_of(&vb));
    assert_eq!(
        (ba.author, ba.seq, ba.lamport),
        (bb.author, bb.seq, bb.lamport)
    );
    assert_ne!(va, vb);

    deliver(&mut r1, std::slice::from_ref(&va));
    deliver(&mut r2, std::slice::from_ref(&vb));
    assert!(r1.evidence().is_empty());
    sync(&mut r1, &mut r2);

    let (ha, hb) = (
        SignedNode::decode(&va).unwrap().hash(),
        SignedNode::decode(&vb).unwrap().hash(),
    );
    let expected = [Equivocation::clone(&r1.evidence()[0])];
    assert_eq!(expected[0].author, device(66).id());
    assert_eq!(expected[0].seq, ba.seq);
    assert_eq!(
        expected[0].nodes,
        if ha < hb { vec![ha, hb] } else { vec![hb, ha] }
    );
    assert_eq!(r1.evidence(), r2.evidence());
    assert!(r1.log().contains(&ha) && r1.log().contains(&hb));
    assert_eq!(r1.heads(), r2.heads());
    assert_eq!(r1.doc().canonical_state(), r2.doc().canonical_state());
    // Greater id first: the node with the greater hash comes first, on every replica.
    let first = if ha > hb { "a" } else { "b" };
    assert_eq!(r1.doc().get(path!["list", 0]), Some(json!(first)));
    assert_eq!(r1.doc().to_json(), r2.doc().to_json());
    assert_eq!(r1.doc().len("list").unwrap(), 2);
}

#[test]
fn hand_built_equivocation_converges_for_every_delivery_order() {
    let mut a = replica(1);
    let base = a.change(|tx| tx.set("m", json!({"k": 0}))).unwrap().nodes;
    let (mut m1, _) = twins(&base);
    let va = one(m1.change(|tx| tx.set(path!["m", "k"], 1)).unwrap().nodes);
    // Version b: the same body with another value, signed with the low-level API.
    let mut body = body_of(&va);
    let ops = body.payload.crdt_ops_mut().unwrap();
    ops[0].mutation = WireMutation::Assign(WireValue::Int(2));
    let vb = device(66).sign(&body).unwrap();
    // Both build on their own version.
    let mut next = Vec::new();
    for v in [&va, &vb] {
        let mut m = replica(66);
        deliver(&mut m, &base);
        deliver(&mut m, std::slice::from_ref(v));
        next.push(one(m.change(|tx| tx.set("after", true)).unwrap().nodes));
    }
    let all = [base.clone(), vec![va.clone(), vb.clone()], next].concat();
    let mut reference: Option<SignedDoc> = None;
    for order in [
        [0, 1, 2, 3, 4],
        [0, 4, 3, 2, 1],
        [0, 2, 4, 1, 3],
        [0, 3, 1, 4, 2],
    ] {
        let mut r = replica(9);
        for &i in &order {
            let _ = r.receive(&all[i]).unwrap();
        }
        drain_all(&mut r);
        assert_eq!(r.log().len(), 5);
        assert_eq!(
            r.evidence().len(),
            2,
            "seq 1 (va/vb) and seq 2 (the children)"
        );
        if let Some(first) = &reference {
            assert_eq!(r.doc().canonical_state(), first.doc().canonical_state());
            assert_eq!(r.evidence(), first.evidence());
            assert_eq!(r.heads(), first.heads());
        } else {
            // Concurrent assignments: both values survive as a conflict.
            assert_eq!(r.doc().conflicts(path!["m", "k"]).unwrap().len(), 2);
            reference = Some(r);
        }
    }
}

#[test]
fn a_clear_removes_only_the_fork_in_its_causal_past() {
    // Mallory forks: version A writes m.a, version B writes m.b. Alice saw only A and
    // replaces m by a string, which clears what she saw (m.a) but not m.b. Version vectors
    // alone would say "Mallory's sequence 2 is in Alice's past" and clear both, but only on
    // replicas that already had B: they would diverge.
    let mut a0 = replica(1);
    let base = a0.change(|tx| tx.set("m", json!({}))).unwrap().nodes;
    let (mut m1, mut m2) = twins(&base);
    let va = one(m1.change(|tx| tx.set(path!["m", "a"], 1)).unwrap().nodes);
    let vb = one(m2.change(|tx| tx.set(path!["m", "b"], 2)).unwrap().nodes);
    let mut alice = replica(1);
    deliver(&mut alice, &base);
    deliver(&mut alice, std::slice::from_ref(&va));
    let clear = one(alice.change(|tx| tx.set("m", "s")).unwrap().nodes);

    let mut early = replica(5); // has B before Alice's clear
    deliver(
        &mut early,
        &[base.clone(), vec![vb.clone(), va.clone(), clear.clone()]].concat(),
    );
    let mut late = replica(6); // gets B last
    deliver(
        &mut late,
        &[base.clone(), vec![va.clone(), clear.clone(), vb.clone()]].concat(),
    );
    for r in [&early, &late] {
        assert_eq!(r.log().evidence().len(), 1);
        let values: Vec<_> = r
            .doc()
            .conflicts("m")
            .unwrap()
            .into_iter()
            .map(|c| c.value)
            .collect();
        assert!(values.contains(&json!("s")), "{values:?}");
        assert!(values.contains(&json!({"b": 2})), "{values:?}");
    }
    assert_eq!(early.doc().canonical_state(), late.doc().canonical_state());
    assert_eq!(early.doc().to_json(), late.doc().to_json());
}

#[test]
fn an_equivocating_node_is_not_a_duplicate() {
    let mut a = replica(1);
    let base = a.change(|tx| tx.set("x", 0)).unwrap().nodes;
    let (mut m1, mut m2) = twins(&base);
    let va = one(m1.change(|tx| tx.set("x", 1)).unwrap().nodes);
    let vb = one(m2.change(|tx| tx.set("x", 2)).unwrap().nodes);
    let mut r = replica(2);
    deliver(&mut r, &base);
    assert!(matches!(r.receive(&va).unwrap(), Received::Applied(_)));
    assert!(matches!(r.receive(&vb).unwrap(), Received::Applied(_)));
    assert_eq!(r.receive(&vb).unwrap(), Received::Duplicate);
    assert_eq!(r.heads().len(), 2);
}
