//! Rule K2 and the history policy, for key updates crafted by a misbehaving member: a
//! rotation that leaves a member out, or seals to a removed device, is invalid for everyone.

use sealdoc::crypto::{seal_epoch_secret, EpochSecret, KemPublicKey, SealContext, SealRecipient};
use sealdoc::graph::{DeviceId, Payload};
use sealdoc::group::{ControlOp, GroupError, GroupPolicy, KeyUpdate, Member, PeerMisbehaved, Role};

use crate::common::*;

/// A key update by `m` sealed to `to` (in this order), with `history`.
fn crafted(m: &mut Member, to: &[(DeviceId, KemPublicKey)], history: Option<Vec<u8>>) -> Vec<u8> {
    let mut r = rng(90);
    let secret = EpochSecret::generate(&mut r);
    let ctx = SealContext {
        group: *m.group().as_bytes(),
        author: *m.device_id().as_bytes(),
        salt: [7; 16],
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
            seal_epoch_secret(&secret, &ctx, &rcpt, &mut r).unwrap()
        })
        .collect();
    let op = ControlOp::KeyUpdate {
        key: KeyUpdate {
            salt: [7; 16],
            sealed,
            history,
        },
    };
    let body = next_body(m, Payload::Group(op.encode()));
    let node = m.sign_node(&body).unwrap();
    m.seal_envelope(&node, &[], &mut r).unwrap()
}

fn kems(ms: &[Member]) -> Vec<(DeviceId, KemPublicKey)> {
    let mut v: Vec<_> = ms
        .iter()
        .map(|m| (m.device_id(), *m.contact_card().kem_public()))
        .collect();
    v.sort_by_key(|(d, _)| *d);
    v
}

fn refused(m: &mut Member, env: &[u8], check: impl Fn(&PeerMisbehaved) -> bool) {
    let before = snapshot(m);
    let err = m.receive(env, &mut rng(0)).unwrap_err();
    match &err {
        GroupError::Peer(p) => assert!(check(p), "{p:?}"),
        other => panic!("{other:?}"),
    }
    assert!(err.is_invalid_node());
    assert_eq!(snapshot(m), before);
}

#[test]
fn a_rotation_that_omits_a_member_is_invalid() {
    let mut ms = group(3, GroupPolicy::future_only(), Role::Writer, &mut rng(91));
    let all = kems(&ms);
    let without_carol: Vec<_> = all
        .iter()
        .copied()
        .filter(|(d, _)| *d != ms[2].device_id())
        .collect();
    let env = crafted(&mut ms[1], &without_carol, None);
    refused(&mut ms[0], &env, |p| {
        matches!(
            p,
            PeerMisbehaved::SealedCount {
                expected: 3,
                found: 2
            }
        )
    });
}

#[test]
fn a_rotation_that_includes_a_removed_device_is_invalid() {
    let mut r = rng(92);
    let mut ms = group(4, GroupPolicy::future_only(), Role::Writer, &mut r);
    let all = kems(&ms);
    let dave = ms[3].device_id();
    let out = ms[0].remove(&[dave], &mut r).unwrap().outbound;
    broadcast(&mut ms, 0, &out, &mut r);
    // Sealed to the three members and Dave, in device order.
    let env = crafted(&mut ms[1], &all, None);
    refused(&mut ms[2], &env, |p| {
        matches!(
            p,
            PeerMisbehaved::SealedCount {
                expected: 3,
                found: 4
            }
        )
    });
    // Dave in Carol's place: the count is right, the key is not.
    let carol = ms[2].device_id();
    let swapped: Vec<_> = kems(&ms[..3])
        .into_iter()
        .map(|(d, k)| {
            if d == carol {
                (d, all.iter().find(|x| x.0 == dave).unwrap().1)
            } else {
                (d, k)
            }
        })
        .collect();
    let env = crafted(&mut ms[1], &swapped, None);
    refused(
        &mut ms[0],
        &env,
        |p| matches!(p, PeerMisbehaved::SealedRecipient { device, .. } if *device == carol),
    );
}

#[test]
fn a_rotation_against_the_history_policy_is_invalid() {
    let mut r = rng(93);
    let mut full = group(2, GroupPolicy::full_history(), Role::Writer, &mut r);
    let to = kems(&full);
    let env = crafted(&mut full[1], &to, None);
    refused(&mut full[0], &env, |p| {
        matches!(p, PeerMisbehaved::HistoryPolicy { present: false })
    });
    let mut future = group(2, GroupPolicy::future_only(), Role::Writer, &mut r);
    let to = kems(&future);
    let env = crafted(&mut future[1], &to, Some(vec![1, 2, 3]));
    refused(&mut future[0], &env, |p| {
        matches!(p, PeerMisbehaved::HistoryPolicy { present: true })
    });
    // The well-formed one is accepted.
    let env = crafted(&mut future[1], &to, None);
    assert!(applied(&future[0].receive(&env, &mut r).unwrap()));
}
