//! Integration tests of `sealdoc::replica`: convergence of several replicas, catch-up, restarts
//! (MemoryStore and FileStore), crashes at every storage call (kill points), damaged stores,
//! observers, and a property test of random interleavings with restarts.

// Helpers outside `#[test]` functions are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Steps and replicas are numbered; indexing by the number reads better here.
#![allow(clippy::needless_range_loop)]

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_core::CryptoRngCore;
use sealdoc::crypto::{DeviceKemSecret, StorageKey};
use sealdoc::graph::{Device, DeviceId};
use sealdoc::group::{Config, GroupPolicy, Pending, Role};
use sealdoc::replica::{
    Event, Options, Origin, Outgoing, Received, Recipient, Replica, ReplicaError,
};
use sealdoc::store::{FileStore, Loaded, MemoryStore, RecordId, RecordKind, Storage, StoreError};
use serde_json::{json, Value};
use zeroize::Zeroizing;

// ---- Helpers ------------------------------------------------------------------------------

fn key() -> StorageKey {
    StorageKey::from_bytes(Zeroizing::new([7; 32]))
}

fn rng(seed: u64) -> Box<dyn CryptoRngCore + Send> {
    Box::new(ChaCha20Rng::seed_from_u64(seed))
}

/// Device `seed`: its Ed25519 key from `[seed; 32]`, its KEM key from a seeded RNG.
fn dev(seed: u8) -> (Device, DeviceKemSecret) {
    let kem = DeviceKemSecret::generate(&mut ChaCha20Rng::from_seed([seed.wrapping_add(100); 32]));
    (Device::from_seed(&[seed; 32]), kem)
}

fn dev_id(seed: u8) -> DeviceId {
    Device::from_seed(&[seed; 32]).id()
}

fn create(store: Box<dyn Storage + Send>, seed: u8, policy: GroupPolicy, opts: Options) -> Replica {
    let (d, k) = dev(seed);
    Replica::create_with(store, key(), d, k, policy, opts, rng(u64::from(seed))).unwrap()
}

fn joiner(store: Box<dyn Storage + Send>, seed: u8, opts: Options) -> Replica {
    let (d, k) = dev(seed);
    Replica::new_joiner_with(store, key(), d, k, opts, rng(u64::from(seed) + 1000)).unwrap()
}

fn reopen(store: Box<dyn Storage + Send>, opts: Options, seed: u64) -> Replica {
    Replica::open_with(store, key(), opts, rng(seed)).unwrap()
}

fn mem() -> Box<dyn Storage + Send> {
    Box::new(MemoryStore::new())
}

fn full() -> GroupPolicy {
    GroupPolicy::full_history()
}

/// Delivers `bytes` from replica `from` to its recipients; catch-up replies are routed on.
/// Group messages go to every other replica that is a member.
fn route(rs: &mut [Replica], from: usize, to: Recipient, bytes: &[u8]) {
    let targets: Vec<usize> = match to {
        Recipient::Group => (0..rs.len())
            .filter(|&j| j != from && rs[j].is_member())
            .collect(),
        Recipient::Device(d) => (0..rs.len()).filter(|&j| rs[j].device_id() == d).collect(),
    };
    for j in targets {
        if let Received::Reply(msgs) = rs[j].receive(bytes).unwrap() {
            for (d, b) in msgs {
                route(rs, j, Recipient::Device(d), &b);
            }
        }
    }
}

/// Sends every outbox until all are empty (marking them sent).
fn flush(rs: &mut [Replica]) {
    for _ in 0..100 {
        let mut any = false;
        for i in 0..rs.len() {
            let out: Vec<Outgoing> = rs[i].outbox().to_vec();
            if out.is_empty() {
                continue;
            }
            any = true;
            for m in &out {
                route(rs, i, m.to, &m.bytes);
            }
            let ids: Vec<u64> = out.iter().map(|m| m.id).collect();
            rs[i].mark_sent(&ids).unwrap();
        }
        if !any {
            return;
        }
    }
    panic!("outboxes never drained");
}

/// Adds `j` (a joiner) to the group through `rs[admin]` and delivers everything.
fn join(rs: &mut Vec<Replica>, admin: usize, j: Replica, role: Role) {
    let card = j.contact_card();
    rs.push(j);
    let _ = rs[admin].add_member(&card, role).unwrap();
    flush(rs);
    assert!(rs.last().unwrap().is_member());
}

fn group_msgs(u: &[Outgoing]) -> Vec<Vec<u8>> {
    u.iter()
        .filter(|m| m.to == Recipient::Group)
        .map(|m| m.bytes.clone())
        .collect()
}

fn assert_converged(rs: &[Replica]) {
    let first = &rs[0];
    for r in &rs[1..] {
        assert_eq!(r.doc().to_json(), first.doc().to_json());
        assert_eq!(r.doc().canonical_state(), first.doc().canonical_state());
        assert_eq!(r.members(), first.members());
        assert_eq!(r.waiting(), (0, 0));
    }
}

/// What a replica's state is, for comparisons across restarts.
#[derive(Clone, PartialEq)]
struct St {
    json: Value,
    canon: Vec<u8>,
    log_len: usize,
    waiting: (usize, usize),
    members: Vec<(DeviceId, Role)>,
}

impl std::fmt::Debug for St {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digest = self
            .canon
            .iter()
            .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(*b));
        f.debug_struct("St")
            .field("json", &self.json)
            .field(
                "canon",
                &format_args!("{} bytes, {digest:016x}", self.canon.len()),
            )
            .field("log_len", &self.log_len)
            .field("waiting", &self.waiting)
            .field("members", &self.members)
            .finish()
    }
}

/// Equal states; `canon` also compares the canonical state, which names node hashes: a
/// command redone after a crash with fresh randomness (a key rotation) makes other nodes.
fn same(a: &St, b: &St, canon: bool) -> bool {
    if canon {
        a == b
    } else {
        a.json == b.json
            && a.log_len == b.log_len
            && a.waiting == b.waiting
            && a.members == b.members
    }
}

fn st(r: &Replica) -> St {
    St {
        json: r.doc().to_json(),
        canon: r.doc().canonical_state(),
        log_len: r.member().map_or(0, |m| m.log().len()),
        waiting: r.waiting(),
        members: r.members(),
    }
}

fn set(r: &mut Replica, k: &str, v: impl Into<Value>) -> Vec<Outgoing> {
    let v = v.into();
    r.change(|tx| tx.set(k, v)).unwrap().outgoing
}

// ---- A storage wrapper: shared, counting, failing at its k-th mutating call ---------------

/// A shared cell (`Replica` wants `Send` storage, so no `Rc<Cell>`).
#[derive(Default)]
struct Shared<T>(Mutex<T>);

impl<T: Copy> Shared<T> {
    fn get(&self) -> T {
        *self.0.lock().unwrap()
    }
    fn set(&self, v: T) {
        *self.0.lock().unwrap() = v;
    }
}

#[derive(Default)]
struct Ctl {
    calls: Shared<usize>,
    snapshots: Shared<usize>,
    /// Fail the k-th mutating call (1-based) and every one after it.
    fail_at: Shared<Option<usize>>,
    /// Perform the failing call before returning the error (the write happened, the
    /// acknowledgement was lost), instead of failing before it.
    apply_failing: Shared<bool>,
    failed: Shared<bool>,
}

struct Faulty<S> {
    inner: Arc<Mutex<S>>,
    ctl: Arc<Ctl>,
}

impl<S> Clone for Faulty<S> {
    fn clone(&self) -> Self {
        Faulty {
            inner: self.inner.clone(),
            ctl: self.ctl.clone(),
        }
    }
}

impl<S: Storage> Faulty<S> {
    fn new(inner: Arc<Mutex<S>>) -> Self {
        Faulty {
            inner,
            ctl: Arc::new(Ctl::default()),
        }
    }

    fn failing(inner: Arc<Mutex<S>>, k: usize, apply: bool) -> Self {
        let f = Self::new(inner);
        f.ctl.fail_at.set(Some(k));
        f.ctl.apply_failing.set(apply);
        f
    }

    fn mutate<T>(&self, f: impl FnOnce(&mut S) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let n = self.ctl.calls.get() + 1;
        self.ctl.calls.set(n);
        if let Some(k) = self.ctl.fail_at.get() {
            if n >= k {
                if n == k && self.ctl.apply_failing.get() {
                    let _ = f(&mut self.inner.lock().unwrap());
                }
                self.ctl.failed.set(true);
                return Err(StoreError::Io {
                    op: "write",
                    path: "injected".into(),
                    source: std::io::Error::other("injected fault"),
                });
            }
        }
        f(&mut self.inner.lock().unwrap())
    }
}

impl<S: Storage> Storage for Faulty<S> {
    fn append(&mut self, kind: RecordKind, data: &[u8]) -> Result<RecordId, StoreError> {
        self.mutate(|s| s.append(kind, data))
    }
    fn accept_pending(&mut self, pending: RecordId) -> Result<RecordId, StoreError> {
        self.mutate(|s| s.accept_pending(pending))
    }
    fn discard_pending(&mut self, pending: RecordId) -> Result<(), StoreError> {
        self.mutate(|s| s.discard_pending(pending))
    }
    fn write_snapshot(&mut self, state: &[u8], covers_through: RecordId) -> Result<(), StoreError> {
        let r = self.mutate(|s| s.write_snapshot(state, covers_through));
        if r.is_ok() {
            self.ctl.snapshots.set(self.ctl.snapshots.get() + 1);
        }
        r
    }
    fn load(&mut self) -> Result<Loaded, StoreError> {
        self.inner.lock().unwrap().load()
    }
    fn put_blob(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        self.mutate(|s| s.put_blob(name, data))
    }
    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.lock().unwrap().blob(name)
    }
    fn remove_blob(&mut self, name: &str) -> Result<bool, StoreError> {
        self.mutate(|s| s.remove_blob(name))
    }
}

/// `Replica` on main takes `Box<dyn Storage + Send>`: the wrappers here must be `Send`.
#[allow(dead_code)]
fn wrappers_are_send() {
    fn send<T: Send>() {}
    send::<Faulty<MemoryStore>>();
    send::<Faulty<FileStore>>();
    send::<Tamper>();
}

fn shared_mem() -> Arc<Mutex<MemoryStore>> {
    Arc::new(Mutex::new(MemoryStore::new()))
}

/// A store whose `load` damages what it returns.
struct Tamper {
    inner: MemoryStore,
    damage: Box<dyn Fn(&mut Loaded) + Send>,
}

impl Storage for Tamper {
    fn append(&mut self, kind: RecordKind, data: &[u8]) -> Result<RecordId, StoreError> {
        self.inner.append(kind, data)
    }
    fn accept_pending(&mut self, pending: RecordId) -> Result<RecordId, StoreError> {
        self.inner.accept_pending(pending)
    }
    fn discard_pending(&mut self, pending: RecordId) -> Result<(), StoreError> {
        self.inner.discard_pending(pending)
    }
    fn write_snapshot(&mut self, state: &[u8], covers_through: RecordId) -> Result<(), StoreError> {
        self.inner.write_snapshot(state, covers_through)
    }
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let mut l = self.inner.load()?;
        (self.damage)(&mut l);
        Ok(l)
    }
    fn put_blob(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        self.inner.put_blob(name, data)
    }
    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.blob(name)
    }
    fn remove_blob(&mut self, name: &str) -> Result<bool, StoreError> {
        self.inner.remove_blob(name)
    }
}

// ---- Convergence ----------------------------------------------------------------------------

#[test]
fn two_replicas_converge_after_concurrent_edits() {
    let mut rs = vec![create(mem(), 1, full(), Options::default())];
    let _ = rs[0]
        .change(|tx| {
            tx.set("title", "shopping")?;
            tx.set("text", json!([]))?;
            tx.splice_text("text", 0, 0, "hello")
        })
        .unwrap();
    join(
        &mut rs,
        0,
        joiner(mem(), 2, Options::default()),
        Role::Writer,
    );
    assert_converged(&rs);
    assert_eq!(rs[1].doc().get("title"), Some(json!("shopping")));
    assert_eq!(rs[1].role(&dev_id(2)), Some(Role::Writer));
    assert_eq!(rs[0].role(&dev_id(1)), Some(Role::Admin));

    // Concurrent edits: the same key, different keys, and the same text.
    let a = rs[0]
        .change(|tx| {
            tx.set("title", "A")?;
            tx.set("a", 1)?;
            tx.splice_text("text", 5, 0, " world")
        })
        .unwrap();
    let b = rs[1]
        .change(|tx| {
            tx.set("title", "B")?;
            tx.set("b", 2)?;
            tx.splice_text("text", 0, 0, ">> ")
        })
        .unwrap();
    assert!(a.node.is_some() && b.node.is_some());
    assert_eq!(group_msgs(&a.outgoing).len(), 1);
    assert_ne!(rs[0].doc().to_json(), rs[1].doc().to_json());
    flush(&mut rs);
    assert_converged(&rs);
    assert_eq!(rs[0].doc().text("text").unwrap(), ">> hello world");
    assert_eq!(rs[0].doc().get("a"), Some(json!(1)));
    assert_eq!(rs[0].doc().get("b"), Some(json!(2)));
    assert!(rs.iter().all(|r| r.outbox().is_empty()));
}

#[test]
fn three_replicas_converge_with_different_delivery_orders() {
    let mut rs = vec![create(mem(), 1, full(), Options::default())];
    let _ = rs[0].change(|tx| tx.set("list", json!([]))).unwrap();
    join(
        &mut rs,
        0,
        joiner(mem(), 2, Options::default()),
        Role::Writer,
    );
    join(
        &mut rs,
        0,
        joiner(mem(), 3, Options::default()),
        Role::Writer,
    );
    assert_converged(&rs);
    assert_eq!(rs[2].members().len(), 3);

    // Each makes two changes without seeing the others'.
    let mut sent: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
    for (i, r) in rs.iter_mut().enumerate() {
        for n in 0..2 {
            let u = r
                .change(|tx| {
                    tx.set("x", (i * 10 + n) as i64)?;
                    tx.insert("list", 0, format!("r{i}n{n}"))
                })
                .unwrap();
            sent[i].extend(group_msgs(&u.outgoing));
        }
        let ids: Vec<u64> = r.outbox().iter().map(|m| m.id).collect();
        r.mark_sent(&ids).unwrap();
    }
    // Replica 0 gets 2's then 1's; 1 gets 0's then 2's; 2 gets 1's reversed then 0's
    // reversed (so the second change of each author arrives before its first).
    let orders: [Vec<(usize, bool)>; 3] = [
        vec![(2, false), (1, false)],
        vec![(0, false), (2, false)],
        vec![(1, true), (0, true)],
    ];
    for (to, order) in orders.iter().enumerate() {
        for &(from, reversed) in order {
            let mut msgs = sent[from].clone();
            if reversed {
                msgs.reverse();
            }
            let first = rs[to].receive(&msgs[0]).unwrap();
            if reversed {
                assert!(
                    matches!(first, Received::Pending(Pending::MissingDeps(_))),
                    "{first:?}"
                );
            } else {
                assert!(matches!(first, Received::Applied(ref p) if !p.is_empty()));
            }
            let second = rs[to].receive(&msgs[1]).unwrap();
            assert!(matches!(second, Received::Applied(ref p) if !p.is_empty()));
            // Duplicates change nothing.
            assert_eq!(rs[to].receive(&msgs[1]).unwrap(), Received::Duplicate);
        }
    }
    assert_converged(&rs);
    assert_eq!(
        rs[0].doc().get("list").unwrap().as_array().unwrap().len(),
        6
    );
}

#[test]
fn offline_replica_catches_up_through_sync_request() {
    let mut rs = vec![create(mem(), 1, full(), Options::default())];
    join(
        &mut rs,
        0,
        joiner(mem(), 2, Options::default()),
        Role::Writer,
    );
    join(
        &mut rs,
        0,
        joiner(mem(), 3, Options::default()),
        Role::Reader,
    );

    // Replica 2 is offline while 0 makes two changes (1 gets them).
    let u1 = rs[0].change(|tx| tx.set("one", 1)).unwrap();
    let u2 = rs[0].change(|tx| tx.set("two", 2)).unwrap();
    for m in group_msgs(&u1.outgoing)
        .iter()
        .chain(&group_msgs(&u2.outgoing))
    {
        assert!(matches!(rs[1].receive(m).unwrap(), Received::Applied(_)));
    }
    // It reconnects and first sees 1's later change, which depends on 0's changes.
    let u3 = rs[1].change(|tx| tx.set("three", 3)).unwrap();
    let m3 = group_msgs(&u3.outgoing);
    assert!(matches!(
        rs[0].receive(&m3[0]).unwrap(),
        Received::Applied(_)
    ));
    match rs[2].receive(&m3[0]).unwrap() {
        Received::Pending(Pending::MissingDeps(deps)) => {
            assert!(!deps.is_empty());
            assert!(deps.contains(&u2.node.unwrap()), "{deps:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rs[2].waiting().0, 1);
    assert_eq!(rs[2].doc().get("three"), None);

    // Catch up from replica 1 (not the author of the missing changes).
    let req = rs[2].sync_request(&dev_id(2)).unwrap();
    assert!(!req.is_empty());
    let mut replies = Vec::new();
    for (to, bytes) in req {
        assert_eq!(to, dev_id(2));
        match rs[1].receive(&bytes).unwrap() {
            Received::Reply(r) => replies.extend(r),
            other => panic!("{other:?}"),
        }
    }
    assert!(!replies.is_empty());
    let mut applied = false;
    for (to, bytes) in replies {
        assert_eq!(to, dev_id(3));
        applied |=
            matches!(rs[2].receive(&bytes).unwrap(), Received::Applied(ref p) if !p.is_empty());
    }
    assert!(applied);
    assert_eq!(rs[2].doc().get("three"), Some(json!(3)));
    let ids: Vec<u64> = rs[0].outbox().iter().map(|m| m.id).collect();
    rs[0].mark_sent(&ids).unwrap();
    let ids: Vec<u64> = rs[1].outbox().iter().map(|m| m.id).collect();
    rs[1].mark_sent(&ids).unwrap();
    // The late original messages are duplicates now.
    assert_eq!(
        rs[2].receive(&group_msgs(&u1.outgoing)[0]).unwrap(),
        Received::Duplicate
    );
    assert_converged(&rs);
    // A reader cannot edit.
    assert!(matches!(
        rs[2].change(|tx| tx.set("x", 1)),
        Err(ReplicaError::Group(_))
    ));
    assert!(rs[2].outbox().is_empty());
}

// ---- Restarts ---------------------------------------------------------------------------------

#[test]
fn file_store_replicas_restart_keep_their_outbox_and_converge() {
    let da = tempfile::tempdir().unwrap();
    let db = tempfile::tempdir().unwrap();
    let fa = || Box::new(FileStore::open(da.path()).unwrap()) as Box<dyn Storage + Send>;
    let fb = || Box::new(FileStore::open(db.path()).unwrap()) as Box<dyn Storage + Send>;
    let mut rs = vec![create(fa(), 1, full(), Options::default())];
    let _ = rs[0].change(|tx| tx.set("text", json!([]))).unwrap();
    join(
        &mut rs,
        0,
        joiner(fb(), 2, Options::default()),
        Role::Writer,
    );

    // Bob edits and "crashes" before sending.
    let u = rs[1]
        .change(|tx| tx.splice_text("text", 0, 0, "bob"))
        .unwrap();
    let before: Vec<Outgoing> = rs[1].outbox().to_vec();
    assert_eq!(before, u.outgoing);
    let st_b = st(&rs[1]);
    drop(rs.pop());
    let bob = reopen(fb(), Options::default(), 77);
    assert_eq!(bob.outbox(), &before[..]);
    assert_eq!(st(&bob), st_b);
    assert_eq!(bob.device_id(), dev_id(2));
    rs.push(bob);

    // Alice restarts too, edits, everything is delivered.
    let st_a = st(&rs[0]);
    drop(rs.remove(0));
    let alice = reopen(fa(), Options::default(), 78);
    assert_eq!(st(&alice), st_a);
    rs.insert(0, alice);
    let _ = rs[0]
        .change(|tx| tx.splice_text("text", 0, 0, "alice "))
        .unwrap();
    flush(&mut rs);
    assert_converged(&rs);
    assert_eq!(rs[0].doc().text("text").unwrap(), "alice bob");

    // Sent is durable too: after another restart the outboxes stay empty.
    let st_b = st(&rs[1]);
    drop(rs.pop());
    let mut bob = reopen(fb(), Options::default(), 79);
    assert!(bob.outbox().is_empty());
    assert_eq!(st(&bob), st_b);
    // And the restarted replica keeps receiving and editing.
    let u = bob.change(|tx| tx.set("after", true)).unwrap();
    rs.push(bob);
    for m in group_msgs(&u.outgoing) {
        assert!(matches!(rs[0].receive(&m).unwrap(), Received::Applied(_)));
    }
    let ids: Vec<u64> = rs[1].outbox().iter().map(|m| m.id).collect();
    rs[1].mark_sent(&ids).unwrap();
    assert_converged(&rs);
}

#[test]
fn pending_input_survives_a_restart_and_applies_when_its_dependency_arrives() {
    let db = tempfile::tempdir().unwrap();
    let fb = || Box::new(FileStore::open(db.path()).unwrap()) as Box<dyn Storage + Send>;
    let mut rs = vec![create(mem(), 1, full(), Options::default())];
    join(
        &mut rs,
        0,
        joiner(fb(), 2, Options::default()),
        Role::Writer,
    );
    let m1 = group_msgs(&set(&mut rs[0], "one", 1));
    let m2 = group_msgs(&set(&mut rs[0], "two", 2));
    assert!(matches!(
        rs[1].receive(&m2[0]).unwrap(),
        Received::Pending(Pending::MissingDeps(_))
    ));
    assert_eq!(rs[1].waiting(), (1, 0));
    drop(rs.pop());

    let mut bob = reopen(fb(), Options::default(), 5);
    assert_eq!(bob.waiting(), (1, 0), "the buffered node survived");
    assert_eq!(bob.doc().get("two"), None);
    match bob.receive(&m1[0]).unwrap() {
        Received::Applied(p) => assert!(p.len() >= 2, "{p:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(bob.waiting(), (0, 0));
    assert_eq!(bob.doc().get("two"), Some(json!(2)));
    let st_b = st(&bob);
    drop(bob);

    // After another restart nothing is pending any more and nothing applies twice.
    let mut bob = reopen(fb(), Options::default(), 6);
    assert_eq!(st(&bob), st_b);
    assert_eq!(bob.receive(&m2[0]).unwrap(), Received::Duplicate);
    assert_eq!(bob.receive(&m1[0]).unwrap(), Received::Duplicate);
    rs.push(bob);
    let ids: Vec<u64> = rs[0].outbox().iter().map(|m| m.id).collect();
    rs[0].mark_sent(&ids).unwrap();
    assert_converged(&rs);
}

#[test]
fn parked_envelopes_and_half_a_catch_up_answer_survive_a_restart() {
    let opts = Options::default().with_config(
        Config::default().with_envelope(sealdoc::crypto::EnvelopeLimits::new(1024).unwrap()),
    );
    let db = tempfile::tempdir().unwrap();
    let fb = || Box::new(FileStore::open(db.path()).unwrap()) as Box<dyn Storage + Send>;
    let mut rs = vec![create(mem(), 1, full(), opts)];
    join(&mut rs, 0, joiner(fb(), 2, opts), Role::Writer);

    // A key rotation, then a change under the new key: Bob gets the change first (parked).
    let rot = group_msgs(&rs[0].rotate_key().unwrap().outgoing);
    let ch = group_msgs(&set(&mut rs[0], "rotated", true));
    assert!(matches!(
        rs[1].receive(&ch[0]).unwrap(),
        Received::Pending(Pending::UnknownEpoch(_))
    ));
    assert_eq!(rs[1].waiting(), (0, 1));
    drop(rs.pop());
    let mut bob = reopen(fb(), opts, 1);
    assert_eq!(bob.waiting(), (0, 1), "the parked envelope survived");
    assert!(matches!(bob.receive(&rot[0]).unwrap(), Received::Applied(ref p) if !p.is_empty()));
    assert_eq!(bob.doc().get("rotated"), Some(json!(true)));
    assert_eq!(bob.waiting(), (0, 0));
    rs.push(bob);
    let ids: Vec<u64> = rs[0].outbox().iter().map(|m| m.id).collect();
    rs[0].mark_sent(&ids).unwrap();

    // Bob misses many changes; the catch-up answer comes in chunks; he restarts halfway.
    let mut last = Vec::new();
    for i in 0..12 {
        last = group_msgs(&set(&mut rs[0], &format!("big{i}"), "z".repeat(300)));
    }
    let ids: Vec<u64> = rs[0].outbox().iter().map(|m| m.id).collect();
    rs[0].mark_sent(&ids).unwrap();
    assert!(matches!(
        rs[1].receive(&last[0]).unwrap(),
        Received::Pending(Pending::MissingDeps(_))
    ));
    let req = rs[1].sync_request(&dev_id(1)).unwrap();
    let mut answer = Vec::new();
    for (_, b) in req {
        if let Received::Reply(r) = rs[0].receive(&b).unwrap() {
            answer.extend(r);
        }
    }
    assert!(answer.len() >= 3, "{} chunks", answer.len());
    let half = answer.len() / 2;
    for (_, b) in &answer[..half] {
        assert!(matches!(
            rs[1].receive(b).unwrap(),
            Received::Pending(Pending::Chunks { .. })
        ));
    }
    drop(rs.pop());
    let mut bob = reopen(fb(), opts, 2);
    let mut applied = false;
    for (_, b) in &answer[half..] {
        match bob.receive(b).unwrap() {
            Received::Pending(Pending::Chunks { .. }) => {}
            Received::Applied(p) => applied |= !p.is_empty(),
            other => panic!("{other:?}"),
        }
    }
    assert!(applied, "the answer did not complete after the restart");
    rs.push(bob);
    assert_converged(&rs);
}

#[test]
fn many_changes_take_several_snapshots_and_reopen_the_same() {
    let small = Options::default().with_snapshot_after_bytes(512);
    let sa = shared_mem();
    let fa = Faulty::new(sa.clone());
    let ctl = fa.ctl.clone();
    let db = tempfile::tempdir().unwrap();
    let fb = || Box::new(FileStore::open(db.path()).unwrap()) as Box<dyn Storage + Send>;
    let mut rs = vec![create(Box::new(fa), 1, full(), small)];
    let _ = rs[0].change(|tx| tx.set("text", json!([]))).unwrap();
    join(&mut rs, 0, joiner(fb(), 2, small), Role::Writer);
    for i in 0..60usize {
        let who = i % 3 % 2;
        let _ = rs[who]
            .change(|tx| {
                tx.splice_text("text", 0, 0, &format!("{i},"))?;
                tx.set(format!("k{}", i % 7).as_str(), i as i64)
            })
            .unwrap();
        if i % 5 == 4 {
            flush(&mut rs);
        }
        if i == 30 {
            rs[1].compact().unwrap();
        }
    }
    flush(&mut rs);
    assert_converged(&rs);
    assert!(
        ctl.snapshots.get() >= 4,
        "only {} snapshots",
        ctl.snapshots.get()
    );
    // The log was compacted: far fewer records than calls.
    let loaded = sa.lock().unwrap().load().unwrap();
    assert!(loaded.snapshot.is_some());
    assert!(
        loaded.records.len() < 30,
        "{} records",
        loaded.records.len()
    );
    // The file store holds one generation.
    let logs = std::fs::read_dir(db.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("log.")
        })
        .count();
    assert_eq!(logs, 1);

    let (sta, stb) = (st(&rs[0]), st(&rs[1]));
    rs.clear();
    let a = reopen(Box::new(Faulty::new(sa.clone())), small, 11);
    let b = reopen(fb(), small, 12);
    assert_eq!(st(&a), sta);
    assert_eq!(st(&b), stb);
    let mut rs = vec![a, b];
    for i in 0..10 {
        let _ = set(&mut rs[i % 2], "after", i as i64);
    }
    flush(&mut rs);
    assert_converged(&rs);
}

#[test]
fn a_joiner_restarted_before_its_welcome_completes_still_joins() {
    let small_env =
        Config::default().with_envelope(sealdoc::crypto::EnvelopeLimits::new(1024).unwrap());
    let opts = Options::default().with_config(small_env);
    let db = tempfile::tempdir().unwrap();
    let fb = || Box::new(FileStore::open(db.path()).unwrap()) as Box<dyn Storage + Send>;
    let mut alice = create(mem(), 1, full(), opts);
    for i in 0..20 {
        let _ = set(&mut alice, &format!("k{i}"), "x".repeat(100));
    }
    let mut bob = joiner(fb(), 2, opts);
    let add = alice.add_member(&bob.contact_card(), Role::Writer).unwrap();
    let chunks: Vec<Vec<u8>> = add
        .outgoing
        .iter()
        .filter(|m| m.to == Recipient::Device(dev_id(2)))
        .map(|m| m.bytes.clone())
        .collect();
    assert!(chunks.len() > 3, "{} chunks", chunks.len());
    let half = chunks.len() / 2;
    for c in &chunks[..half] {
        assert!(matches!(
            bob.receive(c).unwrap(),
            Received::Pending(Pending::Chunks { .. })
        ));
    }
    // A group change arrives before the welcome is complete.
    let later = group_msgs(&set(&mut alice, "later", 1));
    assert!(matches!(
        bob.receive(&later[0]).unwrap(),
        Received::Pending(Pending::WaitingForWelcome)
    ));
    assert!(!bob.is_member());
    assert!(matches!(
        bob.change(|tx| tx.set("x", 1)),
        Err(ReplicaError::NotWelcomed)
    ));
    drop(bob);

    // Restart while waiting; the kept chunks and the parked change are still there.
    let mut bob = reopen(fb(), opts, 3);
    assert!(!bob.is_member());
    assert_eq!(bob.device_id(), dev_id(2));
    let mut joined = None;
    for c in &chunks[half..] {
        match bob.receive(c).unwrap() {
            Received::Pending(Pending::Chunks { .. }) => {}
            Received::Joined(p) => joined = Some(p),
            other => panic!("{other:?}"),
        }
    }
    assert!(joined.is_some(), "the welcome did not complete");
    assert!(bob.is_member());
    assert_eq!(bob.doc().to_json(), alice.doc().to_json());
    assert_eq!(bob.doc().get("later"), Some(json!(1)));
    let st_b = st(&bob);
    drop(bob);
    let bob = reopen(fb(), opts, 4);
    assert_eq!(st(&bob), st_b);
    let ids: Vec<u64> = alice.outbox().iter().map(|m| m.id).collect();
    alice.mark_sent(&ids).unwrap();
    let mut rs = vec![alice, bob];
    let _ = set(&mut rs[1], "from_bob", true);
    flush(&mut rs);
    assert_converged(&rs);
}

#[test]
fn a_future_only_member_restarts_with_its_skeletons() {
    let db = tempfile::tempdir().unwrap();
    let fb = || Box::new(FileStore::open(db.path()).unwrap()) as Box<dyn Storage + Send>;
    let mut rs = vec![create(
        mem(),
        1,
        GroupPolicy::future_only(),
        Options::default(),
    )];
    let _ = set(&mut rs[0], "secret", "before bob");
    join(
        &mut rs,
        0,
        joiner(fb(), 2, Options::default()),
        Role::Writer,
    );
    assert_eq!(rs[1].doc().get("secret"), None);
    let _ = set(&mut rs[0], "public", "after bob");
    flush(&mut rs);
    let st_b = st(&rs[1]);
    assert_eq!(st_b.json, json!({"public": "after bob"}));
    drop(rs.pop());
    let bob = reopen(fb(), Options::default(), 9);
    assert_eq!(st(&bob), st_b);
    rs.push(bob);
    let _ = set(&mut rs[1], "bob", 1);
    flush(&mut rs);
    assert_eq!(rs[0].doc().get("bob"), Some(json!(1)));
    assert_eq!(rs[1].doc().get("public"), Some(json!("after bob")));
}

// ---- Kill points ------------------------------------------------------------------------------

/// Where the replica under test (Alice) keeps its store in a kill-point run.
trait Backend {
    /// A store for a new run, failing at the `k`-th mutating call if `fail`.
    fn start(&mut self, fail: Option<(usize, bool)>) -> (Box<dyn Storage + Send>, Arc<Ctl>);
    /// The same store after the crash, healthy (everything that held it has been dropped).
    fn after_crash(&mut self) -> Box<dyn Storage + Send>;
}

struct MemBackend(Arc<Mutex<MemoryStore>>);

impl Backend for MemBackend {
    fn start(&mut self, fail: Option<(usize, bool)>) -> (Box<dyn Storage + Send>, Arc<Ctl>) {
        self.0 = shared_mem();
        let f = match fail {
            Some((k, apply)) => Faulty::failing(self.0.clone(), k, apply),
            None => Faulty::new(self.0.clone()),
        };
        let ctl = f.ctl.clone();
        (Box::new(f), ctl)
    }
    fn after_crash(&mut self) -> Box<dyn Storage + Send> {
        // A copy of what the store holds, as a restarted process would find it.
        let copy = self.0.lock().unwrap().clone();
        Box::new(Faulty::new(Arc::new(Mutex::new(copy))))
    }
}

struct FileBackend {
    dir: Option<tempfile::TempDir>,
}

impl Backend for FileBackend {
    fn start(&mut self, fail: Option<(usize, bool)>) -> (Box<dyn Storage + Send>, Arc<Ctl>) {
        let dir = tempfile::tempdir().unwrap();
        let fs = Arc::new(Mutex::new(FileStore::open(dir.path()).unwrap()));
        self.dir = Some(dir);
        let f = match fail {
            Some((k, apply)) => Faulty::failing(fs, k, apply),
            None => Faulty::new(fs),
        };
        let ctl = f.ctl.clone();
        (Box::new(f), ctl)
    }
    fn after_crash(&mut self) -> Box<dyn Storage + Send> {
        let dir = self.dir.as_ref().unwrap().path();
        Box::new(FileStore::open(dir).unwrap())
    }
}

fn kill_opts() -> Options {
    Options::default().with_snapshot_after_bytes(1500)
}

/// The world of the scripted workload: Alice (under test) and Bob (a peer, never failing).
struct World {
    a: Option<Replica>,
    b: Replica,
    /// Bob's group messages not yet delivered to Alice.
    b_msgs: Vec<Vec<u8>>,
    /// Bob's message held back (delivered after a later one).
    held: Vec<Vec<u8>>,
}

const STEPS: usize = 19;

#[derive(PartialEq)]
enum StepKind {
    Create,
    /// Makes a node (change, add, rotate).
    Command,
    /// Sends Alice's outbox and marks it sent.
    Send,
    /// Alice receives, compacts, or nothing of Alice's happens: redoing is harmless.
    Other,
}

fn step_kind(i: usize) -> StepKind {
    match i {
        0 => StepKind::Create,
        1 | 2 | 4 | 6 | 11 | 14 | 15 | 16 | 17 => StepKind::Command,
        3 | 8 | 18 => StepKind::Send,
        _ => StepKind::Other,
    }
}

fn bob_send(w: &mut World) -> Vec<Vec<u8>> {
    let out = w.b.outbox().to_vec();
    let ids: Vec<u64> = out.iter().map(|m| m.id).collect();
    w.b.mark_sent(&ids).unwrap();
    out.into_iter()
        .filter(|m| m.to == Recipient::Group)
        .map(|m| m.bytes)
        .collect()
}

fn send_a_to_b(w: &mut World) -> Result<(), ReplicaError> {
    let a = w.a.as_mut().unwrap();
    let out = a.outbox().to_vec();
    for m in &out {
        if m.to == Recipient::Group || m.to == Recipient::Device(w.b.device_id()) {
            let _ = w.b.receive(&m.bytes).unwrap();
        }
    }
    let ids: Vec<u64> = out.iter().map(|m| m.id).collect();
    a.mark_sent(&ids)
}

fn kill_step(
    i: usize,
    w: &mut World,
    store: &mut Option<Box<dyn Storage + Send>>,
) -> Result<(), ReplicaError> {
    if i == 0 {
        let (d, k) = dev(1);
        w.a = Some(Replica::create_with(
            store.take().unwrap(),
            key(),
            d,
            k,
            full(),
            kill_opts(),
            rng(100),
        )?);
        return Ok(());
    }
    let a = w.a.as_mut().unwrap();
    match i {
        1 => drop(a.add_member(&w.b.contact_card(), Role::Writer)?),
        2 => drop(a.change(|tx| {
            tx.set("title", "kill points")?;
            tx.set("text", json!([]))
        })?),
        3 | 8 | 18 => send_a_to_b(w)?,
        4 => drop(a.change(|tx| tx.splice_text("text", 0, 0, "hello world"))?),
        5 => {
            let _ = w.b.change(|tx| tx.set("b", 1)).unwrap();
            let m = bob_send(w);
            w.b_msgs.extend(m);
        }
        6 => drop(a.change(|tx| tx.set("a", 1))?),
        7 => {
            for m in w.b_msgs.clone() {
                let _ = a.receive(&m)?;
            }
            w.b_msgs.clear();
        }
        9 => {
            let _ =
                w.b.change(|tx| tx.splice_text("text", 0, 0, "B1 "))
                    .unwrap();
            w.held = bob_send(w);
            let _ = w.b.change(|tx| tx.set("b", 2)).unwrap();
            let m = bob_send(w);
            w.b_msgs.extend(m);
        }
        10 => {
            for m in w.b_msgs.clone() {
                let r = a.receive(&m)?;
                assert!(!matches!(r, Received::Applied(_)), "{r:?}");
            }
            w.b_msgs.clear();
        }
        11 => drop(a.change(|tx| tx.set("c", 2))?),
        12 => a.compact()?,
        13 => {
            for m in w.held.clone() {
                let _ = a.receive(&m)?;
            }
            w.held.clear();
        }
        14 => drop(a.rotate_key()?),
        15..=17 => drop(a.change(|tx| tx.splice_text("text", 0, 0, &format!("{i}")))?),
        _ => panic!("no step {i}"),
    }
    Ok(())
}

fn new_world() -> World {
    World {
        a: None,
        b: joiner(mem(), 2, Options::default()),
        b_msgs: Vec::new(),
        held: Vec::new(),
    }
}

/// Runs the workload without failures: Alice's state after each step, and the number of
/// mutating store calls.
fn kill_reference(backend: &mut dyn Backend) -> (Vec<St>, usize, St) {
    let (store, ctl) = backend.start(None);
    let mut store = Some(store);
    let mut w = new_world();
    let mut after = Vec::new();
    for i in 0..STEPS {
        kill_step(i, &mut w, &mut store).unwrap();
        after.push(st(w.a.as_ref().unwrap()));
    }
    let fin = kill_finish(&mut w);
    // Besides create's and compact's, the small threshold made the replica snapshot by itself.
    assert!(
        ctl.snapshots.get() >= 3,
        "{} snapshots",
        ctl.snapshots.get()
    );
    (after, ctl.calls.get(), fin)
}

/// Delivers everything both ways; checks convergence; Alice's final state.
fn kill_finish(w: &mut World) -> St {
    let a = w.a.take().unwrap();
    let b = std::mem::replace(&mut w.b, joiner(mem(), 9, Options::default()));
    let mut rs = vec![a, b];
    for m in w.b_msgs.drain(..).chain(w.held.drain(..)) {
        let _ = rs[0].receive(&m).unwrap();
    }
    flush(&mut rs);
    assert_converged(&rs);
    let s = st(&rs[0]);
    let mut it = rs.into_iter();
    w.a = it.next();
    w.b = it.next().unwrap();
    s
}

/// One run failing at the `k`-th mutating call. Returns false if the workload made fewer
/// calls (no failure happened).
fn kill_run(
    backend: &mut dyn Backend,
    k: usize,
    apply: bool,
    reference: &[St],
    fin: &St,
    quirks: &mut Vec<String>,
) -> bool {
    let (store, ctl) = backend.start(Some((k, apply)));
    let mut store = Some(store);
    let mut w = new_world();
    let mut crashed_at = None;
    let mut pre_outbox: Vec<Outgoing> = Vec::new();
    for i in 0..STEPS {
        pre_outbox =
            w.a.as_ref()
                .map(|a| a.outbox().to_vec())
                .unwrap_or_default();
        match kill_step(i, &mut w, &mut store) {
            Ok(()) => {
                assert!(
                    !ctl.failed.get(),
                    "k={k} step {i}: Ok after a store failure"
                );
                assert_eq!(
                    st(w.a.as_ref().unwrap()),
                    reference[i],
                    "k={k} step {i} (no crash yet)"
                );
            }
            Err(ReplicaError::Store(_)) => {
                crashed_at = Some(i);
                break;
            }
            Err(e) => panic!("k={k} step {i}: {e:?}"),
        }
    }
    let Some(i) = crashed_at else {
        assert!(!ctl.failed.get());
        return false;
    };
    // A poisoned replica refuses everything.
    if let Some(a) = w.a.as_mut() {
        assert!(matches!(
            a.change(|tx| tx.set("z", 1)),
            Err(ReplicaError::Poisoned)
        ));
        assert!(matches!(a.receive(b"junk"), Err(ReplicaError::Poisoned)));
        assert!(matches!(a.mark_sent(&[0]), Err(ReplicaError::Poisoned)));
    }
    // Crash: drop everything that holds the store, then reopen what it holds.
    w.a = None;
    drop(store);
    drop(ctl);
    let opened = Replica::open_with(
        backend.after_crash(),
        key(),
        kill_opts(),
        rng(5000 + k as u64),
    );
    let start = if i == 0 {
        match opened {
            Err(ReplicaError::Empty) => {
                let mut store = Some(backend.after_crash());
                kill_step(0, &mut w, &mut store).unwrap();
                1
            }
            Ok(r) if r.is_member() => {
                assert_eq!(st(&r), reference[0], "k={k}: create");
                w.a = Some(r);
                1
            }
            Ok(r) => panic!(
                "k={k} apply={apply}: a failed create reopened as a device waiting for a \
                 welcome ({:?})",
                r.device_id()
            ),
            Err(e) => panic!("k={k}: reopen after a failed create: {e:?}"),
        }
    } else {
        let r = opened.unwrap_or_else(|e| panic!("k={k} step {i}: reopen: {e:?}"));
        let now = st(&r);
        let before = &reference[i - 1];
        let after = &reference[i];
        let happened = now == *after && now != *before;
        if happened {
            quirks.push(format!("in-flight step {i} happened (k={k} apply={apply})"));
        }
        assert!(
            now == *before || now == *after,
            "k={k} apply={apply} step {i}: reopened state is neither before nor after the \
             in-flight call\nnow {now:?}\nbefore {before:?}\nafter {after:?}"
        );
        // The outbox: every acknowledged unsent message is still there, byte for byte
        // (a send step may have marked them all sent); new ones only from the in-flight
        // command, and then it must be there.
        let pre_ids: HashSet<u64> = pre_outbox.iter().map(|m| m.id).collect();
        let kept: Vec<&Outgoing> = r
            .outbox()
            .iter()
            .filter(|m| pre_ids.contains(&m.id))
            .collect();
        if step_kind(i) == StepKind::Send && kept.is_empty() {
            // The in-flight mark_sent happened.
        } else {
            assert_eq!(
                kept.len(),
                pre_outbox.len(),
                "k={k} step {i}: lost outbox messages"
            );
            for (m, p) in kept.iter().zip(&pre_outbox) {
                assert_eq!(*m, p, "k={k} step {i}");
            }
        }
        let new: Vec<&Outgoing> = r
            .outbox()
            .iter()
            .filter(|m| !pre_ids.contains(&m.id))
            .collect();
        let max_pre = pre_outbox.iter().map(|m| m.id).max();
        assert!(new
            .iter()
            .all(|m| Some(m.id) > max_pre || max_pre.is_none()));
        if step_kind(i) == StepKind::Command && happened {
            assert!(
                !new.is_empty(),
                "k={k} step {i}: a durable command lost its messages"
            );
        } else {
            assert!(new.is_empty(), "k={k} step {i}: {new:?}");
        }
        w.a = Some(r);
        if step_kind(i) == StepKind::Command && happened {
            i + 1
        } else {
            i
        }
    };
    // The reopened replica has another RNG: a command that draws fresh key material (add,
    // rotate) then makes other nodes than in the reference run, so the canonical states
    // (which name node hashes) differ from there on. Convergence with Bob still compares them.
    let exact = start > 14;
    for j in start..STEPS {
        let mut none = None;
        kill_step(j, &mut w, &mut none).unwrap_or_else(|e| panic!("k={k} resume step {j}: {e:?}"));
        let now = st(w.a.as_ref().unwrap());
        assert!(
            same(&now, &reference[j], exact),
            "k={k} resumed step {j}: {now:?}\n{:?}",
            reference[j]
        );
    }
    let got = kill_finish(&mut w);
    assert!(
        same(&got, fin, exact),
        "k={k}: final state differs from the run without a crash"
    );
    true
}

#[test]
fn kill_points_memory_store_every_call() {
    let mut backend = MemBackend(shared_mem());
    let (reference, calls, fin) = kill_reference(&mut backend);
    assert!(calls >= STEPS, "{calls} calls");
    let mut quirks = Vec::new();
    let mut runs = 0;
    for apply in [false, true] {
        for k in 1..=calls + 1 {
            let crashed = kill_run(&mut backend, k, apply, &reference, &fin, &mut quirks);
            assert_eq!(crashed, k <= calls, "k={k}");
            runs += usize::from(crashed);
        }
    }
    assert_eq!(runs, 2 * calls);
    eprintln!("{runs} kill points; notes: {quirks:#?}");
    // Failing after the write: some in-flight commands happened although they returned Err.
    assert!(
        quirks.iter().any(|q| q.starts_with("in-flight")),
        "{quirks:?}"
    );
}

#[test]
fn kill_points_file_store_some_calls() {
    let mut backend = FileBackend { dir: None };
    let (reference, calls, fin) = kill_reference(&mut backend);
    let mut quirks = Vec::new();
    for apply in [false, true] {
        for k in [3, 6, calls / 2, calls - 3, calls] {
            assert!(kill_run(
                &mut backend,
                k,
                apply,
                &reference,
                &fin,
                &mut quirks
            ));
        }
    }
    assert!(!quirks.iter().any(|q| q.contains("joiner")), "{quirks:?}");
}

/// Kill points on the joining side: a device on a failing store receives a welcome in
/// chunks (with group traffic parked before it completes), then edits and receives. After
/// each crash it reopens, everything is delivered again from the start (at least once), and
/// it must end up a member converged with the admin; an acknowledged join stays joined.
#[test]
fn kill_points_joiner_every_call() {
    let opts = Options::default()
        .with_config(
            Config::default().with_envelope(sealdoc::crypto::EnvelopeLimits::new(1024).unwrap()),
        )
        .with_snapshot_after_bytes(1024);
    let alice_store = shared_mem();
    let mut alice = create(Box::new(Faulty::new(alice_store.clone())), 1, full(), opts);
    for i in 0..6 {
        let _ = set(&mut alice, &format!("k{i}"), "y".repeat(200));
    }
    let (d, k) = dev(2);
    let card = Replica::new_joiner_with(mem(), key(), d, k, opts, rng(1))
        .unwrap()
        .contact_card();
    let add = alice.add_member(&card, Role::Writer).unwrap();
    let mut chunks: Vec<Vec<u8>> = add
        .outgoing
        .iter()
        .filter(|m| m.to == Recipient::Device(dev_id(2)))
        .map(|m| m.bytes.clone())
        .collect();
    assert!(chunks.len() >= 3, "{} chunks", chunks.len());
    let later = group_msgs(&set(&mut alice, "later", 1)).remove(0);
    let after = group_msgs(&set(&mut alice, "after", 2)).remove(0);
    let ids: Vec<u64> = alice.outbox().iter().map(|m| m.id).collect();
    alice.mark_sent(&ids).unwrap();
    // Inputs in order: first chunk, parked group change, the other chunks, a later change.
    let mut inputs = vec![chunks.remove(0), later];
    inputs.extend(chunks);
    inputs.push(after);
    let n = inputs.len();
    let want = alice.doc().to_json();
    drop(alice);

    let mut max_calls = None;
    let mut crashes = 0;
    for k in 1.. {
        if max_calls.is_some_and(|m| k > m) {
            break;
        }
        let sh = shared_mem();
        let f = Faulty::failing(sh.clone(), k, k % 2 == 0);
        let ctl = f.ctl.clone();
        let mut joined_acked = false;
        let mut edit_acked = false;
        let (d, kem) = dev(2);
        let mut bob = Replica::new_joiner_with(Box::new(f), key(), d, kem, opts, rng(3)).ok();
        let mut crashed = bob.is_none();
        if let Some(b) = bob.as_mut() {
            for (j, input) in inputs.iter().enumerate() {
                if j == n - 1 {
                    // Bob edits once a member, before the last input.
                    match b.change(|tx| tx.set("bob", true)) {
                        Ok(_) => edit_acked = true,
                        Err(ReplicaError::Store(_)) => {
                            crashed = true;
                            break;
                        }
                        Err(e) => panic!("k={k}: {e:?}"),
                    }
                }
                match b.receive(input) {
                    Ok(Received::Joined(_)) => joined_acked = true,
                    Ok(_) => {}
                    Err(ReplicaError::Store(_)) => {
                        crashed = true;
                        break;
                    }
                    Err(e) => panic!("k={k} input {j}: {e:?}"),
                }
            }
        }
        if !crashed {
            max_calls = Some(ctl.calls.get());
            assert!(joined_acked && edit_acked);
            continue;
        }
        crashes += 1;
        drop(bob);
        let copy = sh.lock().unwrap().clone();
        let store = Box::new(Faulty::new(Arc::new(Mutex::new(copy))));
        let mut bob = match Replica::open_with(store, key(), opts, rng(4)) {
            Ok(b) => b,
            Err(ReplicaError::Empty) => {
                let (d, kem) = dev(2);
                Replica::new_joiner_with(mem(), key(), d, kem, opts, rng(5)).unwrap()
            }
            Err(e) => panic!("k={k}: reopen: {e:?}"),
        };
        assert_eq!(bob.device_id(), dev_id(2));
        if joined_acked {
            assert!(bob.is_member(), "k={k}: an acknowledged join was lost");
        }
        let bob_edit = bob.outbox().to_vec();
        if edit_acked {
            assert_eq!(bob.doc().get("bob"), Some(json!(true)), "k={k}");
            assert_eq!(
                group_msgs(&bob_edit).len(),
                1,
                "k={k}: the edit's message was lost"
            );
        }
        // Deliver everything again; edit if the edit did not survive.
        for (j, input) in inputs.iter().enumerate() {
            if j == n - 1 && bob.doc().get("bob").is_none() {
                let _ = bob.change(|tx| tx.set("bob", true)).unwrap();
            }
            let r = bob
                .receive(input)
                .unwrap_or_else(|e| panic!("k={k} redelivering input {j}: {e:?}"));
            assert!(!matches!(r, Received::Reply(_)));
        }
        assert!(bob.is_member(), "k={k}");
        let mut expected = want.clone();
        expected["bob"] = json!(true);
        assert_eq!(bob.doc().to_json(), expected, "k={k}");
        assert_eq!(bob.waiting(), (0, 0), "k={k}");
        // Bob's edit reaches a copy of Alice exactly once.
        let msgs = group_msgs(bob.outbox());
        assert_eq!(msgs.len(), 1, "k={k}");
        let ids: Vec<u64> = bob.outbox().iter().map(|m| m.id).collect();
        bob.mark_sent(&ids).unwrap();
        assert!(bob.outbox().is_empty());
        let store = Box::new(alice_store.lock().unwrap().clone());
        let mut alice = reopen(store, opts, 7);
        assert!(matches!(
            alice.receive(&msgs[0]).unwrap(),
            Received::Applied(_)
        ));
        assert_eq!(alice.receive(&msgs[0]).unwrap(), Received::Duplicate);
        assert_converged(&[alice, bob]);
    }
    eprintln!("joiner: {crashes} crashes over {max_calls:?} calls");
    assert!(crashes >= 8, "{crashes} crashes");
}

// ---- Damage -------------------------------------------------------------------------------------

/// A store holding a replica with a snapshot and a few records after it.
fn populated() -> MemoryStore {
    let s = shared_mem();
    let mut a = create(
        Box::new(Faulty::new(s.clone())),
        1,
        full(),
        Options::default(),
    );
    for i in 0..4 {
        let _ = set(&mut a, &format!("k{i}"), i);
    }
    drop(a);
    let m = s.lock().unwrap().clone();
    m
}

fn open_tampered(damage: impl Fn(&mut Loaded) + Send + 'static) -> Result<Replica, ReplicaError> {
    let t = Tamper {
        inner: populated(),
        damage: Box::new(damage),
    };
    Replica::open_with(Box::new(t), key(), Options::default(), rng(1))
}

#[test]
fn wrong_key_empty_and_not_empty() {
    let mut store = populated();
    assert!(Replica::open_with(Box::new(store.clone()), key(), Options::default(), rng(1)).is_ok());
    let wrong = StorageKey::from_bytes(Zeroizing::new([8; 32]));
    assert!(matches!(
        Replica::open_with(Box::new(store.clone()), wrong, Options::default(), rng(1)),
        Err(ReplicaError::WrongKey)
    ));
    assert!(matches!(
        Replica::open(MemoryStore::new(), key()),
        Err(ReplicaError::Empty)
    ));
    let (d, k) = dev(3);
    assert!(matches!(
        Replica::create_with(
            Box::new(store.clone()),
            key(),
            d,
            k,
            full(),
            Options::default(),
            rng(2)
        ),
        Err(ReplicaError::NotEmpty)
    ));
    let (d, k) = dev(3);
    assert!(matches!(
        Replica::new_joiner_with(
            Box::new(store.clone()),
            key(),
            d,
            k,
            Options::default(),
            rng(2)
        ),
        Err(ReplicaError::NotEmpty)
    ));
    // A joiner's store (a device blob only) is not empty either.
    let js = shared_mem();
    drop(joiner(
        Box::new(Faulty::new(js.clone())),
        4,
        Options::default(),
    ));
    let (d, k) = dev(5);
    assert!(matches!(
        Replica::create_with(
            Box::new(Faulty::new(js.clone())),
            key(),
            d,
            k,
            full(),
            Options::default(),
            rng(2)
        ),
        Err(ReplicaError::NotEmpty)
    ));
    let j = reopen(Box::new(Faulty::new(js)), Options::default(), 3);
    assert!(!j.is_member());
    assert_eq!(j.device_id(), dev_id(4));
    // Records without a device blob.
    let mut bare = MemoryStore::new();
    let l = store.load().unwrap();
    bare.append(RecordKind::Accepted, &l.records[0].data)
        .unwrap();
    assert!(matches!(
        Replica::open(bare, key()),
        Err(ReplicaError::Corrupt { .. })
    ));
}

#[test]
fn flipped_bytes_in_snapshot_or_records_are_corrupt_never_a_panic() {
    let mut base = populated();
    let l = base.load().unwrap();
    let snap_len = l.snapshot.as_ref().unwrap().state.len();
    assert!(l.records.len() >= 4, "{} records", l.records.len());
    let mut tried = 0;
    for pos in (0..snap_len).step_by(snap_len / 40 + 1) {
        let r = open_tampered(move |l| {
            l.snapshot.as_mut().unwrap().state[pos] ^= 0x20;
        });
        assert!(
            matches!(r, Err(ReplicaError::Corrupt { .. })),
            "snapshot byte {pos}: {r:?}"
        );
        tried += 1;
    }
    for rec in 0..l.records.len() {
        let len = l.records[rec].data.len();
        for pos in [0, 5, len / 2, len - 1] {
            let r = open_tampered(move |l| {
                l.records[rec].data[pos] ^= 0x01;
            });
            assert!(
                matches!(r, Err(ReplicaError::Corrupt { .. })),
                "record {rec} byte {pos}: {r:?}"
            );
            tried += 1;
        }
    }
    // Truncated, swapped kinds, and bytes that were never sealed.
    let r = open_tampered(|l| {
        let d = &mut l.records[1].data;
        d.truncate(d.len() - 3);
    });
    assert!(matches!(r, Err(ReplicaError::Corrupt { .. })), "{r:?}");
    let r = open_tampered(|l| {
        let rec = l.records[0].data.clone();
        l.snapshot.as_mut().unwrap().state = rec;
    });
    assert!(matches!(r, Err(ReplicaError::Corrupt { .. })), "{r:?}");
    let r = open_tampered(|l| {
        let s = l.snapshot.as_ref().unwrap().state.clone();
        l.records[0].data = s;
    });
    assert!(matches!(r, Err(ReplicaError::Corrupt { .. })), "{r:?}");
    // Garbage appended through the Storage trait.
    let mut g = base.clone();
    g.append(RecordKind::Accepted, &[0x55; 100]).unwrap();
    let r = Replica::open(g, key());
    assert!(matches!(r, Err(ReplicaError::Corrupt { .. })), "{r:?}");
    let mut g = base.clone();
    g.append(RecordKind::Accepted, &[]).unwrap();
    let r = Replica::open(g, key());
    assert!(matches!(r, Err(ReplicaError::Corrupt { .. })), "{r:?}");
    // Another replica's record (same key, other device): bound to its device.
    let other = shared_mem();
    let mut o = create(
        Box::new(Faulty::new(other.clone())),
        2,
        full(),
        Options::default(),
    );
    let _ = set(&mut o, "x", 1);
    drop(o);
    let foreign = other.lock().unwrap().load().unwrap().records[0]
        .data
        .clone();
    let mut g = base.clone();
    g.append(RecordKind::Accepted, &foreign).unwrap();
    let r = Replica::open(g, key());
    assert!(matches!(r, Err(ReplicaError::Corrupt { .. })), "{r:?}");
    // A damaged device blob cannot be told from a wrong key.
    let mut g = base.clone();
    let mut blob = g.blob("device").unwrap().unwrap();
    blob[10] ^= 1;
    g.put_blob("device", &blob).unwrap();
    let r = Replica::open(g, key());
    assert!(matches!(r, Err(ReplicaError::WrongKey)), "{r:?}");
    assert!(tried > 40);
}

/// The newest `log.*` file of a FileStore directory.
fn log_file(dir: &Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("log."))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

#[test]
fn a_truncated_file_store_log_reopens_to_the_last_good_record() {
    for cut in [1u64, 7, 30] {
        let dir = tempfile::tempdir().unwrap();
        let open_fs = || Box::new(FileStore::open(dir.path()).unwrap()) as Box<dyn Storage + Send>;
        let mut a = create(open_fs(), 1, full(), Options::default());
        let mut states = Vec::new();
        let mut outboxes = Vec::new();
        for i in 0..4 {
            let _ = set(&mut a, &format!("k{i}"), i);
            states.push(st(&a));
            outboxes.push(a.outbox().to_vec());
        }
        drop(a);
        let log = log_file(dir.path());
        let len = std::fs::metadata(&log).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
        f.set_len(len - cut).unwrap();
        drop(f);
        let mut a = reopen(open_fs(), Options::default(), cut);
        assert_eq!(st(&a), states[2], "cut {cut}");
        assert_eq!(a.outbox(), &outboxes[2][..], "cut {cut}");
        // After the repair the replica goes on.
        let _ = set(&mut a, "k3", "again");
        let s = st(&a);
        drop(a);
        let a = reopen(open_fs(), Options::default(), 100);
        assert_eq!(st(&a), s);
        assert_eq!(a.doc().get("k3"), Some(json!("again")));
    }
}

#[test]
fn a_removed_member_and_a_locked_directory() {
    let dc = tempfile::tempdir().unwrap();
    let fc = || FileStore::open(dc.path()).map(|f| Box::new(f) as Box<dyn Storage + Send>);
    let mut rs = vec![create(mem(), 1, full(), Options::default())];
    join(
        &mut rs,
        0,
        joiner(mem(), 2, Options::default()),
        Role::Writer,
    );
    join(
        &mut rs,
        0,
        joiner(fc().unwrap(), 3, Options::default()),
        Role::Writer,
    );
    let _ = set(&mut rs[2], "by_c", 1);
    flush(&mut rs);
    // While C's replica holds its directory, a second store on it is refused.
    assert!(matches!(fc(), Err(StoreError::Locked(_))));
    let _ = rs[0].remove_members(&[dev_id(3)]).unwrap();
    flush(&mut rs);
    assert!(!rs[2].is_current_member());
    assert_eq!(rs[0].members().len(), 2);
    // C may no longer edit; its view survives a restart.
    assert!(matches!(
        rs[2].change(|tx| tx.set("x", 1)),
        Err(ReplicaError::Group(_))
    ));
    let st_c = st(&rs[2]);
    drop(rs.pop());
    let c = reopen(fc().unwrap(), Options::default(), 1);
    assert_eq!(st(&c), st_c);
    assert!(c.is_member() && !c.is_current_member());
    // The others go on without it.
    let _ = set(&mut rs[1], "after_removal", true);
    flush(&mut rs);
    assert_converged(&rs);
    assert_eq!(c.doc().get("after_removal"), None);
}

// ---- Observers ----------------------------------------------------------------------------------

#[test]
fn observers_see_remote_changes_as_patches_and_membership_changes() {
    let mut rs = vec![create(mem(), 1, full(), Options::default())];
    let _ = rs[0].change(|tx| tx.set("list", json!(["a"]))).unwrap();
    join(
        &mut rs,
        0,
        joiner(mem(), 2, Options::default()),
        Role::Writer,
    );
    let rx_a = rs[0].subscribe();
    let rx_b = rs[1].subscribe();

    let prev = rs[1].doc().to_json();
    let u = rs[0]
        .change(|tx| {
            tx.set("title", "t")?;
            tx.insert("list", 1, "b")?;
            tx.delete("/list/0")
        })
        .unwrap();
    let local: Vec<Event> = rx_a.try_iter().collect();
    assert_eq!(
        local,
        vec![Event::Changed {
            origin: Origin::Local,
            patches: u.patches.clone()
        }]
    );
    flush(&mut rs);
    let events: Vec<Event> = rx_b.try_iter().collect();
    assert_eq!(events.len(), 1, "{events:?}");
    let Event::Changed { origin, patches } = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!(*origin, Origin::Remote);
    let mut j = prev;
    for p in patches {
        assert!(p.apply_to(&mut j), "{p:?}");
    }
    assert_eq!(j, rs[1].doc().to_json());
    assert_eq!(j, json!({"list": ["b"], "title": "t"}));

    // Membership: a third device joins; both see the new list.
    let c = joiner(mem(), 3, Options::default());
    let mut rx_c_owner = None;
    let card = c.contact_card();
    rs.push(c);
    rx_c_owner.replace(rs[2].subscribe());
    let _ = rs[0].add_member(&card, Role::Reader).unwrap();
    flush(&mut rs);
    let members = rs[0].members();
    assert_eq!(members.len(), 3);
    for rx in [&rx_a, &rx_b] {
        let evs: Vec<Event> = rx.try_iter().collect();
        assert!(evs.contains(&Event::Members(members.clone())), "{evs:?}");
    }
    let evs: Vec<Event> = rx_c_owner.unwrap().try_iter().collect();
    assert_eq!(evs.first(), Some(&Event::Joined), "{evs:?}");
    assert!(evs.contains(&Event::Members(members.clone())), "{evs:?}");

    // A role change and a removal are membership events too; a dropped receiver is fine.
    drop(rx_a);
    let _ = rs[0].set_role(&dev_id(3), Role::Writer).unwrap();
    flush(&mut rs);
    let evs: Vec<Event> = rx_b.try_iter().collect();
    assert!(evs.contains(&Event::Members(rs[0].members())), "{evs:?}");
    assert_eq!(rs[1].role(&dev_id(3)), Some(Role::Writer));
    let _ = rs[0].remove_members(&[dev_id(3)]).unwrap();
    flush(&mut rs);
    let evs: Vec<Event> = rx_b.try_iter().collect();
    assert!(evs.contains(&Event::Members(rs[0].members())), "{evs:?}");
    assert_eq!(rs[1].members().len(), 2);
    assert!(!rs[2].is_current_member() || rs[2].members().len() == 3);
}

// ---- Property: random interleavings with restarts -------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Set { r: usize, k: u8, v: i16 },
    Text { r: usize, pos: usize, c: char },
    Rotate { r: usize },
    Deliver { to: usize, pick: usize },
    Restart { r: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..4u8, any::<i16>()).prop_map(|(r, k, v)| Op::Set { r, k, v }),
        3 => (0..3usize, any::<usize>(), prop::char::range('a', 'e'))
            .prop_map(|(r, pos, c)| Op::Text { r, pos, c }),
        1 => (0..3usize).prop_map(|r| Op::Rotate { r }),
        6 => (0..3usize, any::<usize>()).prop_map(|(to, pick)| Op::Deliver { to, pick }),
        2 => (0..3usize).prop_map(|r| Op::Restart { r }),
    ]
}

fn prop_opts() -> Options {
    Options::default().with_snapshot_after_bytes(2048)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_with_restarts_converge(
        n in 2..=3usize,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let stores: Vec<Arc<Mutex<MemoryStore>>> = (0..n).map(|_| shared_mem()).collect();
        let store = |i: usize| Box::new(Faulty::new(stores[i].clone())) as Box<dyn Storage + Send>;
        let mut rs = vec![create(store(0), 1, full(), prop_opts())];
        let _ = rs[0].change(|tx| tx.set("text", json!([]))).unwrap();
        for i in 1..n {
            join(&mut rs, 0, joiner(store(i), i as u8 + 1, prop_opts()), Role::Writer);
        }
        // Every group message ever made, with its author.
        let mut pool: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut restarts = 0u64;
        for op in ops {
            match op {
                Op::Set { r, k, v } => {
                    let r = r % n;
                    let u = set(&mut rs[r], &format!("k{k}"), v);
                    pool.extend(group_msgs(&u).into_iter().map(|b| (r, b)));
                }
                Op::Text { r, pos, c } => {
                    let r = r % n;
                    let len = rs[r].doc().text("text").unwrap().chars().count();
                    let u = rs[r]
                        .change(|tx| tx.splice_text("text", pos % (len + 1), 0, &c.to_string()))
                        .unwrap()
                        .outgoing;
                    pool.extend(group_msgs(&u).into_iter().map(|b| (r, b)));
                }
                Op::Rotate { r } => {
                    let r = r % n;
                    let u = rs[r].rotate_key().unwrap().outgoing;
                    pool.extend(group_msgs(&u).into_iter().map(|b| (r, b)));
                }
                Op::Deliver { to, pick } => {
                    let to = to % n;
                    if pool.is_empty() {
                        continue;
                    }
                    let (from, bytes) = &pool[pick % pool.len()];
                    if *from != to {
                        let got = rs[to].receive(bytes).unwrap();
                        prop_assert!(!matches!(got, Received::Reply(_) | Received::Joined(_)));
                    }
                }
                Op::Restart { r } => {
                    let r = r % n;
                    let before = st(&rs[r]);
                    let outbox = rs[r].outbox().to_vec();
                    restarts += 1;
                    rs[r] = reopen(store(r), prop_opts(), 10_000 + restarts);
                    prop_assert_eq!(st(&rs[r]), before);
                    prop_assert_eq!(rs[r].outbox(), &outbox[..]);
                }
            }
            for r in rs.iter_mut() {
                let ids: Vec<u64> = r.outbox().iter().map(|m| m.id).collect();
                r.mark_sent(&ids).unwrap();
            }
        }
        // Deliver everything to everyone, in order; then everything is applied.
        for to in 0..n {
            for (from, bytes) in &pool {
                if *from != to {
                    let _ = rs[to].receive(bytes).unwrap();
                }
            }
        }
        flush(&mut rs);
        assert_converged(&rs);
        // And once more after restarting everyone.
        let states: Vec<St> = rs.iter().map(st).collect();
        for (i, r) in rs.iter_mut().enumerate() {
            *r = reopen(store(i), prop_opts(), 20_000 + i as u64);
        }
        let again: Vec<St> = rs.iter().map(st).collect();
        prop_assert_eq!(again, states);
    }
}

/// On a shared channel every device sees every direct envelope: one sealed to another device
/// is an outcome (`NotForThisDevice`), not an error, and changes nothing — for a member and
/// for a device still waiting for its own welcome.
#[test]
fn a_direct_envelope_for_another_device_is_not_for_this_device() {
    let mut rs = vec![create(mem(), 1, full(), Options::default())];
    join(
        &mut rs,
        0,
        joiner(mem(), 2, Options::default()),
        Role::Writer,
    );
    let carol = joiner(mem(), 3, Options::default());
    let dave = joiner(mem(), 4, Options::default());
    let added = rs[0]
        .add_member(&carol.contact_card(), Role::Writer)
        .unwrap();
    let welcome: Vec<Vec<u8>> = added
        .outgoing
        .iter()
        .filter(|m| m.to == Recipient::Device(carol.device_id()))
        .map(|m| m.bytes.clone())
        .collect();
    assert!(!welcome.is_empty());
    let mut dave = dave;
    let before = st(&rs[1]);
    for w in &welcome {
        assert_eq!(rs[1].receive(w).unwrap(), Received::NotForThisDevice);
        assert_eq!(dave.receive(w).unwrap(), Received::NotForThisDevice);
    }
    assert!(same(&st(&rs[1]), &before, true));
    assert!(!dave.is_member());
    // Garbage after a valid direct header is refused the same way; a group envelope's damage
    // stays an error.
    let mut bad = welcome[0].clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(rs[1].receive(&bad).unwrap(), Received::NotForThisDevice);
    for g in group_msgs(&added.outgoing) {
        assert!(matches!(rs[1].receive(&g).unwrap(), Received::Applied(_)));
    }
    let change = set(&mut rs[0], "k", 1);
    let mut bad_group = group_msgs(&change)[0].clone();
    let last = bad_group.len() - 1;
    bad_group[last] ^= 1;
    assert!(matches!(
        rs[1].receive(&bad_group),
        Err(ReplicaError::Group(_))
    ));
}

/// A adds N while B removes D. The adder's forward of the removal's epoch lands in A's
/// durable outbox after `receive`; B sends under the merged key without rotating; N, restarted
/// after the forward, still opens merged-key traffic (the forwarded secret was stored).
#[test]
fn a_forwarded_secret_survives_a_restart() {
    for policy in [GroupPolicy::future_only(), full()] {
        let db = tempfile::tempdir().unwrap();
        let fb = || Box::new(FileStore::open(db.path()).unwrap()) as Box<dyn Storage + Send>;
        // 0 = A, 1 = B (admin), 2 = D.
        let mut rs = vec![create(mem(), 1, policy, Options::default())];
        join(
            &mut rs,
            0,
            joiner(mem(), 2, Options::default()),
            Role::Admin,
        );
        join(
            &mut rs,
            0,
            joiner(mem(), 3, Options::default()),
            Role::Writer,
        );
        let mut n = joiner(fb(), 9, Options::default());
        let card = n.contact_card();
        let add = rs[0].add_member(&card, Role::Writer).unwrap().outgoing;
        let rem = rs[1].remove_members(&[dev_id(3)]).unwrap().outgoing;
        for m in &add {
            match m.to {
                Recipient::Device(d) if d == n.device_id() => {
                    let _ = n.receive(&m.bytes).unwrap();
                }
                Recipient::Group => {
                    for j in [1, 2] {
                        let _ = rs[j].receive(&m.bytes).unwrap();
                    }
                }
                Recipient::Device(_) => {}
            }
        }
        assert!(n.is_member());
        let sent: Vec<u64> = rs[0].outbox().iter().map(|m| m.id).collect();
        rs[0].mark_sent(&sent).unwrap();
        for b in group_msgs(&rem) {
            let _ = rs[0].receive(&b).unwrap();
            let _ = rs[2].receive(&b);
            let _ = n.receive(&b);
        }
        // The forward (and the epoch's op) wait in A's outbox, for N only.
        let fwd: Vec<Outgoing> = rs[0].outbox().to_vec();
        assert!(!fwd.is_empty());
        assert!(fwd.iter().all(|m| m.to == Recipient::Device(n.device_id())));
        // B holds both heads and sends under the merged key: no rotation.
        let x = set(&mut rs[1], "x", "merged");
        assert_eq!(group_msgs(&x).len(), 1, "no rotation first");
        assert!(matches!(
            n.receive(&group_msgs(&x)[0]).unwrap(),
            Received::Pending(_)
        ));
        for m in &fwd {
            let _ = n.receive(&m.bytes).unwrap();
        }
        assert_eq!(n.doc().get("x"), Some(json!("merged")));
        drop(n);
        let mut n = reopen(fb(), Options::default(), 77);
        assert_eq!(n.doc().get("x"), Some(json!("merged")));
        let y = set(&mut rs[1], "y", "after restart");
        assert_eq!(group_msgs(&y).len(), 1, "still no rotation");
        assert!(matches!(
            n.receive(&group_msgs(&y)[0]).unwrap(),
            Received::Applied(_)
        ));
        assert_eq!(n.doc().get("y"), Some(json!("after restart")));
        // D, removed, opens neither.
        for b in group_msgs(&x).iter().chain(group_msgs(&y).iter()) {
            let _ = rs[2].receive(b);
        }
        assert_eq!(rs[2].doc().get("x"), None);
        assert_eq!(rs[2].doc().get("y"), None);
    }
}

/// A store that serves fixed (damaged) contents and counts every write attempted on it.
struct Frozen {
    loaded: Loaded,
    device: Vec<u8>,
    writes: Arc<Mutex<usize>>,
}

impl Frozen {
    fn wrote(&self) -> Result<(), StoreError> {
        *self.writes.lock().unwrap() += 1;
        Ok(())
    }
}

impl Storage for Frozen {
    fn append(&mut self, _: RecordKind, _: &[u8]) -> Result<RecordId, StoreError> {
        self.wrote()?;
        Ok(RecordId::from_u64(u64::MAX / 2))
    }
    fn accept_pending(&mut self, p: RecordId) -> Result<RecordId, StoreError> {
        self.wrote()?;
        Ok(p)
    }
    fn discard_pending(&mut self, _: RecordId) -> Result<(), StoreError> {
        self.wrote()
    }
    fn write_snapshot(&mut self, _: &[u8], _: RecordId) -> Result<(), StoreError> {
        self.wrote()
    }
    fn load(&mut self) -> Result<Loaded, StoreError> {
        Ok(self.loaded.clone())
    }
    fn put_blob(&mut self, _: &str, _: &[u8]) -> Result<(), StoreError> {
        self.wrote()
    }
    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok((name == "device").then(|| self.device.clone()))
    }
    fn remove_blob(&mut self, _: &str) -> Result<bool, StoreError> {
        self.wrote()?;
        Ok(false)
    }
}

/// Every stored record and the snapshot, truncated by a byte, extended by a byte, with one
/// bit flipped, or replaced by an oversized blob: opening is `Corrupt`, and the failed open
/// writes nothing to the store.
#[test]
fn a_damaged_store_is_corrupt_and_a_failed_open_writes_nothing() {
    let mut base = populated();
    let clean = base.load().unwrap();
    let device = base.blob("device").unwrap().unwrap();
    let writes = Arc::new(Mutex::new(0));
    let open = |loaded: Loaded| {
        let store = Frozen {
            loaded,
            device: device.clone(),
            writes: writes.clone(),
        };
        Replica::open_with(Box::new(store), key(), Options::default(), rng(3))
    };
    // The undamaged contents open (and a clean open has nothing to write either).
    assert!(open(clean.clone()).is_ok());
    assert_eq!(*writes.lock().unwrap(), 0);
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 4] = [
        ("truncated", |d| {
            d.pop();
        }),
        ("extended", |d| d.push(0)),
        ("bit-flipped", |d| {
            let mid = d.len() / 2;
            d[mid] ^= 0x10;
        }),
        ("oversized", |d| *d = vec![0x5a; 2 * 1024 * 1024]),
    ];
    let mut tried = 0;
    for (what, damage) in damages {
        for target in 0..=clean.records.len() {
            let mut l = clean.clone();
            match target {
                0 => damage(&mut l.snapshot.as_mut().unwrap().state),
                k => damage(&mut l.records[k - 1].data),
            }
            let r = open(l);
            assert!(
                matches!(r, Err(ReplicaError::Corrupt { .. })),
                "{what} item {target}: {r:?}"
            );
            assert_eq!(*writes.lock().unwrap(), 0, "{what} item {target} wrote");
            tried += 1;
        }
    }
    assert!(tried >= 20, "{tried}");
}
