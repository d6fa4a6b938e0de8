//! Out-of-order delivery: content sealed under an epoch whose key update has not arrived is
//! parked and applied exactly once when it does; traffic that reaches a new member before its
//! welcome is applied after it.

use sealdoc::group::{GroupPolicy, Joined, Joining, Pending, Received, Role};
use serde_json::json;

use crate::common::*;

#[test]
fn content_before_its_key_update_is_parked_and_applied_exactly_once() {
    let mut r = rng(60);
    let mut ms = group(3, GroupPolicy::full_history(), Role::Writer, &mut r);
    let rotate = ms[1].key_update(&mut r).unwrap().outbound;
    let content = ms[1]
        .change(|tx| tx.set("after rotation", true), &mut r)
        .unwrap()
        .outbound;
    let c = &mut ms[2];
    let before = snapshot(c);
    let res = c.receive(&content.broadcast[0], &mut r).unwrap();
    assert!(
        matches!(res, Received::Pending(Pending::UnknownEpoch(_))),
        "{res:?}"
    );
    assert_eq!(c.parked().0, 1);
    assert_eq!(c.doc().get("after rotation"), None);
    // Parked once: the same envelope again is a duplicate.
    assert_eq!(
        c.receive(&content.broadcast[0], &mut r).unwrap(),
        Received::Duplicate
    );
    // The key update arrives: it applies, and so does the parked content, in the same call.
    let Received::Applied(patches) = c.receive(&rotate.broadcast[0], &mut r).unwrap() else {
        panic!("not applied")
    };
    assert_eq!(patches.len(), 1);
    assert_eq!(c.doc().get("after rotation"), Some(json!(true)));
    assert_eq!(c.parked(), (0, 0));
    assert_eq!(c.log().len(), before.len + 2);
    // Exactly once: nothing replays it.
    for env in rotate.broadcast.iter().chain(&content.broadcast) {
        assert_eq!(c.receive(env, &mut r).unwrap(), Received::Duplicate);
    }
    assert!(c.drain().is_empty());
    assert_eq!(c.log().len(), before.len + 2);
}

#[test]
fn a_node_whose_dependencies_are_missing_waits_in_the_causal_buffer() {
    let mut r = rng(61);
    let mut ms = group(3, GroupPolicy::full_history(), Role::Writer, &mut r);
    let first = ms[0]
        .change(|tx| tx.set("list", json!(["a"])), &mut r)
        .unwrap()
        .outbound;
    let second = ms[0]
        .change(|tx| tx.push("list", "b"), &mut r)
        .unwrap()
        .outbound;
    let res = ms[1].receive(&second.broadcast[0], &mut r).unwrap();
    assert!(
        matches!(res, Received::Pending(Pending::MissingDeps(_))),
        "{res:?}"
    );
    assert!(applied(
        &ms[1].receive(&first.broadcast[0], &mut r).unwrap()
    ));
    assert_eq!(ms[1].doc().get("list"), Some(json!(["a", "b"])));
}

#[test]
fn a_new_member_applies_traffic_that_arrived_before_its_welcome() {
    for policy in [GroupPolicy::full_history(), GroupPolicy::future_only()] {
        let mut r = rng(62);
        let mut ms = group(2, policy, Role::Writer, &mut r);
        let mut j = joiner(3);
        let add = ms[0]
            .add(&j.contact_card().unwrap(), Role::Writer, &mut r)
            .unwrap()
            .outbound;
        deliver(&mut ms[1], &add, &mut r);
        let after = ms[1]
            .change(|tx| tx.set("hello", "new member"), &mut r)
            .unwrap()
            .outbound;
        // The joiner sees the group traffic first (both the Add and the change).
        for env in add.broadcast.iter().chain(&after.broadcast) {
            assert_eq!(
                j.receive(env).unwrap(),
                Joining::Pending(Pending::WaitingForWelcome)
            );
        }
        for (_, env) in &add.direct {
            let _ = j.receive(env).unwrap();
        }
        assert!(j.is_welcomed());
        let Joined {
            member, patches, ..
        } = j.finish().unwrap();
        assert_eq!(
            member.doc().get("hello"),
            Some(json!("new member")),
            "{policy:?}"
        );
        assert_eq!(patches.len(), 1);
        // The Add itself was parked too: under `Full` the joiner holds the key it was sent
        // under and finds it a duplicate; under `FutureOnly` it never will, and drops it.
        assert_eq!(member.parked().0, 0);
        assert_eq!(member.heads(), ms[1].heads());
    }
}
