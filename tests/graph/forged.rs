//! Forged, broken and hostile nodes: each is refused with its own error variant, and leaves
//! the receiver exactly as it was.

use ed25519_dalek::{Signer, SigningKey};
use sealdoc::doc::DocError;
use sealdoc::graph::wire::{frame, ElemRef, WireKey, NODE_LABEL};
use sealdoc::graph::{
    DecodeError, GraphError, NodeHash, Received, SignedDoc, MAX_DEPS, MAX_NODE_SIZE,
};
use serde_json::json;

use crate::common::*;

/// Alice (seed 1) made three nodes on a list; Bob (seed 2) applied them. Returns (alice, bob,
/// nodes).
fn setup() -> (SignedDoc, SignedDoc, Vec<Vec<u8>>) {
    let mut a = replica(1);
    let mut b = replica(2);
    let mut nodes = Vec::new();
    nodes.extend(a.change(|tx| tx.set("list", json!(["x"]))).unwrap().nodes);
    nodes.extend(a.change(|tx| tx.push("list", "y")).unwrap().nodes);
    nodes.extend(a.change(|tx| tx.push("list", "z")).unwrap().nodes);
    deliver(&mut b, &nodes);
    (a, b, nodes)
}

/// Asserts `bytes` is refused with an error matching `check`, and nothing changed.
fn refused(b: &mut SignedDoc, bytes: &[u8], check: impl FnOnce(&GraphError) -> bool) -> GraphError {
    let before = snapshot(b);
    let err = b.receive(bytes).expect_err("must be refused");
    assert!(check(&err), "unexpected error {err:?}");
    assert_eq!(snapshot(b), before);
    err
}

/// Alice's next node, made but not delivered to Bob.
fn next_of(a: &mut SignedDoc) -> Vec<u8> {
    one(a.change(|tx| tx.push("list", "w")).unwrap().nodes)
}

/// Signs arbitrary body bytes as Alice, under the real label.
fn sign_raw_as_alice(body: &[u8]) -> Vec<u8> {
    let key = SigningKey::from_bytes(&[1; 32]);
    let mut msg = NODE_LABEL.to_vec();
    msg.extend_from_slice(body);
    frame(body, &key.sign(&msg).to_bytes()).unwrap()
}

#[test]
fn a_flipped_bit_in_the_signature_fails_verification() {
    let (mut a, mut b, _) = setup();
    let mut n = next_of(&mut a);
    let last = n.len() - 1;
    n[last] ^= 0x01;
    refused(&mut b, &n, |e| matches!(e, GraphError::BadSignature));
    n[last - 40] ^= 0x80;
    refused(&mut b, &n, |e| matches!(e, GraphError::BadSignature));
}

#[test]
fn a_flipped_bit_in_the_body_fails_verification() {
    let (mut a, mut b, _) = setup();
    let n = next_of(&mut a);
    // Frame: length prefix, then body: version, group[32], author[32], seq, lamport, ...
    let body_len = sealdoc::graph::SignedNode::decode(&n)
        .unwrap()
        .body_bytes()
        .len();
    let prefix = n.len() - 64 - body_len;
    let mut lamport = n.clone();
    lamport[prefix + 1 + 32 + 32 + 1] ^= 0x01;
    refused(&mut b, &lamport, |e| matches!(e, GraphError::BadSignature));
    let mut author = n.clone();
    author[prefix + 1 + 32 + 5] ^= 0x10;
    refused(&mut b, &author, |e| matches!(e, GraphError::BadSignature));
    let mut group = n.clone();
    group[prefix + 1 + 3] ^= 0x10;
    refused(&mut b, &group, |e| {
        matches!(e, GraphError::WrongGroup { .. })
    });
}

#[test]
fn every_single_bit_flip_is_refused_without_state_change() {
    let (mut a, mut b, _) = setup();
    let n = next_of(&mut a);
    for i in 0..n.len() * 8 {
        let mut m = n.clone();
        m[i / 8] ^= 1 << (i % 8);
        refused(&mut b, &m, |_| true);
    }
    // The genuine node still applies afterwards: nothing about it was remembered.
    assert!(matches!(b.receive(&n).unwrap(), Received::Applied(_)));
}

#[test]
fn a_node_claiming_author_x_signed_by_y_is_refused() {
    let (mut a, mut b, _) = setup();
    let body = body_of(&next_of(&mut a));
    let mallory = device(66);
    let forged = mallory.sign(&body).unwrap();
    refused(&mut b, &forged, |e| matches!(e, GraphError::BadSignature));
    // Mallory's body with Alice's signature is no better.
    let mut body2 = body.clone();
    body2.author = mallory.id();
    let theirs = mallory.sign(&body2).unwrap();
    let mine = sealdoc::graph::SignedNode::decode(&alice_sign(&body)).unwrap();
    let mixed = frame(
        sealdoc::graph::SignedNode::decode(&theirs)
            .unwrap()
            .body_bytes(),
        mine.signature(),
    )
    .unwrap();
    refused(&mut b, &mixed, |e| matches!(e, GraphError::BadSignature));
}

fn alice_sign(body: &sealdoc::graph::NodeBody) -> Vec<u8> {
    device(1).sign(body).unwrap()
}

#[test]
fn a_signature_under_another_domain_label_is_refused() {
    let (mut a, mut b, _) = setup();
    let n = sealdoc::graph::SignedNode::decode(&next_of(&mut a)).unwrap();
    let key = SigningKey::from_bytes(&[1; 32]);
    for label in [
        &b"sealdoc/v1/oq\0"[..],
        b"sealdoc/v2/op\0",
        b"",
        b"sealdoc/v1/op",
    ] {
        let mut msg = label.to_vec();
        msg.extend_from_slice(n.body_bytes());
        let bytes = frame(n.body_bytes(), &key.sign(&msg).to_bytes()).unwrap();
        refused(&mut b, &bytes, |e| matches!(e, GraphError::BadSignature));
    }
    // The same body under the right label is fine.
    assert!(matches!(
        b.receive(n.as_bytes()).unwrap(),
        Received::Applied(_)
    ));
}

#[test]
fn unsorted_duplicated_or_too_many_deps_are_refused() {
    let (mut a, mut b, nodes) = setup();
    // A node with two dependencies: Alice's latest and a concurrent one of Carol's.
    let mut c = replica(3);
    deliver(&mut c, &nodes[..1]);
    let carol = c.change(|tx| tx.set("c", 1)).unwrap().nodes;
    deliver(&mut a, &carol);
    deliver(&mut b, &carol);
    let body = body_of(&next_of(&mut a));
    assert_eq!(body.deps.len(), 2);

    let mut unsorted = body.clone();
    unsorted.deps.reverse();
    refused(&mut b, &alice_sign(&unsorted), |e| {
        matches!(e, GraphError::Decode(DecodeError::DepsNotSorted))
    });

    let mut dup = body.clone();
    dup.deps = vec![body.deps[0], body.deps[0], body.deps[1]];
    dup.deps.sort();
    refused(&mut b, &alice_sign(&dup), |e| {
        matches!(e, GraphError::Decode(DecodeError::DuplicateDep { .. }))
    });

    let mut many = body.clone();
    many.deps = (0..=MAX_DEPS as u8)
        .map(|i| NodeHash::from_bytes([i; 32]))
        .collect();
    refused(&mut b, &alice_sign(&many), |e| {
        matches!(
            e,
            GraphError::Decode(DecodeError::TooManyDeps { count: 33, max: 32 })
        )
    });
}

#[test]
fn a_sequence_number_that_skips_is_invalid() {
    let (mut a, mut b, _) = setup();
    let mut body = body_of(&next_of(&mut a));
    body.seq += 1;
    refused(&mut b, &alice_sign(&body), |e| {
        matches!(
            e,
            GraphError::SequenceSkipped {
                seq: 5,
                expected: 4,
                ..
            }
        )
    });
}

#[test]
fn a_sequence_number_that_regresses_is_invalid() {
    let (mut a, mut b, _) = setup();
    let mut body = body_of(&next_of(&mut a));
    body.seq = 3; // its causal past already holds Alice's sequence 3
    refused(&mut b, &alice_sign(&body), |e| {
        matches!(
            e,
            GraphError::SequenceRegressed {
                seq: 3,
                seen: 3,
                ..
            }
        )
    });
}

#[test]
fn a_node_that_omits_the_authors_previous_node_is_invalid() {
    let (mut a, mut b, nodes) = setup();
    // Bob builds on Alice's first node; Alice's next node names only Bob's node, which does
    // not descend from her second and third nodes.
    let mut bob_first = replica(4);
    deliver(&mut bob_first, &nodes[..1]);
    let bn = bob_first.change(|tx| tx.set("b", 1)).unwrap().nodes;
    deliver(&mut b, &bn);
    let mut body = body_of(&next_of(&mut a));
    body.deps = vec![sealdoc::graph::SignedNode::decode(&bn[0]).unwrap().hash()];
    body.seq = 2;
    body.lamport = 4;
    let err = refused(&mut b, &alice_sign(&body), |e| {
        matches!(e, GraphError::PreviousNotInDeps { seq: 2, .. })
    });
    assert!(err.is_invalid_node());
}

#[test]
fn a_lamport_counter_that_does_not_match_its_deps_is_invalid() {
    let (mut a, mut b, _) = setup();
    let body = body_of(&next_of(&mut a));
    for delta in [1i64, -1] {
        let mut bad = body.clone();
        bad.lamport = (bad.lamport as i64 + delta) as u64;
        refused(
            &mut b,
            &alice_sign(&bad),
            |e| matches!(e, GraphError::LamportMismatch { expected, .. } if *expected == body.lamport),
        );
    }
}

#[test]
fn truncated_and_trailing_bytes_are_refused() {
    let (mut a, mut b, _) = setup();
    let n = next_of(&mut a);
    for cut in [0, 1, 2, 10, n.len() - 64, n.len() - 1] {
        refused(&mut b, &n[..cut], |e| {
            matches!(
                e,
                GraphError::Decode(
                    DecodeError::Truncated { .. } | DecodeError::LengthOverrun { .. }
                )
            )
        });
    }
    let mut long = n.clone();
    long.push(0);
    refused(&mut b, &long, |e| {
        matches!(
            e,
            GraphError::Decode(DecodeError::TrailingBytes { extra: 1 })
        )
    });
    // Trailing bytes inside the signed body: the body itself is over-long.
    let body = sealdoc::graph::SignedNode::decode(&n)
        .unwrap()
        .body_bytes()
        .to_vec();
    let mut padded = body.clone();
    padded.push(0);
    refused(&mut b, &sign_raw_as_alice(&padded), |e| {
        matches!(
            e,
            GraphError::Decode(DecodeError::TrailingBytes { extra: 1 })
        )
    });
}

#[test]
fn length_prefixes_claiming_more_than_the_input_are_refused() {
    let (mut a, mut b, _) = setup();
    let n = next_of(&mut a);
    // The frame's body length, as a varint claiming up to MAX_NODE_SIZE and then far more.
    let node = sealdoc::graph::SignedNode::decode(&n).unwrap();
    let body = node.body_bytes();
    for claim in [body.len() as u64 + 65, MAX_NODE_SIZE as u64] {
        let mut bytes = postcard::to_allocvec(&claim).unwrap();
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(node.signature());
        refused(&mut b, &bytes, |e| {
            matches!(e, GraphError::Decode(DecodeError::LengthOverrun { .. }))
        });
    }
    let mut bytes = postcard::to_allocvec(&(u64::MAX / 2)).unwrap();
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(node.signature());
    refused(&mut b, &bytes, |e| {
        matches!(e, GraphError::Decode(DecodeError::TooLarge { .. }))
    });
    // Inside the body: the op count (last varint before the ops) claims 200 ops.
    let mut nb = node.body().clone();
    let ops = nb.payload.crdt_ops_mut().unwrap();
    ops.clear();
    let mut raw = nb.encode().unwrap();
    // An empty op list encodes as a final 0; claim 200 ops with nothing after it.
    assert_eq!(raw.pop(), Some(0));
    raw.extend(postcard::to_allocvec(&200u32).unwrap());
    raw.push(1);
    refused(&mut b, &sign_raw_as_alice(&raw), |e| {
        matches!(
            e,
            GraphError::Decode(DecodeError::LengthOverrun {
                claimed: 200,
                available: 1
            })
        )
    });
    // A string length that claims a megabyte.
    let mut nb = node.body().clone();
    let ops = nb.payload.crdt_ops_mut().unwrap();
    ops[0].cursor.path[1].1 = WireKey::Str("LIST".into());
    let mut raw = nb.encode().unwrap();
    let at = raw.windows(5).position(|w| w == b"\x04LIST").unwrap();
    raw.splice(at..at + 1, postcard::to_allocvec(&(1u64 << 20)).unwrap());
    refused(&mut b, &sign_raw_as_alice(&raw), |e| {
        matches!(
            e,
            GraphError::Decode(DecodeError::KeyTooLong { .. } | DecodeError::LengthOverrun { .. })
        )
    });
    let mut raw = nb.encode().unwrap();
    raw[at] = 100; // fits the key limit, not the input
    refused(&mut b, &sign_raw_as_alice(&raw), |e| {
        matches!(
            e,
            GraphError::Decode(DecodeError::LengthOverrun { claimed: 100, .. })
        )
    });
}

#[test]
fn an_input_larger_than_a_node_may_be_is_refused_before_decoding() {
    let (_, mut b, _) = setup();
    let big = vec![0u8; MAX_NODE_SIZE + 1];
    refused(&mut b, &big, |e| {
        matches!(e, GraphError::Decode(DecodeError::TooLarge { .. }))
    });
}

#[test]
fn a_node_for_another_group_is_refused() {
    let (mut a, mut b, _) = setup();
    let mut body = body_of(&next_of(&mut a));
    body.group = sealdoc::graph::GroupId::from_bytes([1; 32]);
    refused(&mut b, &alice_sign(&body), |e| {
        matches!(e, GraphError::WrongGroup { .. })
    });
}

#[test]
fn an_invalid_node_is_remembered_and_so_are_its_dependents() {
    let (mut a, mut b, _) = setup();
    let mut body = body_of(&next_of(&mut a));
    body.lamport += 10;
    let bad = alice_sign(&body);
    let hash = sealdoc::graph::SignedNode::decode(&bad).unwrap().hash();
    refused(&mut b, &bad, |e| {
        matches!(e, GraphError::LamportMismatch { .. })
    });
    assert!(b.log().is_invalid(&hash));
    refused(
        &mut b,
        &bad,
        |e| matches!(e, GraphError::KnownInvalid { hash: h } if *h == hash),
    );
    // A child of the invalid node.
    let mut child = body.clone();
    child.seq += 1;
    child.lamport += 1;
    child.deps = vec![hash];
    refused(
        &mut b,
        &alice_sign(&child),
        |e| matches!(e, GraphError::DependsOnInvalid { dep } if *dep == hash),
    );
}

#[test]
fn a_parked_node_whose_dependency_turns_out_invalid_is_rejected_too() {
    let (mut a, mut b, _) = setup();
    let mut body = body_of(&next_of(&mut a));
    body.lamport += 10;
    let bad = alice_sign(&body);
    let hash = sealdoc::graph::SignedNode::decode(&bad).unwrap().hash();
    let mut child = body.clone();
    child.seq += 1;
    child.lamport += 1;
    child.deps = vec![hash];
    let child = alice_sign(&child);
    let child_hash = sealdoc::graph::SignedNode::decode(&child).unwrap().hash();
    assert!(matches!(
        b.receive(&child).unwrap(),
        Received::Pending { .. }
    ));
    assert!(b.receive(&bad).is_err());
    assert_eq!(b.log().pending_len(), 0);
    assert!(b.log().is_invalid(&child_hash));
}

#[test]
fn a_payload_naming_an_unknown_node_or_op_is_invalid() {
    let (mut a, mut b, _) = setup();
    let body = body_of(&next_of(&mut a));
    let mut unknown = body.clone();
    let ops = unknown.payload.crdt_ops_mut().unwrap();
    let WireKey::Elem(ElemRef::Node { node, index }) = ops[0].cursor.key.clone() else {
        panic!("push names the last element: {:?}", ops[0].cursor.key)
    };
    ops[0].cursor.key = WireKey::Elem(ElemRef::Node {
        node: NodeHash::from_bytes([0xee; 32]),
        index,
    });
    refused(&mut b, &alice_sign(&unknown), |e| {
        matches!(e, GraphError::UnknownNode { .. })
    });
    let mut past_end = body.clone();
    let ops = past_end.payload.crdt_ops_mut().unwrap();
    ops[0].cursor.key = WireKey::Elem(ElemRef::Node { node, index: 7 });
    refused(&mut b, &alice_sign(&past_end), |e| {
        matches!(e, GraphError::ElementOutOfRange { index: 7, .. })
    });
}

#[test]
fn a_payload_naming_an_element_outside_its_causal_past_is_invalid() {
    let (mut a, mut b, nodes) = setup();
    // Carol inserts an element concurrently with Alice's next node.
    let mut c = replica(3);
    deliver(&mut c, &nodes);
    let cn = one(c.change(|tx| tx.push("list", "carol")).unwrap().nodes);
    let carol_hash = sealdoc::graph::SignedNode::decode(&cn).unwrap().hash();
    deliver(&mut b, std::slice::from_ref(&cn));
    // Alice's node claims to insert after Carol's element, without depending on it.
    let mut body = body_of(&next_of(&mut a));
    let ops = body.payload.crdt_ops_mut().unwrap();
    ops[0].cursor.key = WireKey::Elem(ElemRef::Node {
        node: carol_hash,
        index: 0,
    });
    refused(&mut b, &alice_sign(&body), |e| {
        matches!(e, GraphError::Doc(DocError::ElementNotInPast { .. }))
    });
}
