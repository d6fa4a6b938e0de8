//! Membership without a central server (issue 5): concurrent membership changes resolved by
//! strong removal, merged epochs, content whiteout, and a property test with Byzantine
//! members, lossy delivery and catch-up.

// Helpers outside `#[test]` functions are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "group/common.rs"]
mod common;

#[path = "membership/property.rs"]
mod property;

use rand_chacha::ChaCha20Rng;
use sealdoc::crypto::{seal_epoch_secret, EpochSecret, KemPublicKey, SealContext, SealRecipient};
use sealdoc::graph::{DeviceId, Payload};
use sealdoc::group::wire::CONTENT_FORWARD;
use sealdoc::group::{
    ControlOp, GroupError, GroupPolicy, KeyUpdate, Member, Outbound, PeerMisbehaved, Pending,
    Received, Role,
};
use serde_json::json;

use common::*;

/// A group of `n` admins (seeds 1..=n), everyone up to date.
fn admins(n: u8, policy: GroupPolicy, r: &mut ChaCha20Rng) -> Vec<Member> {
    group(n, policy, Role::Admin, r)
}

/// Delivers `out` to every member of `ms` whose index is in `to`; refusals (a removed device
/// cannot open what it is not a recipient of) are ignored.
fn send_to(ms: &mut [Member], to: &[usize], out: &Outbound, r: &mut ChaCha20Rng) {
    for &i in to {
        offer(&mut ms[i], out, r);
    }
}

/// Delivers `out` to `m`, ignoring refusals.
fn offer(m: &mut Member, out: &Outbound, r: &mut ChaCha20Rng) {
    let me = m.device_id();
    for env in &out.broadcast {
        let _ = m.receive(env, r);
    }
    for (d, env) in &out.direct {
        if *d == me {
            let _ = m.receive(env, r);
        }
    }
    while m.backlog() > 0 {
        let _ = m.drain();
    }
}

fn member_ids(m: &Member) -> Vec<DeviceId> {
    m.members().into_iter().map(|(d, _)| d).collect()
}

/// A key update by `m` sealed to `to` (sorted), with the secret `secret`, except that the box
/// of `garbage` (if any) holds another secret. Returns the signed node.
fn crafted_key_update(
    m: &mut Member,
    to: &[(DeviceId, KemPublicKey)],
    seed: u64,
    garbage: Option<DeviceId>,
) -> Vec<u8> {
    let mut r = rng(seed);
    let secret = EpochSecret::generate(&mut r);
    let other = EpochSecret::generate(&mut r);
    let mut salt = [0u8; 16];
    salt[..8].copy_from_slice(&seed.to_le_bytes());
    let ctx = SealContext {
        group: *m.group().as_bytes(),
        author: *m.device_id().as_bytes(),
        salt,
    };
    let sealed = to
        .iter()
        .enumerate()
        .map(|(i, (d, kem))| {
            let rcpt = SealRecipient {
                index: i as u16,
                device: *d.as_bytes(),
                kem_public: kem,
            };
            let s = if Some(*d) == garbage { &other } else { &secret };
            seal_epoch_secret(s, &ctx, &rcpt, &mut r).unwrap()
        })
        .collect();
    let history = (m.policy().history == sealdoc::group::HistoryPolicy::Full).then(Vec::new);
    assert!(
        history.is_none(),
        "crafted updates are for FutureOnly groups"
    );
    let op = ControlOp::KeyUpdate {
        key: KeyUpdate {
            salt,
            sealed,
            history,
        },
    };
    let body = next_body(m, Payload::Group(op.encode()));
    m.sign_node(&body).unwrap()
}

/// A: removes D1 while B removes D2; C, having both, encrypts under the merged key; neither
/// removed device can open it, before or after a merging key update.
#[test]
fn concurrent_removals_exclude_both_removed_devices() {
    let mut r = rng(1);
    // 0 = A, 1 = B, 2 = C, 3 = D1, 4 = D2.
    let mut ms = admins(5, GroupPolicy::full_history(), &mut r);
    let (d1, d2) = (ms[3].device_id(), ms[4].device_id());
    let ra = ms[0].remove(&[d1], &mut r).unwrap().outbound;
    let rb = ms[1].remove(&[d2], &mut r).unwrap().outbound;
    send_to(&mut ms, &[1, 2, 3, 4], &ra, &mut r);
    send_to(&mut ms, &[0, 2, 3, 4], &rb, &mut r);
    assert_eq!(ms[2].current_epochs().len(), 2, "two heads");
    let out = ms[2]
        .change(|tx| tx.set("x", "secret"), &mut r)
        .unwrap()
        .outbound;
    for env in &out.broadcast {
        assert!(ms[3].open_envelope(env).is_err());
        assert!(ms[4].open_envelope(env).is_err());
    }
    send_to(&mut ms, &[0, 1], &out, &mut r);
    // A merging key update, then traffic under the single new head.
    let ku = ms[0].key_update(&mut r).unwrap().outbound;
    for env in &ku.broadcast {
        assert!(ms[3].open_envelope(env).is_err());
        assert!(ms[4].open_envelope(env).is_err());
    }
    send_to(&mut ms, &[1, 2, 3, 4], &ku, &mut r);
    assert_eq!(ms[2].current_epochs().len(), 1);
    let out = ms[1]
        .change(|tx| tx.set("y", "later"), &mut r)
        .unwrap()
        .outbound;
    for env in &out.broadcast {
        assert!(ms[3].open_envelope(env).is_err());
        assert!(ms[4].open_envelope(env).is_err());
    }
    send_to(&mut ms, &[0, 2], &out, &mut r);
    for m in &ms[..3] {
        assert_eq!(member_ids(m), member_ids(&ms[0]));
        assert_eq!(m.doc().to_json(), ms[0].doc().to_json());
        assert!(!member_ids(m).contains(&d1) && !member_ids(m).contains(&d2));
    }
}

/// Opens a direct envelope addressed to the device of `seed` and returns its content type.
fn direct_content_type(seed: u8, bytes: &[u8]) -> Option<u8> {
    let (_, kem) = device(seed);
    let me = id(seed);
    sealdoc::crypto::open_direct(
        bytes,
        &kem,
        me.as_bytes(),
        &sealdoc::group::Config::default().envelope,
    )
    .ok()
    .map(|m| m.content_type())
}

/// A adds N while B removes D. C, who sees both, sends under the merged key of both heads
/// without rotating (N was added concurrently with the removal, by A, who holds the
/// removal's epoch); N parks it until A forwards the removal's epoch, then reads it; D never
/// can, and gets no forward.
#[test]
fn concurrent_add_and_remove() {
    for policy in [GroupPolicy::future_only(), GroupPolicy::full_history()] {
        let mut r = rng(2);
        // 0 = A, 1 = B, 2 = C, 3 = D (seeds 1..=4), N = seed 9.
        let mut ms = admins(4, policy, &mut r);
        let d = ms[3].device_id();
        let n = joiner(9);
        let add = ms[0]
            .add(&n.contact_card().unwrap(), Role::Writer, &mut r)
            .unwrap()
            .outbound;
        let rem = ms[1].remove(&[d], &mut r).unwrap().outbound;
        let mut n = welcome(n, &add);
        let nid = n.device_id();
        send_to(&mut ms, &[1, 2, 3], &add, &mut r);
        send_to(&mut ms, &[0, 2, 3], &rem, &mut r);
        offer(&mut n, &rem, &mut r);
        let known = ms[2].epochs().len();
        assert_eq!(ms[2].current_epochs().len(), 2);
        let out = ms[2]
            .change(|tx| tx.set("x", "merged"), &mut r)
            .unwrap()
            .outbound;
        assert_eq!(ms[2].epochs().len(), known, "C did not rotate");
        assert_eq!(out.broadcast.len(), 1);
        assert!(out.direct.is_empty());
        let content = out.broadcast[0].clone();
        assert!(
            ms[3].open_envelope(&content).is_err(),
            "D reads nothing new"
        );
        // N parks it: it lacks the removal's epoch key (or the epoch itself).
        let got = deliver(&mut n, &out, &mut r);
        assert!(
            matches!(
                got[..],
                [Received::Pending(
                    Pending::MissingKey(_) | Pending::UnknownEpoch(_)
                )]
            ),
            "{got:?}"
        );
        assert_eq!(n.doc().get("x"), None);
        // A, the adder, forwards the removal's epoch (its op and its secret) to N, once.
        let fwd = ms[0].take_outgoing(&mut r).unwrap();
        assert!(fwd.broadcast.is_empty());
        assert!(fwd.direct.iter().all(|(to, _)| *to == nid));
        let types: Vec<Option<u8>> = fwd
            .direct
            .iter()
            .map(|(_, e)| direct_content_type(9, e))
            .collect();
        assert_eq!(types.last(), Some(&Some(CONTENT_FORWARD)), "{types:?}");
        assert!(ms[0].take_outgoing(&mut r).unwrap().is_empty(), "once");
        for m in &mut ms[1..] {
            assert!(
                m.take_outgoing(&mut r).unwrap().is_empty(),
                "only the adder"
            );
        }
        offer(&mut n, &fwd, &mut r);
        assert_eq!(n.doc().get("x"), Some(json!("merged")), "N reads the merge");
        assert!(ms[3].open_envelope(&content).is_err());
        send_to(&mut ms, &[0, 1], &out, &mut r);
        for m in ms[..3].iter().chain(std::iter::once(&n)) {
            assert_eq!(member_ids(m), member_ids(&ms[0]));
            assert!(!member_ids(m).contains(&d));
        }
        // Later traffic by anyone: N reads it, D does not.
        let later = ms[1]
            .change(|tx| tx.set("y", "later"), &mut r)
            .unwrap()
            .outbound;
        assert!(ms[3].open_envelope(&later.broadcast[0]).is_err());
        deliver(&mut n, &later, &mut r);
        assert_eq!(n.doc().get("y"), Some(json!("later")));
    }
}

/// Only the adder may forward: a forward from another member is refused with a typed error
/// and changes nothing; a forward that overtakes the epoch's op is held and applied when the
/// op arrives.
#[test]
fn forwards_come_from_the_adder_and_wait_for_their_epoch() {
    let mut r = rng(8);
    // 0 = A, 1 = B, 2 = C, 3 = D.
    let mut ms = admins(4, GroupPolicy::future_only(), &mut r);
    let d = ms[3].device_id();
    let n = joiner(9);
    let add = ms[0]
        .add(&n.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    let rem = ms[1].remove(&[d], &mut r).unwrap().outbound;
    let mut n = welcome(n, &add);
    let nid = n.device_id();
    send_to(&mut ms, &[1, 2, 3], &add, &mut r);
    send_to(&mut ms, &[0, 2, 3], &rem, &mut r);
    let content = ms[2]
        .change(|tx| tx.set("x", "merged"), &mut r)
        .unwrap()
        .outbound;
    let fwd = ms[0].take_outgoing(&mut r).unwrap();
    let (bundles, forward): (Vec<_>, Vec<_>) = fwd
        .direct
        .into_iter()
        .partition(|(_, e)| direct_content_type(9, e) != Some(CONTENT_FORWARD));
    assert_eq!(forward.len(), 1);
    // B, not the adder, crafts a forward of a secret it holds (its own removal's epoch).
    let known: Vec<_> = n.epochs().into_iter().map(|(e, _)| e).collect();
    let epoch = ms[1]
        .current_epochs()
        .into_iter()
        .find(|e| !known.contains(e))
        .unwrap();
    let mut payload = vec![1u8];
    payload.extend_from_slice(epoch.as_bytes());
    payload.extend_from_slice(&[7u8; 32]);
    let n_card = card(9);
    let forged = sealdoc::crypto::seal_direct(
        &ed25519_dalek::SigningKey::from_bytes(&[2u8; 32]),
        &sealdoc::crypto::DirectRecipient {
            device: *nid.as_bytes(),
            kem_public: n_card.kem_public(),
        },
        &sealdoc::crypto::DirectContent {
            group: *n.group().as_bytes(),
            content_type: CONTENT_FORWARD,
            payload: &payload,
        },
        &sealdoc::group::Config::default().envelope,
        &mut r,
    )
    .unwrap();
    let err = n.receive(&forged, &mut r).unwrap_err();
    assert!(
        matches!(
            err,
            GroupError::Peer(PeerMisbehaved::ForwardNotFromAdder { .. })
        ),
        "{err:?}"
    );
    // The genuine forward first: the epoch is unknown to N, so it is held.
    let got = n.receive(&forward[0].1, &mut r).unwrap();
    assert!(
        matches!(got, Received::Pending(Pending::UnknownEpoch(_))),
        "{got:?}"
    );
    let got = deliver(&mut n, &content, &mut r);
    assert!(matches!(got[..], [Received::Pending(_)]), "{got:?}");
    assert_eq!(n.doc().get("x"), None);
    // Then the epoch's op: the held forward applies, and the parked content opens.
    for (_, e) in &bundles {
        let _ = n.receive(e, &mut r).unwrap();
    }
    while n.backlog() > 0 {
        let _ = n.drain();
    }
    assert_eq!(n.doc().get("x"), Some(json!("merged")));
}

/// A removed device's key update concurrent with its removal is not a head for anyone who has
/// seen the removal, whatever the order.
#[test]
fn a_removed_devices_concurrent_key_update_is_never_used() {
    let mut r = rng(3);
    // 0 = A, 1 = C, 2 = E, 3 = D (removed).
    let mut ms = group(4, GroupPolicy::future_only(), Role::Admin, &mut r);
    let d = ms[3].device_id();
    let rem = ms[0].remove(&[d], &mut r).unwrap().outbound;
    let ku = ms[3].key_update(&mut r).unwrap().outbound;
    // C: removal first; E: key update first.
    send_to(&mut ms, &[1], &rem, &mut r);
    send_to(&mut ms, &[1, 2], &ku, &mut r);
    send_to(&mut ms, &[2], &rem, &mut r);
    deliver(&mut ms[0], &ku, &mut r);
    for i in 0..3 {
        assert_eq!(ms[i].current_epochs(), ms[0].current_epochs());
        assert_eq!(ms[i].current_epochs().len(), 1, "only the removal's epoch");
        let out = ms[i]
            .change(|tx| tx.set("k", i as i64), &mut r)
            .unwrap()
            .outbound;
        for env in &out.broadcast {
            assert!(ms[3].open_envelope(env).is_err(), "sender {i}");
        }
    }
}

/// A removed admin concurrently adds an accomplice: after the merge the accomplice is not a
/// member, its ops are invalid (no effect), and it cannot read post-merge traffic.
#[test]
fn an_accomplice_added_by_a_removed_admin_is_not_a_member() {
    let mut r = rng(4);
    // 0 = A, 1 = C, 2 = D (admin, removed).
    let mut ms = admins(3, GroupPolicy::future_only(), &mut r);
    let d = ms[2].device_id();
    let rem = ms[0].remove(&[d], &mut r).unwrap().outbound;
    let x = joiner(20);
    let add = ms[2]
        .add(&x.contact_card().unwrap(), Role::Admin, &mut r)
        .unwrap()
        .outbound;
    let mut x = welcome(x, &add);
    let xid = x.device_id();
    // The accomplice writes and adds a second accomplice.
    let xw = x
        .change(|tx| tx.set("owned", true), &mut r)
        .unwrap()
        .outbound;
    let y = joiner(21);
    let xa = x
        .add(&y.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    let yid = y.device_id();
    // C gets the accomplice's traffic before the removal; A after it.
    send_to(&mut ms, &[1], &add, &mut r);
    send_to(&mut ms, &[1], &xw, &mut r);
    send_to(&mut ms, &[1], &xa, &mut r);
    assert_eq!(ms[1].doc().get("owned"), Some(json!(true)));
    send_to(&mut ms, &[1], &rem, &mut r);
    deliver(&mut ms[0], &add, &mut r);
    deliver(&mut ms[0], &xw, &mut r);
    deliver(&mut ms[0], &xa, &mut r);
    for m in &ms[..2] {
        let ids = member_ids(m);
        assert!(!ids.contains(&xid) && !ids.contains(&yid) && !ids.contains(&d));
        assert_eq!(
            m.doc().get("owned"),
            None,
            "the accomplice's edit is whited out"
        );
        assert_eq!(m.doc().canonical_state(), ms[0].doc().canonical_state());
    }
    assert_eq!(member_ids(&ms[0]), member_ids(&ms[1]));
    let out = ms[1].change(|tx| tx.set("z", 1), &mut r).unwrap().outbound;
    for env in &out.broadcast {
        assert!(x.open_envelope(env).is_err());
    }
}

/// Two admins remove each other concurrently: both are removed, everywhere, whatever the
/// order.
#[test]
fn mutual_removals_both_apply() {
    let mut r = rng(5);
    // 0 = A, 1 = B, 2 = C, 3 = E.
    let mut ms = admins(4, GroupPolicy::full_history(), &mut r);
    let (a, b) = (ms[0].device_id(), ms[1].device_id());
    let ra = ms[0].remove(&[b], &mut r).unwrap().outbound;
    let rb = ms[1].remove(&[a], &mut r).unwrap().outbound;
    send_to(&mut ms, &[2], &ra, &mut r);
    send_to(&mut ms, &[2], &rb, &mut r);
    send_to(&mut ms, &[3], &rb, &mut r);
    send_to(&mut ms, &[3], &ra, &mut r);
    let want = vec![ms[2].device_id(), ms[3].device_id()];
    let mut want = want;
    want.sort();
    assert_eq!(member_ids(&ms[2]), want);
    assert_eq!(member_ids(&ms[3]), want);
    assert_eq!(ms[2].current_epochs(), ms[3].current_epochs());
}

/// A removal voids the removed admin's concurrent removal of someone else (strong removal),
/// but not its ops in the removal's causal past, and every order agrees.
#[test]
fn a_removed_admins_concurrent_removal_of_a_third_member_is_void() {
    let mut r = rng(6);
    // 0 = A, 1 = B, 2 = C, 3 = E.
    let mut ms = admins(4, GroupPolicy::future_only(), &mut r);
    let (b, c) = (ms[1].device_id(), ms[2].device_id());
    let ra = ms[0].remove(&[b], &mut r).unwrap().outbound;
    let rb = ms[1].remove(&[c], &mut r).unwrap().outbound;
    send_to(&mut ms, &[2], &ra, &mut r);
    send_to(&mut ms, &[2], &rb, &mut r);
    send_to(&mut ms, &[3], &rb, &mut r);
    assert!(!member_ids(&ms[3]).contains(&c), "before the removal of B");
    send_to(&mut ms, &[3], &ra, &mut r);
    deliver(&mut ms[0], &rb, &mut r);
    for m in [&ms[0], &ms[2], &ms[3]] {
        let ids = member_ids(m);
        assert!(ids.contains(&c), "C stays");
        assert!(!ids.contains(&b));
        assert_eq!(ids, member_ids(&ms[0]));
    }
}

/// Demoting an admin voids its concurrent membership ops.
#[test]
fn a_demoted_admins_concurrent_add_is_void() {
    let mut r = rng(7);
    let mut ms = admins(3, GroupPolicy::future_only(), &mut r);
    let b = ms[1].device_id();
    let demote = ms[0].set_role(&b, Role::Writer, &mut r).unwrap().outbound;
    let x = joiner(30);
    let add = ms[1]
        .add(&x.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    send_to(&mut ms, &[2], &add, &mut r);
    assert!(member_ids(&ms[2]).contains(&x.device_id()));
    send_to(&mut ms, &[2], &demote, &mut r);
    deliver(&mut ms[0], &add, &mut r);
    deliver(&mut ms[1], &demote, &mut r);
    for m in &ms {
        assert!(!member_ids(m).contains(&x.device_id()));
        assert_eq!(m.role(&b), Some(Role::Writer));
    }
}

/// Backdating: a removed writer's ops concurrent with its removal are whited out on every
/// replica, whether they arrive before or after the removal; its ops in the removal's causal
/// past stay, even when delivered late. An honest insert after a whited-out element keeps its
/// place.
#[test]
fn backdated_ops_are_whited_out_in_every_order() {
    let mut r = rng(8);
    // 0 = A (admin), 1 = W (writer, removed), 2 = H, 3 = P, 4 = Q (writers).
    let mut ms = group(5, GroupPolicy::full_history(), Role::Writer, &mut r);
    let w = ms[1].device_id();
    let base = ms[0]
        .change(|tx| tx.set("list", json!(["a"])), &mut r)
        .unwrap()
        .outbound;
    for m in ms.iter_mut().skip(1) {
        deliver(m, &base, &mut r);
    }
    // Y: W's edit that A sees before removing W.
    let y = ms[1]
        .change(|tx| tx.set("kept", "y"), &mut r)
        .unwrap()
        .outbound;
    deliver(&mut ms[0], &y, &mut r);
    let rem = ms[0].remove(&[w], &mut r).unwrap().outbound;
    // X: W's edits on stale dependencies (without the removal).
    let x = ms[1]
        .change(
            |tx| {
                tx.set("title", "mine")?;
                tx.push("list", "w")?;
                tx.delete(sealdoc::doc::Path::from("list").index(0))
            },
            &mut r,
        )
        .unwrap()
        .outbound;
    // H sees X before the removal and inserts after W's element.
    deliver(&mut ms[2], &y, &mut r);
    deliver(&mut ms[2], &x, &mut r);
    assert_eq!(ms[2].doc().get("list"), Some(json!(["w"])));
    let h = ms[2]
        .change(|tx| tx.push("list", "h"), &mut r)
        .unwrap()
        .outbound;
    deliver(&mut ms[2], &rem, &mut r);
    // P: removal first (waits for Y), then X, then Y, then H.
    let p = 3;
    let rs = deliver(&mut ms[p], &rem, &mut r);
    assert!(rs.iter().any(|x| matches!(x, Received::Pending(_))));
    deliver(&mut ms[p], &x, &mut r);
    deliver(&mut ms[p], &y, &mut r);
    deliver(&mut ms[p], &h, &mut r);
    // Q: everything in causal order, the removal last.
    let q = 4;
    deliver(&mut ms[q], &y, &mut r);
    deliver(&mut ms[q], &x, &mut r);
    deliver(&mut ms[q], &h, &mut r);
    // The removal voids X, already applied: the document is rebuilt, and the patches the
    // removal returns still take a UI's view from the old JSON to the new one.
    let mut view = ms[q].doc().to_json();
    assert_eq!(view["title"], json!("mine"));
    for got in deliver(&mut ms[q], &rem, &mut r) {
        if let Received::Applied(patches) = got {
            for p in patches {
                assert!(p.apply_to(&mut view), "{p:?}");
            }
        }
    }
    assert_eq!(view, ms[q].doc().to_json());
    deliver(&mut ms[0], &x, &mut r);
    deliver(&mut ms[0], &h, &mut r);
    for i in [0, 2, 3, 4] {
        let m = &ms[i];
        assert_eq!(m.doc().get("kept"), Some(json!("y")), "replica {i}");
        assert_eq!(m.doc().get("title"), None, "replica {i}");
        assert_eq!(m.doc().get("list"), Some(json!(["a", "h"])), "replica {i}");
        assert_eq!(m.doc().canonical_state(), ms[0].doc().canonical_state());
        assert_eq!(m.heads(), ms[0].heads());
    }
}

/// Equivocating key updates (one author, one sequence number, two secrets, each sent to half
/// the group) both become heads; the group converges, and everyone reads what anyone sends.
#[test]
fn equivocating_key_updates_converge() {
    let mut r = rng(9);
    let mut ms = admins(4, GroupPolicy::future_only(), &mut r);
    let mut kems: Vec<(DeviceId, KemPublicKey)> = ms
        .iter()
        .map(|m| (m.device_id(), *m.contact_card().kem_public()))
        .collect();
    kems.sort_by_key(|(d, _)| *d);
    let n1 = crafted_key_update(&mut ms[3], &kems, 1, None);
    let n2 = crafted_key_update(&mut ms[3], &kems, 2, None);
    let e1 = ms[3].seal_envelope(&n1, &[], &mut r).unwrap();
    let e2 = ms[3].seal_envelope(&n2, &[], &mut r).unwrap();
    let _ = ms[0].receive(&e1, &mut r).unwrap();
    let _ = ms[1].receive(&e2, &mut r).unwrap();
    let _ = ms[2].receive(&e1, &mut r).unwrap();
    let _ = ms[2].receive(&e2, &mut r).unwrap();
    let _ = ms[0].receive(&e2, &mut r).unwrap();
    let _ = ms[1].receive(&e1, &mut r).unwrap();
    assert_eq!(ms[2].current_epochs().len(), 2);
    let out = ms[2].change(|tx| tx.set("a", 1), &mut r).unwrap().outbound;
    send_to(&mut ms, &[0, 1], &out, &mut r);
    assert_eq!(ms[0].doc().get("a"), Some(json!(1)));
    assert_eq!(ms[1].doc().get("a"), Some(json!(1)));
    assert_eq!(ms[0].current_epochs(), ms[1].current_epochs());
}

/// Nothing reads a clock. By construction: no API of the group, graph or document layers
/// takes a time, and their sources name no clock (checked here), so changing the system
/// clock cannot change any result.
#[test]
fn nothing_reads_a_clock() {
    let root = env!("CARGO_MANIFEST_DIR");
    for dir in ["src/group", "src/group/member", "src/graph", "src/doc"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for clock in ["SystemTime", "Instant::now", "chrono::", "UNIX_EPOCH"] {
                    assert!(!text.contains(clock), "{} names {clock}", path.display());
                }
            }
        }
    }
}

/// Cost of a late removal that whites out already-applied nodes: the document is rebuilt by
/// replaying the graph (signatures verified again). Prints the time; run with `--nocapture`.
#[test]
fn late_removal_rebuild_cost() {
    let mut r = rng(10);
    let mut ms = group(3, GroupPolicy::future_only(), Role::Writer, &mut r);
    let w = ms[1].device_id();
    let rem = ms[0].remove(&[w], &mut r).unwrap().outbound;
    let edits = 500;
    let mut outs = Vec::new();
    for k in 0..edits {
        outs.push(
            ms[1]
                .change(|tx| tx.set(format!("k{}", k % 50).as_str(), k), &mut r)
                .unwrap()
                .outbound,
        );
    }
    for o in &outs {
        deliver(&mut ms[2], o, &mut r);
    }
    assert!(ms[2].doc().get("k0").is_some());
    let t = std::time::Instant::now(); // test timing only; the library reads no clock
    deliver(&mut ms[2], &rem, &mut r);
    let spent = t.elapsed();
    eprintln!(
        "late removal whiting out {edits} applied nodes ({} in the graph): {spent:?}",
        ms[2].log().len()
    );
    assert!(ms[2].doc().get("k0").is_none());
}

/// A forward from the adder whose payload is truncated, extended, empty, oversized or of
/// another version is a typed decode error; a bit-flipped forward envelope does not open.
/// Neither changes anything.
#[test]
fn malformed_forwards_are_refused_and_change_nothing() {
    let mut r = rng(21);
    let mut ms = admins(2, GroupPolicy::future_only(), &mut r);
    let n = joiner(9);
    let add = ms[0]
        .add(&n.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    let mut n = welcome(n, &add);
    let epoch = ms[0].current_epochs()[0];
    let mut good = vec![1u8];
    good.extend_from_slice(epoch.as_bytes());
    good.extend_from_slice(&[7u8; 32]);
    let n_card = card(9);
    let (nid, group) = (n.device_id(), n.group());
    // A (device seed 1) is N's adder: its signature is the one N accepts forwards under.
    let from_adder = |payload: &[u8], r: &mut ChaCha20Rng| {
        sealdoc::crypto::seal_direct(
            &ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]),
            &sealdoc::crypto::DirectRecipient {
                device: *nid.as_bytes(),
                kem_public: n_card.kem_public(),
            },
            &sealdoc::crypto::DirectContent {
                group: *group.as_bytes(),
                content_type: CONTENT_FORWARD,
                payload,
            },
            &sealdoc::group::Config::default().envelope,
            r,
        )
        .unwrap()
    };
    let before = snapshot(&n);
    for payload in [
        good[..good.len() - 1].to_vec(),
        [&good[..], &[0]].concat(),
        [&[2u8][..], &good[1..]].concat(),
        Vec::new(),
        vec![1u8; 16 * 1024],
    ] {
        let env = from_adder(&payload, &mut r);
        let err = n.receive(&env, &mut r).unwrap_err();
        assert!(matches!(err, GroupError::Decode(_)), "{err:?}");
        assert_eq!(snapshot(&n), before);
    }
    let mut flipped = from_adder(&good, &mut r);
    for at in [0, 5, 40, flipped.len() / 2, flipped.len() - 1] {
        flipped[at] ^= 0x04;
        assert!(n.receive(&flipped, &mut r).is_err(), "byte {at}");
        flipped[at] ^= 0x04;
        assert_eq!(snapshot(&n), before);
    }
}
