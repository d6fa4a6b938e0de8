//! Replays: the same envelope twice, the same node in a fresh envelope, and replayed
//! membership and key ops, which never rotate twice.

use sealdoc::group::{GroupPolicy, Received, Role};
use serde_json::json;

use crate::common::*;

#[test]
fn the_same_envelope_twice_is_a_duplicate() {
    let mut r = rng(30);
    let mut ms = group(2, GroupPolicy::full_history(), Role::Writer, &mut r);
    let out = ms[0]
        .change(|tx| tx.set("list", json!(["x"])), &mut r)
        .unwrap()
        .outbound;
    assert!(applied(&ms[1].receive(&out.broadcast[0], &mut r).unwrap()));
    let before = snapshot(&ms[1]);
    for _ in 0..3 {
        assert_eq!(
            ms[1].receive(&out.broadcast[0], &mut r).unwrap(),
            Received::Duplicate
        );
    }
    assert_eq!(snapshot(&ms[1]), before);
    assert_eq!(ms[1].doc().get("list"), Some(json!(["x"])));
}

#[test]
fn the_same_node_rewrapped_in_a_fresh_envelope_is_a_duplicate() {
    let mut r = rng(31);
    let mut ms = group(3, GroupPolicy::full_history(), Role::Writer, &mut r);
    let out = ms[0]
        .change(|tx| tx.set("list", json!(["x"])), &mut r)
        .unwrap()
        .outbound;
    broadcast(&mut ms, 0, &out, &mut r);
    // Bob re-encrypts Alice's node under the same key: a new envelope, the same node.
    let plain = ms[1].open_envelope(&out.broadcast[0]).unwrap();
    let again = ms[1].seal_envelope(&plain, &[], &mut r).unwrap();
    assert_ne!(again, out.broadcast[0]);
    let before = snapshot(&ms[2]);
    assert_eq!(ms[2].receive(&again, &mut r).unwrap(), Received::Duplicate);
    assert_eq!(snapshot(&ms[2]), before);
    assert_eq!(ms[2].doc().get("list"), Some(json!(["x"])));
}

#[test]
fn a_replayed_remove_or_key_update_does_not_rotate_again() {
    let mut r = rng(32);
    let mut ms = group(4, GroupPolicy::full_history(), Role::Writer, &mut r);
    let d = ms[3].device_id();
    let remove = ms[0].remove(&[d], &mut r).unwrap().outbound;
    let rotate = ms[1].key_update(&mut r).unwrap().outbound;
    deliver(&mut ms[2], &remove, &mut r);
    deliver(&mut ms[2], &rotate, &mut r);
    let before = snapshot(&ms[2]);
    assert_eq!(before.members.len(), 3);
    // Replayed as is, and re-wrapped by a member under the current key.
    for out in [&remove, &rotate] {
        for env in &out.broadcast {
            assert_eq!(ms[2].receive(env, &mut r).unwrap(), Received::Duplicate);
        }
    }
    let plain = ms[0].open_envelope(&remove.broadcast[0]).unwrap();
    let rewrapped = ms[1].seal_envelope(&plain, &[], &mut r).unwrap();
    assert_eq!(
        ms[2].receive(&rewrapped, &mut r).unwrap(),
        Received::Duplicate
    );
    let after = snapshot(&ms[2]);
    assert_eq!(after, before);
    assert_eq!(after.epochs.len(), before.epochs.len());
}
