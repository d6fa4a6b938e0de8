//! The paved path: create, add, edit, remove, rotate.

use sealdoc::group::{GroupPolicy, Received, Role};
use serde_json::json;

use crate::common::*;

#[test]
fn members_edit_and_converge() {
    let mut r = rng(1);
    let mut ms = group(3, GroupPolicy::full_history(), Role::Writer, &mut r);
    let out = ms[1]
        .change(|tx| tx.set("title", "Groceries"), &mut r)
        .unwrap()
        .outbound;
    broadcast(&mut ms, 1, &out, &mut r);
    for m in &ms {
        assert_eq!(m.doc().get("title"), Some(json!("Groceries")));
    }
    let a = snapshot(&ms[0]);
    for m in &ms[1..] {
        let s = snapshot(m);
        assert_eq!(s.heads, a.heads);
        assert_eq!(s.members, a.members);
        assert_eq!(s.state, a.state);
        assert_eq!(s.current, a.current);
    }
}

#[test]
fn removal_rotates_and_locks_out() {
    let mut r = rng(2);
    let mut ms = group(3, GroupPolicy::full_history(), Role::Writer, &mut r);
    let d = ms[2].device_id();
    let out = ms[0].remove(&[d], &mut r).unwrap().outbound;
    broadcast(&mut ms, 0, &out, &mut r);
    assert_eq!(ms[1].members().len(), 2);
    let out = ms[1]
        .change(|tx| tx.set("secret", 1), &mut r)
        .unwrap()
        .outbound;
    deliver(&mut ms[0], &out, &mut r);
    assert_eq!(ms[0].doc().get("secret"), Some(json!(1)));
    let res = ms[2].receive(&out.broadcast[0], &mut r);
    assert!(!matches!(res, Ok(Received::Applied(_))), "{res:?}");
    assert!(ms[2].open_envelope(&out.broadcast[0]).is_err());
}
