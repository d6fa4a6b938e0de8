//! Hostile bytes: random and mutated envelopes, control ops and welcome chunks never panic,
//! and never change a member's state except by parking (bounded).

use proptest::prelude::*;
use sealdoc::group::{ControlOp, GroupPolicy, Member, Role};

use crate::common::*;

fn setup() -> (Vec<Member>, Vec<Vec<u8>>) {
    let mut r = rng(120);
    let mut ms = group(2, GroupPolicy::full_history(), Role::Writer, &mut r);
    let mut samples = Vec::new();
    samples.extend(
        ms[0]
            .change(|tx| tx.set("x", 1), &mut r)
            .unwrap()
            .outbound
            .broadcast,
    );
    samples.extend(ms[0].key_update(&mut r).unwrap().outbound.broadcast);
    let add = ms[0].add(&card(7), Role::Reader, &mut r).unwrap().outbound;
    samples.extend(add.broadcast);
    samples.extend(add.direct.into_iter().map(|(_, e)| e));
    let alice = ms[0].device_id();
    let req = ms[1].sync_request(&alice, &mut r).unwrap();
    samples.push(req.direct[0].1.clone());
    (ms, samples)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn mutated_envelopes_never_panic_or_change_state(
        which in 0usize..6,
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<Option<usize>>(),
    ) {
        let (mut ms, samples) = setup();
        let mut env = samples[which % samples.len()].clone();
        for (at, x) in flips {
            let n = env.len();
            env[at % n] ^= x | 1;
        }
        if let Some(c) = cut {
            env.truncate(c % (env.len() + 1));
        }
        let before = snapshot(&ms[0]);
        let res = ms[0].receive(&env, &mut rng(1));
        let after = snapshot(&ms[0]);
        // Only a parked envelope may change anything; nothing is ever applied.
        prop_assert_eq!((&after.heads, &after.state, &after.members), (&before.heads, &before.state, &before.members));
        if !matches!(res, Ok(sealdoc::group::Received::Pending(_))) {
            prop_assert_eq!(after.parked, before.parked);
        }
        let mut j = joiner(9);
        let _ = j.receive(&env);
        prop_assert!(!j.is_welcomed());
    }

    #[test]
    fn random_control_ops_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = ControlOp::decode(&bytes);
        let mut v = vec![1u8];
        v.extend_from_slice(&bytes);
        let _ = ControlOp::decode(&v);
    }
}
