//! Removal (security-design.md §4.6): the removed device keeps every key, envelope and the
//! Remove itself, and still reads nothing sent after a sender processed its removal; a removed
//! device's own nodes are refused.

use sealdoc::graph::SignedNode;
use sealdoc::group::{ControlOp, GroupError, GroupPolicy, Member, PeerMisbehaved, Role};

use crate::common::*;

/// Alice (admin), Bob, Carol, Dave (writers); Dave removed by Alice; Bob and Dave processed
/// the Remove. Returns the members and the Remove's outbound.
fn removed() -> (Vec<Member>, sealdoc::group::Outbound) {
    let mut r = rng(50);
    let mut ms = group(4, GroupPolicy::full_history(), Role::Writer, &mut r);
    // Some history Dave holds.
    let out = ms[3]
        .change(|tx| tx.set("by dave", 1), &mut r)
        .unwrap()
        .outbound;
    broadcast(&mut ms, 3, &out, &mut r);
    let d = ms[3].device_id();
    let remove = ms[0].remove(&[d], &mut r).unwrap().outbound;
    broadcast(&mut ms, 0, &remove, &mut r);
    (ms, remove)
}

#[test]
fn a_removed_device_cannot_read_what_is_sent_after_the_removal() {
    let (mut ms, _) = removed();
    let mut r = rng(51);
    assert!(!ms[3].is_member());
    assert_eq!(ms[3].members().len(), 3);
    for who in [0, 1, 2] {
        let out = ms[who]
            .change(|tx| tx.set("after", who as i64), &mut r)
            .unwrap()
            .outbound;
        for env in &out.broadcast {
            let before = snapshot(&ms[3]);
            let err = ms[3].receive(env, &mut r).unwrap_err();
            assert!(matches!(err, GroupError::NotRecipient { .. }), "{err:?}");
            assert_eq!(snapshot(&ms[3]), before);
            assert!(matches!(
                ms[3].open_envelope(env),
                Err(GroupError::NotRecipient { .. })
            ));
        }
        for (i, m) in ms.iter_mut().enumerate().take(3) {
            if i != who {
                deliver(m, &out, &mut r);
            }
        }
    }
    // Dave holds the key of every epoch up to its removal, and none after.
    let keys = ms[3].epochs();
    let current = ms[3].current_epochs();
    assert_eq!(current.len(), 1);
    assert!(keys.iter().any(|(id, held)| *id == current[0] && !held));
    assert!(keys
        .iter()
        .filter(|(id, _)| *id != current[0])
        .all(|(_, held)| *held));
    assert_eq!(ms[1].doc().get("after"), ms[2].doc().get("after"));
    assert_eq!(ms[3].doc().get("after"), None);
}

#[test]
fn the_remove_seals_nothing_to_the_removed_device() {
    let (mut ms, remove) = removed();
    let dave = ms[3].contact_card();
    let node = ms[1].open_envelope(&remove.broadcast[0]).unwrap();
    let ControlOp::Remove { targets, key } = control_of(&node) else {
        panic!("not a remove")
    };
    assert_eq!(targets, vec![ms[3].device_id()]);
    assert_eq!(key.sealed.len(), 3);
    assert!(key
        .sealed
        .iter()
        .all(|s| s.kem_key_id() != dave.kem_key_id()));
    // Dave can read the Remove itself (it is sent under the epoch he still holds) but not
    // the epoch it creates.
    assert!(ms[3].open_envelope(&remove.broadcast[0]).is_ok());
}

#[test]
fn a_removed_device_with_a_current_key_signing_a_valid_node_is_not_a_member() {
    let (mut ms, _) = removed();
    let mut r = rng(52);
    // Dave's node depends on his removal (his heads include it) and is encrypted under the
    // last epoch he holds, which Bob still holds too.
    let body = next_body(&ms[3], set_op("sneaky", 1));
    let node = ms[3].sign_node(&body).unwrap();
    let hash = SignedNode::decode(&node).unwrap().hash();
    let last_key = ms[3]
        .epochs()
        .into_iter()
        .filter(|(_, held)| *held)
        .map(|(id, _)| id)
        .next_back()
        .unwrap();
    let env = ms[3].seal_envelope(&node, &[last_key], &mut r).unwrap();
    let before = snapshot(&ms[1]);
    let err = ms[1].receive(&env, &mut r).unwrap_err();
    assert!(
        matches!(err, GroupError::Peer(PeerMisbehaved::NotAMember { author }) if author == ms[3].device_id()),
        "{err:?}"
    );
    assert!(err.is_invalid_node());
    assert_eq!(snapshot(&ms[1]), before);
    assert!(ms[1].log().is_invalid(&hash));
    // And under the current epoch he cannot even make an envelope.
    assert!(matches!(
        ms[3].seal_envelope(&node, &[], &mut r),
        Err(GroupError::Misuse(_))
    ));
}
