//! The everyday path: local changes, delivery, duplicates, rollback, merge nodes.

use sealdoc::doc::DocError;
use sealdoc::graph::{GraphError, Received, MAX_DEPS, MAX_NODE_SIZE, MAX_OPS_PER_NODE};
use sealdoc::path;
use serde_json::json;

use crate::common::*;

#[test]
fn a_change_is_one_signed_node_that_a_peer_applies() {
    let mut a = replica(1);
    let mut b = replica(2);
    let out = a.change(|tx| tx.set("title", "Groceries")).unwrap();
    assert_eq!(out.nodes.len(), 1);
    assert_eq!(a.heads(), vec![out.hash.unwrap()]);
    match b.receive(&out.nodes[0]).unwrap() {
        Received::Applied(patches) => assert!(!patches.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.doc().get("title"), Some(json!("Groceries")));
    assert_eq!(a.heads(), b.heads());
    assert_eq!(a.doc().canonical_state(), b.doc().canonical_state());
}

#[test]
fn receiving_a_node_twice_is_a_duplicate_and_changes_nothing() {
    let mut a = replica(1);
    let mut b = replica(2);
    let n = one(a.change(|tx| tx.set("x", 1)).unwrap().nodes);
    let _ = b.receive(&n).unwrap();
    let before = snapshot(&b);
    assert_eq!(b.receive(&n).unwrap(), Received::Duplicate);
    assert_eq!(snapshot(&b), before);
    // A node's author receiving it back is a duplicate too.
    assert_eq!(a.receive(&n).unwrap(), Received::Duplicate);
}

#[test]
fn lists_and_text_reference_elements_across_nodes() {
    let mut a = replica(1);
    let mut b = replica(2);
    let n1 = a.change(|tx| {
        tx.set("text", json!([]))?;
        tx.splice_text("text", 0, 0, "hello")
    });
    deliver(&mut b, &n1.unwrap().nodes);
    let n2 = b
        .change(|tx| tx.splice_text("text", 5, 0, " world"))
        .unwrap();
    deliver(&mut a, &n2.nodes);
    let n3 = a.change(|tx| tx.splice_text("text", 0, 1, "J")).unwrap();
    deliver(&mut b, &n3.nodes);
    assert_eq!(a.doc().text("text").unwrap(), "Jello world");
    assert_eq!(b.doc().canonical_state(), a.doc().canonical_state());
}

#[test]
fn concurrent_changes_converge_in_either_order() {
    let mut a = replica(1);
    let mut b = replica(2);
    let base = a.change(|tx| tx.set("list", json!(["milk"]))).unwrap();
    deliver(&mut b, &base.nodes);
    let x = a.change(|tx| tx.push("list", "eggs")).unwrap();
    let y = b.change(|tx| tx.insert("list", 0, "tea")).unwrap();
    let z = b.change(|tx| tx.set("title", "shop")).unwrap();
    deliver(&mut a, &z.nodes); // before its dependency: parked
    assert_eq!(a.log().pending_len(), 1);
    deliver(&mut a, &y.nodes);
    deliver(&mut b, &x.nodes);
    assert_eq!(a.doc().to_json(), b.doc().to_json());
    assert_eq!(a.doc().canonical_state(), b.doc().canonical_state());
    assert_eq!(a.heads(), b.heads());
    assert_eq!(a.heads().len(), 2);
    assert_eq!(a.log().pending_len(), 0);
}

#[test]
fn an_empty_transaction_makes_no_node() {
    let mut a = replica(1);
    let out = a.change(|tx| Ok(tx.len("nothing").is_err())).unwrap();
    assert!(out.value);
    assert!(out.nodes.is_empty());
    assert!(a.log().is_empty());
}

#[test]
fn a_failing_closure_rolls_back() {
    let mut a = replica(1);
    let _ = a.change(|tx| tx.set("x", 1)).unwrap();
    let before = snapshot(&a);
    let r = a.change(|tx| {
        tx.set("y", 2)?;
        tx.delete(path!["no", "such"])
    });
    assert!(matches!(r, Err(GraphError::Doc(DocError::NotFound { .. }))));
    assert_eq!(snapshot(&a), before);
}

#[test]
fn too_many_ops_are_refused_before_commit() {
    let mut a = replica(1);
    let mut b = replica(2);
    deliver(
        &mut b,
        &a.change(|tx| tx.set("t", json!([]))).unwrap().nodes,
    );
    let before = snapshot(&a);
    let long = "x".repeat(MAX_OPS_PER_NODE + 1);
    let r = a.change(|tx| tx.splice_text("t", 0, 0, &long));
    assert!(
        matches!(r, Err(GraphError::TooManyOps { count, max }) if count == MAX_OPS_PER_NODE + 1 && max == MAX_OPS_PER_NODE)
    );
    assert_eq!(snapshot(&a), before);
    // Exactly the limit fits.
    let ok = a
        .change(|tx| tx.splice_text("t", 0, 0, &long[1..]))
        .unwrap();
    deliver(&mut b, &ok.nodes);
    assert_eq!(b.doc().text("t").unwrap().len(), MAX_OPS_PER_NODE);
}

#[test]
fn a_change_too_large_for_a_node_is_undone_and_the_replica_still_works() {
    let mut a = replica(1);
    let mut b = replica(2);
    deliver(
        &mut b,
        &a.change(|tx| tx.set("t", json!(["a", "b"]))).unwrap().nodes,
    );
    deliver(&mut a, &b.change(|tx| tx.push("t", "c")).unwrap().nodes);
    let before = snapshot(&a);
    let huge = "y".repeat(MAX_NODE_SIZE);
    let r = a.change(|tx| tx.set("big", huge.as_str()));
    assert!(matches!(r, Err(GraphError::NodeTooLarge { .. })), "{r:?}");
    assert_eq!(snapshot(&a), before);
    let n = a.change(|tx| tx.insert("t", 1, "z")).unwrap();
    deliver(&mut b, &n.nodes);
    assert_eq!(b.doc().to_json(), json!({"t": ["a", "z", "b", "c"]}));
    assert_eq!(a.doc().canonical_state(), b.doc().canonical_state());
}

#[test]
fn more_heads_than_a_node_may_name_are_merged_first() {
    let authors = MAX_DEPS as u8 + 8;
    let mut hub = replica(200);
    let base = hub.change(|tx| tx.set("n", json!({}))).unwrap().nodes;
    let mut all = base.clone();
    for i in 0..authors {
        let mut r = replica(i + 1);
        deliver(&mut r, &base);
        let out = r
            .change(|tx| tx.set(path!["n", format!("k{i}")], i as i64))
            .unwrap();
        all.extend(out.nodes);
    }
    deliver(&mut hub, &all[1..]);
    assert_eq!(hub.heads().len(), authors as usize);
    // A change too large for a node is refused before any merge node is made.
    let before = snapshot(&hub);
    let huge = "h".repeat(MAX_NODE_SIZE - 900);
    let r = hub.change(|tx| tx.set("big", huge.as_str()));
    assert!(matches!(r, Err(GraphError::NodeTooLarge { .. })), "{r:?}");
    assert_eq!(snapshot(&hub), before);
    let out = hub.change(|tx| tx.set("done", true)).unwrap();
    assert_eq!(out.nodes.len(), 2, "one merge node, then the change");
    assert_eq!(hub.heads(), vec![out.hash.unwrap()]);
    let mut late = replica(201);
    deliver(&mut late, &all);
    deliver(&mut late, &out.nodes);
    assert_eq!(late.heads(), hub.heads());
    assert_eq!(late.doc().canonical_state(), hub.doc().canonical_state());
    assert_eq!(late.doc().keys("n").unwrap().len(), authors as usize);
}

#[test]
fn catch_up_brings_a_replica_that_missed_everything_up_to_date() {
    let mut a = replica(1);
    let mut b = replica(2);
    for i in 0..50 {
        let _ = a
            .change(|tx| tx.set(format!("k{}", i % 7).as_str(), i))
            .unwrap();
    }
    let _ = b.change(|tx| tx.set("b", true)).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(a.heads(), b.heads());
    assert_eq!(a.log().len(), 51);
    assert_eq!(a.doc().canonical_state(), b.doc().canonical_state());
    // Quiescent: nothing more to send either way.
    assert!(a.answer_have(&b.have()).unwrap().is_empty());
    assert!(b.answer_have(&a.have()).unwrap().is_empty());
}

#[test]
fn sync_messages_from_another_group_are_refused() {
    let a = replica(1);
    let mut other =
        sealdoc::graph::SignedDoc::new(device(2), sealdoc::graph::GroupId::from_bytes([9; 32]));
    let _ = other.change(|tx| tx.set("x", 1)).unwrap();
    assert!(matches!(
        a.answer_have(&other.have()),
        Err(GraphError::WrongGroup { .. })
    ));
    assert!(matches!(
        a.answer_want(&other.want()),
        Err(GraphError::WrongGroup { .. })
    ));
}

#[test]
fn debug_output_never_shows_the_key() {
    let a = replica(0x77);
    let s = format!("{a:?}");
    assert!(s.contains("SignedDoc"));
    assert!(!s.contains("7777"), "{s}");
}
