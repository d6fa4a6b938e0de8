//! Forgery by members: a node altered after decryption and re-encrypted correctly, and a node
//! claiming another author. Both fail the signature, whoever's key encrypts them.

use sealdoc::graph::{GraphError, SignedNode};
use sealdoc::group::{GroupError, GroupPolicy, Role};

use crate::common::*;

#[test]
fn a_member_who_alters_a_decrypted_node_and_re_encrypts_it_fails_the_signature() {
    let mut r = rng(20);
    let mut ms = group(3, GroupPolicy::full_history(), Role::Writer, &mut r);
    let out = ms[0]
        .change(|tx| tx.set("amount", "100"), &mut r)
        .unwrap()
        .outbound;
    deliver(&mut ms[1], &out, &mut r);
    // Bob decrypts Alice's envelope and changes one byte of the signed body.
    let plain = ms[1].open_envelope(&out.broadcast[0]).unwrap();
    let node = SignedNode::decode(&plain).unwrap();
    let body_len = node.body_bytes().len();
    let body_start = plain.len() - 64 - body_len;
    // A byte of the author, and the last character of the value.
    for offset in [1 + 32 + 5, body_len - 1] {
        let mut forged = plain.to_vec();
        forged[body_start + offset] ^= 0x01;
        let env = ms[1].seal_envelope(&forged, &[], &mut r).unwrap();
        // Carol opens it fine (the envelope is genuine), but the node is not Alice's.
        assert!(ms[2].open_envelope(&env).is_ok());
        let before = snapshot(&ms[2]);
        let err = ms[2].receive(&env, &mut r).unwrap_err();
        assert!(
            matches!(err, GroupError::Graph(GraphError::BadSignature)),
            "{err:?}"
        );
        assert_eq!(snapshot(&ms[2]), before);
    }
    // The genuine node still applies.
    deliver(&mut ms[2], &out, &mut r);
    assert_eq!(ms[2].doc().get("amount"), Some(serde_json::json!("100")));
}

#[test]
fn a_node_claiming_another_author_fails_the_signature() {
    let mut r = rng(21);
    let mut ms = group(3, GroupPolicy::full_history(), Role::Writer, &mut r);
    // Bob signs a body that names Alice as its author.
    let mut body = next_body(&ms[0], set_op("owner", 1));
    body.author = ms[0].device_id();
    let node = ms[1].sign_node(&body).unwrap();
    let env = ms[1].seal_envelope(&node, &[], &mut r).unwrap();
    let before = snapshot(&ms[2]);
    let err = ms[2].receive(&env, &mut r).unwrap_err();
    assert!(
        matches!(err, GroupError::Graph(GraphError::BadSignature)),
        "{err:?}"
    );
    assert!(!err.is_invalid_node());
    assert_eq!(snapshot(&ms[2]), before);
    // Alice's real node with that body is still accepted later.
    let real = ms[0].sign_node(&body).unwrap();
    let env = ms[0].seal_envelope(&real, &[], &mut r).unwrap();
    assert!(applied(&ms[2].receive(&env, &mut r).unwrap()));
}
