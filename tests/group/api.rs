//! The rest of the public surface: redacted `Debug`, chunked welcomes under small envelopes,
//! bounded parking, catch-up, and refusals of unsolicited direct messages.

use ed25519_dalek::SigningKey;
use sealdoc::crypto::{seal_direct, CryptoError, DirectContent, DirectRecipient, EnvelopeLimits};
use sealdoc::group::wire::CONTENT_BUNDLE;
use sealdoc::group::{
    Config, GroupError, GroupPolicy, Joiner, Joining, Member, PeerMisbehaved, Pending, Received,
    Role,
};
use serde_json::json;

use crate::common::*;

#[test]
fn debug_output_shows_no_secret() {
    let mut r = rng(100);
    let ms = group(2, GroupPolicy::full_history(), Role::Writer, &mut r);
    let s = format!("{:?}", ms[0]);
    assert!(s.starts_with("Member { device: DeviceId("), "{s}");
    assert!(
        s.contains("kem: DeviceKemSecret { key_id: KemKeyId("),
        "{s}"
    );
    let j = joiner(5);
    let t = format!("{j:?}");
    assert!(t.starts_with("Joiner { device: DeviceId("), "{t}");
    // No 32-byte secret in hex: the longest hex run is an id prefix or a key id.
    for text in [&s, &t] {
        let longest = text
            .split(|c: char| !c.is_ascii_hexdigit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(longest <= 16, "{text}");
    }
    insta::assert_snapshot!(t, @"Joiner { device: DeviceId(6e7a1cdd…), kem: Some(DeviceKemSecret { key_id: KemKeyId(537d873d1388bc29), .. }), expected: None, parked: 0, welcomed: false, .. }");
}

#[test]
fn a_welcome_larger_than_one_envelope_arrives_in_chunks_in_any_order() {
    let mut r = rng(101);
    let small = Config::default().with_envelope(EnvelopeLimits::new(1024).unwrap());
    let (d, k) = device(1);
    let (mut a, _) =
        Member::create_with(d, k, GroupPolicy::full_history(), &[], small, &mut r).unwrap();
    for i in 0..20 {
        let _ = a
            .change(
                |tx| tx.set(format!("k{i}").as_str(), "x".repeat(100)),
                &mut r,
            )
            .unwrap();
    }
    let (d, k) = device(2);
    let mut j = Joiner::with_config(d, k, small);
    let out = a
        .add(&j.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    assert!(out.direct.len() > 3, "{} chunks", out.direct.len());
    assert!(out.direct.iter().all(|(_, e)| e.len() <= 1024));
    let mut chunks: Vec<&Vec<u8>> = out.direct.iter().map(|(_, e)| e).collect();
    chunks.reverse();
    let (last, rest) = chunks.split_last().unwrap();
    for (n, c) in rest.iter().enumerate() {
        match j.receive(c).unwrap() {
            Joining::Pending(Pending::Chunks { received, total }) => {
                assert_eq!((received, total), (n + 1, chunks.len()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(j.receive(c).unwrap(), Joining::Duplicate);
    }
    assert!(!j.is_welcomed());
    assert_eq!(j.receive(last).unwrap(), Joining::Welcomed);
    let b = j.finish().unwrap().member;
    assert_eq!(b.doc().to_json(), a.doc().to_json());
}

#[test]
fn parking_is_bounded_and_evicts_the_oldest() {
    let mut r = rng(102);
    let tight = Config::default().with_parking(4, 1 << 20, 2);
    let (d, k) = device(1);
    let (mut a, _) =
        Member::create_with(d, k, GroupPolicy::full_history(), &[], tight, &mut r).unwrap();
    let (d, k) = device(2);
    let mut j = Joiner::with_config(d, k, tight);
    let add = a
        .add(&j.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    for (_, env) in &add.direct {
        let _ = j.receive(env).unwrap();
    }
    let mut b = j.finish().unwrap().member;
    // Ten envelopes under three epochs Bob has not seen yet.
    let mut parked = Vec::new();
    for _ in 0..3 {
        let rot = a.key_update(&mut r).unwrap().outbound;
        for i in 0..3 {
            let o = a.change(|tx| tx.set("n", i), &mut r).unwrap().outbound;
            parked.extend(o.broadcast);
        }
        drop(rot);
    }
    for env in &parked {
        let res = b.receive(env, &mut r).unwrap();
        assert!(matches!(res, Received::Pending(Pending::UnknownEpoch(_))));
        assert!(b.parked().0 <= 4);
    }
    assert_eq!(b.parked().0, 4);
}

#[test]
fn members_catch_up_by_sync_requests() {
    let mut r = rng(103);
    let mut ms = group(3, GroupPolicy::full_history(), Role::Writer, &mut r);
    // Carol misses three changes and a rotation.
    for i in 0..3 {
        let out = ms[0].change(|tx| tx.set("n", i), &mut r).unwrap().outbound;
        deliver(&mut ms[1], &out, &mut r);
    }
    let out = ms[1].key_update(&mut r).unwrap().outbound;
    deliver(&mut ms[0], &out, &mut r);
    let bob = ms[1].device_id();
    let req = ms[2].sync_request(&bob, &mut r).unwrap();
    let Received::Reply(answer) = ms[1].receive(&req.direct[0].1, &mut r).unwrap() else {
        panic!("no reply")
    };
    assert!(answer.broadcast.is_empty() && !answer.direct.is_empty());
    deliver(&mut ms[2], &answer, &mut r);
    assert_eq!(ms[2].heads(), ms[1].heads());
    assert_eq!(ms[2].doc().get("n"), Some(json!(2)));
    assert_eq!(ms[2].current_epochs(), ms[1].current_epochs());
}

#[test]
fn direct_messages_from_non_members_and_ephemeral_envelopes_are_refused() {
    let mut r = rng(104);
    let mut ms = group(2, GroupPolicy::full_history(), Role::Writer, &mut r);
    let before = snapshot(&ms[1]);
    let bob = ms[1].contact_card();
    let env = seal_direct(
        &SigningKey::from_bytes(&[77; 32]),
        &DirectRecipient::from(&bob),
        &DirectContent {
            group: *ms[1].group().as_bytes(),
            content_type: CONTENT_BUNDLE,
            payload: b"junk",
        },
        &EnvelopeLimits::default(),
        &mut r,
    )
    .unwrap();
    let err = ms[1].receive(&env, &mut r).unwrap_err();
    assert!(
        matches!(
            err,
            GroupError::Peer(PeerMisbehaved::SenderNotAMember { .. })
        ),
        "{err:?}"
    );
    // Ephemeral envelopes (kind 3) are not handled by this version.
    let out = ms[0].change(|tx| tx.set("x", 1), &mut r).unwrap().outbound;
    let mut eph = out.broadcast[0].clone();
    eph[4] = 3;
    assert!(matches!(
        ms[1].receive(&eph, &mut r).unwrap_err(),
        GroupError::Unsupported(_)
    ));
    let mut kind0 = out.broadcast[0].clone();
    kind0[4] = 0;
    assert!(matches!(
        ms[1].receive(&kind0, &mut r).unwrap_err(),
        GroupError::Envelope(CryptoError::UnexpectedKind { found: 0 })
    ));
    assert_eq!(snapshot(&ms[1]), before);
}

#[test]
fn create_with_initial_members_welcomes_them() {
    let mut r = rng(105);
    let (d, k) = device(1);
    let initial = [(card(2), Role::Writer), (card(3), Role::Reader)];
    let (mut a, out) = Member::create_with(
        d,
        k,
        GroupPolicy::future_only(),
        &initial,
        Config::default(),
        &mut r,
    )
    .unwrap();
    let mut b = welcome(joiner(2), &out);
    let c = welcome(joiner(3), &out);
    assert_eq!(a.members(), b.members());
    assert_eq!(c.members().len(), 3);
    assert_eq!(c.current_epochs(), a.current_epochs());
    let o = b.change(|tx| tx.set("hi", 1), &mut r).unwrap().outbound;
    deliver(&mut a, &o, &mut r);
    assert_eq!(a.doc().get("hi"), Some(json!(1)));
}

#[test]
fn a_joiner_expecting_a_group_refuses_welcomes_to_others() {
    let mut r = rng(106);
    let mut a = create(1, GroupPolicy::full_history(), &mut r);
    let mut other = create(3, GroupPolicy::full_history(), &mut r);
    let mut j = joiner(2);
    j.expect_group(a.group());
    let card = j.contact_card().unwrap();
    let stranger = other.add(&card, Role::Admin, &mut r).unwrap().outbound;
    let err = j.receive(&stranger.direct[0].1).unwrap_err();
    assert!(
        matches!(
            err,
            GroupError::Peer(PeerMisbehaved::WrongDirectGroup { .. })
        ),
        "{err:?}"
    );
    let out = a.add(&card, Role::Writer, &mut r).unwrap().outbound;
    assert_eq!(welcome(j, &out).group(), a.group());
}

#[test]
fn a_rotation_made_before_a_failed_change_is_sent_with_the_next_command() {
    let mut r = rng(107);
    let mut ms = group(5, GroupPolicy::full_history(), Role::Writer, &mut r);
    // Everyone rotates at once: five concurrent heads, more than a header may name, so Bob
    // must merge them before sending (rule K4). (A concurrent add no longer forces a merge:
    // the adder forwards the missing secret.)
    let kus: Vec<_> = (0..5)
        .map(|i| ms[i].key_update(&mut r).unwrap().outbound)
        .collect();
    for (i, ku) in kus.iter().enumerate() {
        if i != 1 {
            deliver(&mut ms[1], ku, &mut r);
        }
    }
    assert_eq!(ms[1].current_epochs().len(), 5);
    // His edit fails after the merging key update was made.
    let err = ms[1].change(|tx| tx.delete("nothing"), &mut r).unwrap_err();
    assert!(matches!(err, GroupError::Graph(_)), "{err:?}");
    assert_eq!(ms[1].current_epochs().len(), 1);
    // The next command carries the key update first; Alice reads both.
    let out = ms[1].change(|tx| tx.set("ok", 1), &mut r).unwrap().outbound;
    assert!(out.broadcast.len() >= 2);
    for (i, ku) in kus.iter().enumerate() {
        if i != 0 {
            deliver(&mut ms[0], ku, &mut r);
        }
    }
    deliver(&mut ms[0], &out, &mut r);
    assert_eq!(ms[0].doc().get("ok"), Some(json!(1)));
    assert_eq!(ms[0].current_epochs(), ms[1].current_epochs());
}
