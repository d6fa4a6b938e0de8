//! Roles, checked against each op's causal past: readers cannot edit, writers cannot manage
//! members, any member may rotate, and admins may change roles.

use sealdoc::group::{Action, ApiMisuse, GroupError, GroupPolicy, Member, PeerMisbehaved, Role};
use serde_json::json;

use crate::common::*;

/// Alice (admin), Wes (writer, device 2), Rita (reader, device 3), all synced.
fn roles() -> Vec<Member> {
    let mut r = rng(80);
    let mut ms = group(2, GroupPolicy::full_history(), Role::Writer, &mut r);
    let j = joiner(3);
    let out = ms[0]
        .add(&j.contact_card().unwrap(), Role::Reader, &mut r)
        .unwrap()
        .outbound;
    deliver(&mut ms[1], &out, &mut r);
    ms.push(welcome(j, &out));
    ms
}

#[test]
fn readers_cannot_edit() {
    let mut ms = roles();
    let mut r = rng(81);
    assert_eq!(ms[2].role(&ms[2].device_id()), Some(Role::Reader));
    let err = ms[2].change(|tx| tx.set("x", 1), &mut r).unwrap_err();
    assert!(
        matches!(
            err,
            GroupError::Misuse(ApiMisuse::NotPermitted {
                role: Role::Reader,
                action: Action::Edit
            })
        ),
        "{err:?}"
    );
    // A reader that edits anyway (a modified client) is refused by everyone.
    ms[2].danger_skip_local_checks(true);
    let out = ms[2].change(|tx| tx.set("x", 1), &mut r).unwrap().outbound;
    for m in &mut ms[..2] {
        let before = snapshot(m);
        let err = m.receive(&out.broadcast[0], &mut r).unwrap_err();
        assert!(
            matches!(
                err,
                GroupError::Peer(PeerMisbehaved::RoleTooLow {
                    role: Role::Reader,
                    action: Action::Edit,
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(err.is_invalid_node());
        assert_eq!(snapshot(m), before);
        assert_eq!(m.doc().get("x"), None);
    }
}

#[test]
fn writers_cannot_add_remove_or_change_roles() {
    let mut ms = roles();
    let mut r = rng(82);
    let card = card(7);
    let rita = ms[2].device_id();
    for err in [
        ms[1].add(&card, Role::Writer, &mut r).unwrap_err(),
        ms[1].remove(&[rita], &mut r).unwrap_err(),
        ms[1].set_role(&rita, Role::Admin, &mut r).unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                GroupError::Misuse(ApiMisuse::NotPermitted {
                    role: Role::Writer,
                    ..
                })
            ),
            "{err:?}"
        );
    }
    // A writer that adds anyway is refused by everyone, and the device is not a member.
    ms[1].danger_skip_local_checks(true);
    let out = ms[1].add(&card, Role::Admin, &mut r).unwrap().outbound;
    assert!(
        out.direct.is_empty(),
        "no welcome for an op the writer could not apply"
    );
    for i in [0, 2] {
        let before = snapshot(&ms[i]);
        let err = ms[i].receive(&out.broadcast[0], &mut r).unwrap_err();
        assert!(
            matches!(
                err,
                GroupError::Peer(PeerMisbehaved::RoleTooLow {
                    role: Role::Writer,
                    action: Action::Add,
                    ..
                })
            ),
            "{err:?}"
        );
        assert_eq!(snapshot(&ms[i]), before);
        assert_eq!(ms[i].members().len(), 3);
    }
}

#[test]
fn any_member_may_rotate_and_admins_may_change_roles() {
    let mut ms = roles();
    let mut r = rng(83);
    let before = ms[0].current_epochs();
    let out = ms[2].key_update(&mut r).unwrap().outbound;
    broadcast(&mut ms, 2, &out, &mut r);
    let after = ms[0].current_epochs();
    assert_ne!(before, after);
    assert_eq!(ms[1].current_epochs(), after);
    // Alice makes Rita a writer; Rita's edit is now valid everywhere.
    let rita = ms[2].device_id();
    let out = ms[0]
        .set_role(&rita, Role::Writer, &mut r)
        .unwrap()
        .outbound;
    broadcast(&mut ms, 0, &out, &mut r);
    assert_eq!(ms[1].role(&rita), Some(Role::Writer));
    assert_eq!(
        ms[0].current_epochs(),
        after,
        "a role change does not rotate"
    );
    let out = ms[2]
        .change(|tx| tx.set("rita", true), &mut r)
        .unwrap()
        .outbound;
    broadcast(&mut ms, 2, &out, &mut r);
    assert_eq!(ms[1].doc().get("rita"), Some(json!(true)));
    // Demoted again, her next edit is refused, but the earlier one stays.
    let out = ms[0]
        .set_role(&rita, Role::Reader, &mut r)
        .unwrap()
        .outbound;
    broadcast(&mut ms, 0, &out, &mut r);
    ms[2].danger_skip_local_checks(true);
    let out = ms[2]
        .change(|tx| tx.set("rita", false), &mut r)
        .unwrap()
        .outbound;
    let err = ms[1].receive(&out.broadcast[0], &mut r).unwrap_err();
    assert!(matches!(
        err,
        GroupError::Peer(PeerMisbehaved::RoleTooLow { .. })
    ));
    assert_eq!(ms[1].doc().get("rita"), Some(json!(true)));
}

#[test]
fn membership_commands_check_their_targets() {
    let mut ms = roles();
    let mut r = rng(84);
    let alice = ms[0].device_id();
    let wes_card = ms[1].contact_card();
    assert!(matches!(
        ms[0].remove(&[alice], &mut r).unwrap_err(),
        GroupError::Misuse(ApiMisuse::RemoveSelf)
    ));
    assert!(matches!(
        ms[0].remove(&[id(42)], &mut r).unwrap_err(),
        GroupError::Misuse(ApiMisuse::UnknownMember { .. })
    ));
    assert!(matches!(
        ms[0].add(&wes_card, Role::Reader, &mut r).unwrap_err(),
        GroupError::Misuse(ApiMisuse::AlreadyMember { .. })
    ));
    assert!(matches!(
        ms[0].remove(&[], &mut r).unwrap_err(),
        GroupError::Misuse(ApiMisuse::BadDeviceList)
    ));
    // An admin that re-adds a member anyway is refused by the others.
    ms[0].danger_skip_local_checks(true);
    let out = ms[0].add(&wes_card, Role::Admin, &mut r).unwrap().outbound;
    let err = ms[2].receive(&out.broadcast[0], &mut r).unwrap_err();
    assert!(
        matches!(err, GroupError::Peer(PeerMisbehaved::AlreadyMember { .. })),
        "{err:?}"
    );
}
