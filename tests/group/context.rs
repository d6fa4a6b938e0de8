//! Wrong context: another group's envelope, another group's node under this group's key, and
//! a welcome passed on to another device.

use ed25519_dalek::SigningKey;
use sealdoc::crypto::{
    open_direct, seal_direct, CryptoError, DirectContent, DirectRecipient, EnvelopeLimits,
};
use sealdoc::group::wire::CONTENT_BUNDLE;
use sealdoc::group::{
    GroupError, GroupPolicy, Joining, Member, PeerMisbehaved, Pending, Received, Role,
};
use serde_json::json;

use crate::common::*;

/// G1 = {1, 2}, G2 = {2, 3}, created by 1 and 3; device 2 is in both.
fn two_groups() -> (Member, Member, Member, Member) {
    let mut r = rng(40);
    let mut g1 = group(2, GroupPolicy::full_history(), Role::Writer, &mut r);
    let mut c = create(3, GroupPolicy::full_history(), &mut r);
    let j = joiner(2);
    let out = c
        .add(&j.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    let b2 = welcome(j, &out);
    let b1 = g1.pop().unwrap();
    let a = g1.pop().unwrap();
    (a, b1, b2, c)
}

#[test]
fn an_envelope_of_another_group_is_parked_and_never_applied() {
    let (mut a, _b1, _b2, mut c) = two_groups();
    let mut r = rng(41);
    let out = a.change(|tx| tx.set("g1", true), &mut r).unwrap().outbound;
    let before = snapshot(&c);
    // C cannot tell it apart from an envelope of an epoch it has not learned yet: it parks it.
    let res = c.receive(&out.broadcast[0], &mut r).unwrap();
    assert!(
        matches!(res, Received::Pending(Pending::UnknownEpoch(_))),
        "{res:?}"
    );
    let after = snapshot(&c);
    assert_eq!(after.parked.0, before.parked.0 + 1);
    assert_eq!((&after.heads, &after.state), (&before.heads, &before.state));
    // It stays parked through later traffic, and never applies.
    let _ = c.key_update(&mut r).unwrap();
    assert_eq!(c.doc().get("g1"), None);
    assert!(matches!(
        c.open_envelope(&out.broadcast[0]),
        Err(GroupError::NotRecipient { .. })
    ));
}

#[test]
fn a_node_of_another_group_under_this_groups_key_is_refused() {
    let (mut a, mut b1, mut b2, mut c) = two_groups();
    let mut r = rng(42);
    // Device 2 writes in G1, then wraps that G1 node under G2's key.
    let out = b1
        .change(|tx| tx.set("from", "g1"), &mut r)
        .unwrap()
        .outbound;
    deliver(&mut a, &out, &mut r);
    let node = b1.open_envelope(&out.broadcast[0]).unwrap();
    let env = b2.seal_envelope(&node, &[], &mut r).unwrap();
    assert!(c.open_envelope(&env).is_ok());
    let before = snapshot(&c);
    let err = c.receive(&env, &mut r).unwrap_err();
    assert!(
        matches!(err, GroupError::Peer(PeerMisbehaved::WrongGroup { .. })),
        "{err:?}"
    );
    assert_eq!(snapshot(&c), before);
    assert_eq!(a.doc().get("from"), Some(json!("g1")));
}

#[test]
fn a_welcome_passed_on_to_another_device_is_refused() {
    let mut r = rng(43);
    let mut a = create(1, GroupPolicy::full_history(), &mut r);
    let j1 = joiner(2);
    let out = a
        .add(&j1.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    let welcome_env = &out.direct[0].1;
    // Another joiner cannot even open the envelope sealed to device 2.
    let mut j3 = joiner(3);
    let err = j3.receive(welcome_env).unwrap_err();
    assert!(
        matches!(err, GroupError::Envelope(CryptoError::AuthenticationFailed)),
        "{err:?}"
    );
    // Device 2 opens its welcome and seals the same chunk to device 3, signed by itself: the
    // welcome no longer comes from the admin who added anyone, and device 3 is not added by it.
    let (_, kem2) = device(2);
    let limits = EnvelopeLimits::default();
    let msg = open_direct(welcome_env, &kem2, id(2).as_bytes(), &limits).unwrap();
    let card3 = j3.contact_card().unwrap();
    let resealed = seal_direct(
        &SigningKey::from_bytes(&[2; 32]),
        &DirectRecipient::from(&card3),
        &DirectContent {
            group: *msg.group(),
            content_type: CONTENT_BUNDLE,
            payload: msg.payload(),
        },
        &limits,
        &mut r,
    )
    .unwrap();
    let err = j3.receive(&resealed).unwrap_err();
    assert!(
        matches!(
            err,
            GroupError::Peer(PeerMisbehaved::WelcomeNotFromAdder { .. })
        ),
        "{err:?}"
    );
    assert!(!j3.is_welcomed());
    // Even the admin who added device 2 cannot pass its welcome on to device 3: the op it
    // names adds device 2, not device 3.
    let by_admin = seal_direct(
        &SigningKey::from_bytes(&[1; 32]),
        &DirectRecipient::from(&card3),
        &DirectContent {
            group: *msg.group(),
            content_type: CONTENT_BUNDLE,
            payload: msg.payload(),
        },
        &limits,
        &mut r,
    )
    .unwrap();
    let err = j3.receive(&by_admin).unwrap_err();
    assert!(
        matches!(err, GroupError::Peer(PeerMisbehaved::BadWelcome(_))),
        "{err:?}"
    );
    assert!(!j3.is_welcomed());
    // The genuine recipient is welcomed.
    let mut j2 = j1;
    assert_eq!(j2.receive(welcome_env).unwrap(), Joining::Welcomed);
}

#[test]
fn a_node_rewrapped_under_an_epoch_it_cannot_have_used_is_refused_but_not_remembered() {
    let mut r = rng(44);
    let mut ms = group(3, GroupPolicy::full_history(), Role::Writer, &mut r);
    // Alice writes N; concurrently Bob rotates, and Carol gets only the rotation.
    let n = ms[0].change(|tx| tx.set("n", 1), &mut r).unwrap().outbound;
    let rot = ms[1].key_update(&mut r).unwrap().outbound;
    deliver(&mut ms[2], &rot, &mut r);
    // Bob wraps N under his new epoch, which N's author had not seen when writing it.
    let node = ms[1].open_envelope(&n.broadcast[0]).unwrap();
    let bobs = ms[1].current_epochs();
    let newer = ms[1].seal_envelope(&node, &bobs, &mut r).unwrap();
    let before = snapshot(&ms[2]);
    let err = ms[2].receive(&newer, &mut r).unwrap_err();
    assert!(
        matches!(err, GroupError::Peer(PeerMisbehaved::EpochNotInPast { .. })),
        "{err:?}"
    );
    assert!(!err.is_invalid_node());
    assert_eq!(snapshot(&ms[2]), before);
    // The genuine envelope still delivers N.
    assert!(applied(&ms[2].receive(&n.broadcast[0], &mut r).unwrap()));
    assert_eq!(ms[2].doc().get("n"), Some(json!(1)));
}

#[test]
fn a_node_under_an_epoch_its_author_was_not_sealed_is_refused() {
    let mut r = rng(45);
    let mut ms = group(2, GroupPolicy::full_history(), Role::Writer, &mut r);
    let old_epoch = ms[0].current_epochs()[0];
    let j = joiner(3);
    let add = ms[0]
        .add(&j.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    deliver(&mut ms[1], &add, &mut r);
    let mut joe = welcome(j, &add);
    // Joe holds the old epoch's key (history link) but was never sealed it; he writes a node
    // and wraps it under that epoch.
    let out = joe.change(|tx| tx.set("joe", 1), &mut r).unwrap().outbound;
    let node = joe.open_envelope(&out.broadcast[0]).unwrap();
    let old = joe.seal_envelope(&node, &[old_epoch], &mut r).unwrap();
    let before = snapshot(&ms[1]);
    let err = ms[1].receive(&old, &mut r).unwrap_err();
    assert!(
        matches!(
            err,
            GroupError::Peer(PeerMisbehaved::AuthorNotRecipient { .. })
        ),
        "{err:?}"
    );
    assert_eq!(snapshot(&ms[1]), before);
    assert!(applied(&ms[1].receive(&out.broadcast[0], &mut r).unwrap()));
}
