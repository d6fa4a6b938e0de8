//! History policies: a `Full` joiner reads everything written before it joined; a
//! `FutureOnly` joiner reads none of it, and its document holds only what is written after.

use ed25519_dalek::SigningKey;
use sealdoc::crypto::{seal_direct, DirectContent, DirectRecipient, EnvelopeLimits};
use sealdoc::graph::{Have, SignedNode, Want};
use sealdoc::group::wire::CONTENT_SYNC;
use sealdoc::group::{GroupError, GroupPolicy, HistoryPolicy, Member, Outbound, Received, Role};
use serde_json::json;

use crate::common::*;

/// Alice and Bob write, rotate, remove Carol, write again; then Alice adds Joe (device 9).
/// Returns the members (Alice, Bob, Joe), every envelope sent before Joe joined, and the Add.
fn history(policy: GroupPolicy) -> (Vec<Member>, Vec<Vec<u8>>, Outbound) {
    let mut r = rng(70);
    let mut ms = group(3, policy, Role::Writer, &mut r);
    let mut old = Vec::new();
    let mut step = |ms: &mut Vec<Member>, from: usize, out: Outbound, r: &mut _| {
        old.extend(out.broadcast.iter().cloned());
        broadcast(ms, from, &out, r);
    };
    let o = ms[0]
        .change(|tx| tx.set("list", json!(["milk"])), &mut r)
        .unwrap()
        .outbound;
    step(&mut ms, 0, o, &mut r);
    let o = ms[1]
        .change(|tx| tx.set("title", "Groceries"), &mut r)
        .unwrap()
        .outbound;
    step(&mut ms, 1, o, &mut r);
    let o = ms[1].key_update(&mut r).unwrap().outbound;
    step(&mut ms, 1, o, &mut r);
    let o = ms[0]
        .change(|tx| tx.push("list", "bread"), &mut r)
        .unwrap()
        .outbound;
    step(&mut ms, 0, o, &mut r);
    let carol = ms[2].device_id();
    let o = ms[0].remove(&[carol], &mut r).unwrap().outbound;
    step(&mut ms, 0, o, &mut r);
    ms.pop();
    let o = ms[1]
        .change(|tx| tx.set("secret", "after carol"), &mut r)
        .unwrap()
        .outbound;
    step(&mut ms, 1, o, &mut r);
    let j = joiner(9);
    let add = ms[0]
        .add(&j.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    deliver(&mut ms[1], &add, &mut r);
    ms.push(welcome(j, &add));
    (ms, old, add)
}

#[test]
fn a_full_history_joiner_reads_everything_before_its_join() {
    let (mut ms, old, _) = history(GroupPolicy::full_history());
    let mut joe = ms.pop().unwrap();
    assert_eq!(joe.policy().history, HistoryPolicy::Full);
    assert_eq!(joe.doc().to_json(), ms[0].doc().to_json());
    assert_eq!(joe.doc().canonical_state(), ms[0].doc().canonical_state());
    assert_eq!(joe.doc().get("list"), Some(json!(["milk", "bread"])));
    assert_eq!(joe.members(), ms[0].members());
    // Joe holds every epoch's key (unwrapped along the history links), so he can open every
    // envelope sent before he joined.
    assert!(joe.epochs().iter().all(|(_, held)| *held));
    for env in &old {
        assert!(joe.open_envelope(env).is_ok());
    }
}

#[test]
fn a_future_only_joiner_reads_nothing_before_its_join() {
    let (mut ms, old, _) = history(GroupPolicy::future_only());
    let mut r = rng(71);
    let mut joe = ms.pop().unwrap();
    assert_eq!(joe.policy().history, HistoryPolicy::FutureOnly);
    // Nothing of the document, no earlier key, no earlier envelope.
    assert_eq!(joe.doc().to_json(), json!({}));
    assert_eq!(joe.members(), ms[0].members());
    let held: Vec<bool> = joe.epochs().iter().map(|(_, h)| *h).collect();
    assert_eq!(held.iter().filter(|h| **h).count(), 1);
    assert_eq!(held.last(), Some(&true));
    for env in &old {
        assert!(matches!(
            joe.open_envelope(env),
            Err(GroupError::NotRecipient { .. })
        ));
        let err = joe.receive(env, &mut r).unwrap_err();
        assert!(matches!(err, GroupError::NotRecipient { .. }), "{err:?}");
    }
    // The graph is complete (skeletons of the content, the signed membership history).
    assert_eq!(joe.heads(), ms[0].heads());
    assert!(joe.log().len() == ms[0].log().len());
}

#[test]
fn a_future_only_joiner_sees_what_is_written_after_and_skips_edits_of_unseen_elements() {
    let (mut ms, _, _) = history(GroupPolicy::future_only());
    let mut r = rng(72);
    // After the join: a new key (seen), an insert after an element Joe never saw (skipped),
    // and a nested write under a container Joe never saw (the path names no element: seen).
    let o = ms[0]
        .change(
            |tx| {
                tx.set("fresh", 1)?;
                Ok(())
            },
            &mut r,
        )
        .unwrap()
        .outbound;
    broadcast(&mut ms, 0, &o, &mut r);
    let o = ms[1]
        .change(|tx| tx.push("list", "eggs"), &mut r)
        .unwrap()
        .outbound;
    broadcast(&mut ms, 1, &o, &mut r);
    let joe = &ms[2];
    assert_eq!(joe.doc().get("fresh"), Some(json!(1)));
    assert_eq!(joe.doc().get("title"), None);
    assert_eq!(joe.doc().get("list"), None);
    assert_eq!(
        ms[0].doc().get("list"),
        Some(json!(["milk", "bread", "eggs"]))
    );
    // Joe writes (his document's clock lags the graph's: the change runs on a copy) and
    // everyone converges on his edit.
    let o = ms[2]
        .change(|tx| tx.set("from joe", "hi"), &mut r)
        .unwrap()
        .outbound;
    broadcast(&mut ms, 2, &o, &mut r);
    for m in &ms {
        assert_eq!(m.doc().get("from joe"), Some(json!("hi")));
    }
    assert_eq!(ms[0].heads(), ms[2].heads());
    // Later edits of elements Joe made are applied normally.
    let o = ms[2]
        .change(|tx| tx.set("joe list", json!([1])), &mut r)
        .unwrap()
        .outbound;
    broadcast(&mut ms, 2, &o, &mut r);
    let o = ms[1]
        .change(|tx| tx.push("joe list", 2), &mut r)
        .unwrap()
        .outbound;
    broadcast(&mut ms, 1, &o, &mut r);
    assert_eq!(ms[2].doc().get("joe list"), Some(json!([1, 2])));
}

#[test]
fn a_future_only_joiner_cannot_pull_earlier_nodes_by_catch_up() {
    let (mut ms, _, _) = history(GroupPolicy::future_only());
    let mut r = rng(73);
    // Joe asks Alice, honestly: nothing to send.
    let alice_id = ms[0].device_id();
    let req = ms[2].sync_request(&alice_id, &mut r).unwrap();
    match ms[0].receive(&req.direct[0].1, &mut r).unwrap() {
        Received::Reply(out) => assert!(out.is_empty()),
        other => panic!("{other:?}"),
    }
    // Joe asks for a content node from before his join by hash, with a hand-made request.
    let early = ms[0]
        .log()
        .hashes()
        .find(|h| {
            let b = ms[0].log().node_bytes(h).unwrap();
            SignedNode::decode(b)
                .unwrap()
                .body()
                .payload
                .crdt_ops()
                .is_some_and(|o| !o.is_empty())
        })
        .unwrap();
    assert!(ms[2].log().is_opaque(&early));
    let group = ms[0].group();
    let have = Have {
        group,
        heads: ms[2].heads(),
    }
    .encode()
    .unwrap();
    let want = Want {
        group,
        hashes: vec![early],
    }
    .encode()
    .unwrap();
    let mut payload = vec![1u8, have.len() as u8];
    payload.extend_from_slice(&have);
    payload.push(want.len() as u8);
    payload.extend_from_slice(&want);
    let alice = ms[0].contact_card();
    let req = seal_direct(
        &SigningKey::from_bytes(&[9; 32]),
        &DirectRecipient::from(&alice),
        &DirectContent {
            group: *group.as_bytes(),
            content_type: CONTENT_SYNC,
            payload: &payload,
        },
        &EnvelopeLimits::default(),
        &mut r,
    )
    .unwrap();
    match ms[0].receive(&req, &mut r).unwrap() {
        Received::Reply(out) => assert!(out.is_empty(), "sent {} envelopes", out.direct.len()),
        other => panic!("{other:?}"),
    }
    // Bob, a founding member, would get it.
    let want = Want {
        group,
        hashes: vec![early],
    }
    .encode()
    .unwrap();
    let have = Have {
        group,
        heads: ms[1].heads(),
    }
    .encode()
    .unwrap();
    let mut payload = vec![1u8, have.len() as u8];
    payload.extend_from_slice(&have);
    payload.push(want.len() as u8);
    payload.extend_from_slice(&want);
    let req = seal_direct(
        &SigningKey::from_bytes(&[2; 32]),
        &DirectRecipient::from(&alice),
        &DirectContent {
            group: *group.as_bytes(),
            content_type: CONTENT_SYNC,
            payload: &payload,
        },
        &EnvelopeLimits::default(),
        &mut r,
    )
    .unwrap();
    match ms[0].receive(&req, &mut r).unwrap() {
        Received::Reply(out) => assert_eq!(out.direct.len(), 1),
        other => panic!("{other:?}"),
    }
}
