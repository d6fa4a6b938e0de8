//! Costs of the group layer, next to the primitives it is built from, measured in the same
//! run.
//!
//! * Primitives: XChaCha20-Poly1305 seal and open of the same plaintext sizes as the
//!   envelopes below; Ed25519 `sign` and `verify_strict` of a node-sized message.
//! * Changes: a member makes one-op and 100-op changes (`make`: document transaction, encode,
//!   sign, seal); `seal` alone re-encrypts the same node under the group key; another member
//!   `open`s the envelopes alone, and `receive`s them (open, decode, verify, validate against
//!   the causal past, apply).
//! * Membership: adding a device to a group of 2, 10 and 100 devices (seal the new epoch to
//!   every device, sign, seal, build the welcome), and a member processing that `Add`; then
//!   removing it again, with rotation, and a member processing the `Remove`.
//!
//! Run: `cargo bench --bench group`. Set `SEALDOC_BENCH_QUICK=1` for fewer iterations, and
//! `SEALDOC_BENCH_ONLY=changes` to skip the membership rows.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signer, SigningKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sealdoc::crypto::{DeviceKemSecret, EpochId, VerifiedContactCard};
use sealdoc::graph::Device;
use sealdoc::group::{GroupPolicy, Joiner, Member, Outbound, Received, Role};
use serde_json::json;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn device(seed: u64) -> (Device, DeviceKemSecret) {
    let mut r = rng(seed ^ 0xdead_beef);
    let mut s = [0u8; 32];
    rand_chacha::rand_core::RngCore::fill_bytes(&mut r, &mut s);
    (Device::from_seed(&s), DeviceKemSecret::generate(&mut r))
}

fn joiner(seed: u64) -> Joiner {
    let (d, k) = device(seed);
    Joiner::new(d, k)
}

fn card(seed: u64) -> VerifiedContactCard {
    joiner(seed).contact_card().unwrap()
}

fn welcome(mut j: Joiner, out: &Outbound) -> Member {
    let me = j.device_id();
    for (to, env) in &out.direct {
        if *to == me {
            let _ = j.receive(env).unwrap();
        }
    }
    j.finish().unwrap().member
}

struct Row {
    name: String,
    per: Duration,
    bytes: usize,
    note: String,
}

fn time<T>(n: usize, mut f: impl FnMut(usize) -> T) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        black_box(f(i));
    }
    start.elapsed() / n.max(1) as u32
}

fn print(rows: &[Row]) {
    println!(
        "{:<44} {:>11} {:>10} {:>11}  note",
        "operation", "µs/op", "bytes", "MB/s"
    );
    for r in rows {
        let us = r.per.as_secs_f64() * 1e6;
        let mbs = if r.bytes > 0 {
            format!("{:.1}", r.bytes as f64 / r.per.as_secs_f64() / 1e6)
        } else {
            String::new()
        };
        println!(
            "{:<44} {:>11.2} {:>10} {:>11}  {}",
            r.name,
            us,
            if r.bytes > 0 {
                r.bytes.to_string()
            } else {
                String::new()
            },
            mbs,
            r.note
        );
    }
}

fn primitives(rows: &mut Vec<Row>, sizes: &[usize], n: usize) {
    let aead = XChaCha20Poly1305::new(&[7u8; 32].into());
    let nonce = XNonce::from([9u8; 24]);
    for &size in sizes {
        let mut buf = vec![0x5a; size];
        let per = time(n, |_| {
            let tag = aead
                .encrypt_in_place_detached(&nonce, b"aad", &mut buf)
                .unwrap();
            black_box(tag);
        });
        rows.push(Row {
            name: format!("raw XChaCha20-Poly1305 seal, {size} B"),
            per,
            bytes: size,
            note: String::new(),
        });
        let mut ct = vec![0x5a; size];
        let tag = aead
            .encrypt_in_place_detached(&nonce, b"aad", &mut ct)
            .unwrap();
        let per = time(n, |_| {
            let mut b = ct.clone();
            aead.decrypt_in_place_detached(&nonce, b"aad", &mut b, &tag)
                .unwrap();
            black_box(b);
        });
        rows.push(Row {
            name: format!("raw XChaCha20-Poly1305 open, {size} B"),
            per,
            bytes: size,
            note: "includes a copy".into(),
        });
    }
    let key = SigningKey::from_bytes(&[3; 32]);
    let vk = key.verifying_key();
    let msg = vec![0x11u8; 200];
    let sig = key.sign(&msg);
    rows.push(Row {
        name: "Ed25519 sign, 200 B".into(),
        per: time(n, |_| key.sign(&msg)),
        bytes: 0,
        note: String::new(),
    });
    rows.push(Row {
        name: "Ed25519 verify_strict, 200 B".into(),
        per: time(n, |_| vk.verify_strict(&msg, &sig).unwrap()),
        bytes: 0,
        note: String::new(),
    });
}

/// One-op and 100-op changes: make, seal alone, open alone, receive.
fn changes(rows: &mut Vec<Row>, n: usize) -> Vec<usize> {
    let mut r = rng(1);
    let (d, k) = device(1);
    let mut a = Member::create(d, k, GroupPolicy::full_history(), &mut r).unwrap();
    let j = joiner(2);
    let out = a
        .add(&j.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    let mut b = welcome(j, &out);
    let first = a
        .change(|tx| tx.set("list", json!([])), &mut r)
        .unwrap()
        .outbound;
    for env in &first.broadcast {
        let _ = b.receive(env, &mut r).unwrap();
    }
    let mut sizes = Vec::new();
    for ops in [1usize, 100] {
        let mut envs = Vec::with_capacity(n);
        let make = time(n, |i| {
            let out = a
                .change(
                    |tx| {
                        for k in 0..ops {
                            tx.set(format!("k{}", k % 50).as_str(), (i * ops + k) as i64)?;
                        }
                        Ok(())
                    },
                    &mut r,
                )
                .unwrap()
                .outbound;
            envs.push(out.broadcast.into_iter().next().unwrap());
        });
        let len = envs[0].len();
        sizes.push(len);
        let node = a.open_envelope(&envs[0]).unwrap().to_vec();
        rows.push(Row {
            name: format!("make {ops}-op change (doc+sign+seal)"),
            per: make,
            bytes: node.len(),
            note: format!("node {} B, envelope {} B", node.len(), len),
        });
        let seal = time(n, |_| a.seal_envelope(&node, &[], &mut r).unwrap());
        rows.push(Row {
            name: format!("seal {ops}-op node (group envelope)"),
            per: seal,
            bytes: node.len(),
            note: "hedged nonce, commitment, padding".into(),
        });
        let open = time(n, |i| b.open_envelope(&envs[i]).unwrap());
        rows.push(Row {
            name: format!("open {ops}-op envelope"),
            per: open,
            bytes: node.len(),
            note: "commitment, AEAD, padding".into(),
        });
        let recv = time(n, |i| match b.receive(&envs[i], &mut r).unwrap() {
            Received::Applied(p) => p.len(),
            other => panic!("{other:?}"),
        });
        rows.push(Row {
            name: format!("receive {ops}-op envelope"),
            per: recv,
            bytes: node.len(),
            note: "open+decode+verify+validate+apply".into(),
        });
    }
    assert_eq!(a.doc().to_json(), b.doc().to_json());
    sizes
}

/// Adding to and removing from a group of `size` devices.
fn membership(rows: &mut Vec<Row>, size: usize, n: usize) {
    let mut r = rng(size as u64);
    let (d, k) = device(1000);
    let mut a = Member::create(d, k, GroupPolicy::future_only(), &mut r).unwrap();
    // One real member to receive, then cards only (their devices never need to run).
    let j = joiner(1001);
    let out = a
        .add(&j.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    let mut b = welcome(j, &out);
    let mut next = 1002u64;
    while a.members().len() < size {
        let batch = (size - a.members().len()).min(40);
        let cards: Vec<_> = (0..batch)
            .map(|i| (card(next + i as u64), Role::Reader))
            .collect();
        next += batch as u64;
        let out = a.add_many(&cards, &mut r).unwrap().outbound;
        for env in &out.broadcast {
            let _ = b.receive(env, &mut r).unwrap();
        }
    }
    let (mut t_add, mut t_recv_add, mut t_rm, mut t_recv_rm) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    let (mut add_len, mut welcome_len, mut rm_len) = (0, 0, 0);
    for i in 0..n {
        let c = card(900_000 + i as u64);
        let t = Instant::now();
        let out = a.add(&c, Role::Writer, &mut r).unwrap().outbound;
        t_add += t.elapsed();
        add_len = out.broadcast.iter().map(Vec::len).sum();
        welcome_len = out.direct.iter().map(|(_, e)| e.len()).sum();
        let t = Instant::now();
        for env in &out.broadcast {
            let _ = b.receive(env, &mut r).unwrap();
        }
        t_recv_add += t.elapsed();
        let dev = sealdoc::graph::DeviceId::from_bytes(c.device_key().to_bytes());
        let t = Instant::now();
        let out = a.remove(&[dev], &mut r).unwrap().outbound;
        t_rm += t.elapsed();
        rm_len = out.broadcast.iter().map(Vec::len).sum();
        let t = Instant::now();
        for env in &out.broadcast {
            let _ = b.receive(env, &mut r).unwrap();
        }
        t_recv_rm += t.elapsed();
    }
    assert_eq!(a.current_epochs(), b.current_epochs());
    let _: Vec<EpochId> = b.current_epochs();
    let n32 = n as u32;
    rows.push(Row {
        name: format!("add a device to a group of {size}"),
        per: t_add / n32,
        bytes: 0,
        note: format!("op envelope {add_len} B, welcome {welcome_len} B"),
    });
    rows.push(Row {
        name: format!("receive that add ({} devices)", size + 1),
        per: t_recv_add / n32,
        bytes: 0,
        note: String::new(),
    });
    rows.push(Row {
        name: format!("remove it again with rotation ({size} left)"),
        per: t_rm / n32,
        bytes: 0,
        note: format!("op envelope {rm_len} B"),
    });
    rows.push(Row {
        name: "receive that remove".into(),
        per: t_recv_rm / n32,
        bytes: 0,
        note: String::new(),
    });
}

fn main() {
    let quick = std::env::var("SEALDOC_BENCH_QUICK").is_ok_and(|v| v != "0");
    let n = if quick { 50 } else { 500 };
    let mut rows = Vec::new();
    let mut group_rows = Vec::new();
    let sizes = changes(&mut group_rows, n);
    primitives(&mut rows, &sizes, n * 20);
    rows.append(&mut group_rows);
    if std::env::var("SEALDOC_BENCH_ONLY").as_deref() != Ok("changes") {
        for size in [2usize, 10, 100] {
            membership(&mut rows, size, if quick { 3 } else { 10 });
        }
    }
    print(&rows);
}
