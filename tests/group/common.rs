//! Shared helpers: devices, groups, delivery, state snapshots.

#![allow(dead_code)]

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sealdoc::crypto::{DeviceKemSecret, EpochId, VerifiedContactCard};
use sealdoc::graph::{Device, DeviceId, NodeHash};
use sealdoc::group::{GroupPolicy, Joined, Joiner, Joining, Member, Outbound, Received, Role};

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Device `seed`: its Ed25519 key from `[seed; 32]`, its KEM key from a seeded RNG.
pub fn device(seed: u8) -> (Device, DeviceKemSecret) {
    let kem = DeviceKemSecret::generate(&mut ChaCha20Rng::from_seed([seed.wrapping_add(100); 32]));
    (Device::from_seed(&[seed; 32]), kem)
}

pub fn id(seed: u8) -> DeviceId {
    Device::from_seed(&[seed; 32]).id()
}

pub fn joiner(seed: u8) -> Joiner {
    let (d, k) = device(seed);
    Joiner::new(d, k)
}

pub fn card(seed: u8) -> VerifiedContactCard {
    joiner(seed).contact_card().expect("card")
}

pub fn create(seed: u8, policy: GroupPolicy, rng: &mut ChaCha20Rng) -> Member {
    let (d, k) = device(seed);
    Member::create(d, k, policy, rng).expect("create")
}

/// Feeds `j` the direct envelopes addressed to it; returns the member once welcomed.
pub fn welcome(mut j: Joiner, out: &Outbound) -> Member {
    let me = j.device_id();
    for (to, env) in &out.direct {
        if *to == me {
            let r = j.receive(env).expect("welcome chunk");
            assert!(!matches!(r, Joining::Duplicate));
        }
    }
    assert!(j.is_welcomed(), "welcome incomplete");
    let Joined { member, .. } = j.finish().expect("finish");
    member
}

/// Delivers an outbound to `to`: every broadcast and the direct envelopes addressed to it.
/// Returns the results.
pub fn deliver(to: &mut Member, out: &Outbound, rng: &mut ChaCha20Rng) -> Vec<Received> {
    let me = to.device_id();
    let mut rs = Vec::new();
    for env in &out.broadcast {
        rs.push(to.receive(env, rng).expect("receive broadcast"));
    }
    for (d, env) in &out.direct {
        if *d == me {
            rs.push(to.receive(env, rng).expect("receive direct"));
        }
    }
    while to.backlog() > 0 {
        let _ = to.drain();
    }
    rs
}

/// Delivers `out` to every member in `ms` except the one at `from`.
pub fn broadcast(ms: &mut [Member], from: usize, out: &Outbound, rng: &mut ChaCha20Rng) {
    for (i, m) in ms.iter_mut().enumerate() {
        if i != from {
            deliver(m, out, rng);
        }
    }
}

/// A group of `n` members (seeds 1..=n): member 0 created it and is an admin, the others were
/// added one by one with `role`, and everyone has processed everything.
pub fn group(n: u8, policy: GroupPolicy, role: Role, rng: &mut ChaCha20Rng) -> Vec<Member> {
    let mut ms = vec![create(1, policy, rng)];
    for seed in 2..=n {
        let j = joiner(seed);
        let out = ms[0]
            .add(&j.contact_card().unwrap(), role, rng)
            .expect("add")
            .outbound;
        for m in ms.iter_mut().skip(1) {
            deliver(m, &out, rng);
        }
        ms.push(welcome(j, &out));
    }
    ms
}

/// Everything a rejection must leave unchanged.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub heads: Vec<NodeHash>,
    pub len: usize,
    pub pending: usize,
    pub parked: (usize, usize),
    pub state: Vec<u8>,
    pub json: serde_json::Value,
    pub members: Vec<(DeviceId, Role)>,
    pub epochs: Vec<(EpochId, bool)>,
    pub current: Vec<EpochId>,
}

pub fn snapshot(m: &Member) -> Snapshot {
    Snapshot {
        heads: m.heads(),
        len: m.log().len(),
        pending: m.pending_nodes(),
        parked: m.parked(),
        state: m.doc().canonical_state(),
        json: m.doc().to_json(),
        members: m.members(),
        epochs: m.epochs(),
        current: m.current_epochs(),
    }
}

pub fn applied(r: &Received) -> bool {
    matches!(r, Received::Applied(_))
}

/// A body by `m`'s device that the graph would accept next (deps = its heads and its previous
/// node, the right sequence number and Lamport counter), carrying `payload`.
pub fn next_body(m: &Member, payload: sealdoc::graph::Payload) -> sealdoc::graph::NodeBody {
    use sealdoc::graph::wire::NODE_VERSION;
    let log = m.log();
    let me = m.device_id();
    let mine = log
        .hashes()
        .filter_map(|h| log.info(&h))
        .filter(|i| i.author == me)
        .max_by_key(|i| i.seq);
    let mut deps = m.heads();
    if let Some(p) = &mine {
        if !deps.contains(&p.hash) {
            deps.push(p.hash);
            deps.sort();
        }
    }
    let end = |h: &NodeHash| {
        let i = log.info(h).unwrap();
        if i.op_count == 0 {
            i.lamport - 1
        } else {
            i.lamport + u64::from(i.op_count) - 1
        }
    };
    let lamport = 1 + deps.iter().map(end).max().unwrap_or(0);
    sealdoc::graph::NodeBody {
        version: NODE_VERSION,
        group: m.group(),
        author: me,
        seq: mine.map_or(1, |i| i.seq + 1),
        lamport,
        deps,
        payload,
    }
}

/// A document payload of one op: `key := value` at the root.
pub fn set_op(key: &str, value: i64) -> sealdoc::graph::Payload {
    use sealdoc::graph::wire::{WireCursor, WireKey, WireMutation, WireOp, WireTag, WireValue};
    sealdoc::graph::Payload::Crdt(vec![WireOp {
        cursor: WireCursor {
            path: vec![(WireTag::Map, WireKey::Doc)],
            key: WireKey::Str(key.into()),
        },
        mutation: WireMutation::Assign(WireValue::Int(value)),
    }])
}

/// The decoded control op of a signed node.
pub fn control_of(node: &[u8]) -> sealdoc::group::ControlOp {
    let n = sealdoc::graph::SignedNode::decode(node).unwrap();
    let bytes = n.body().payload.group_bytes().expect("a control node");
    sealdoc::group::ControlOp::decode(bytes).unwrap()
}
