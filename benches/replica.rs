//! Costs of the persisted replica (`sealdoc::replica`), next to the unpersisted layers it is
//! built from, measured in the same run.
//!
//! * **Open to first read.** A replica holding the whole `automerge-paper` trace (see
//!   `benches/support/trace.rs`), made with one `Replica::change` per `N` trace patches
//!   (`splice_text`; outbox marked sent every 64 changes), in a `MemoryStore` and a
//!   `FileStore`. Timed: `Replica::open` (for the `FileStore`, `FileStore::open` too) plus
//!   `doc().text("text")`, best of a few runs. Store size: snapshot plus record bytes (what
//!   `Storage::load` returns), and the `FileStore` directory's bytes on disk. Baseline: the
//!   same trace replayed into a bare `Doc` with one transaction per `N` patches, plus
//!   `text`.
//! * **Sealed round trip.** Alice makes one small change (`change`: transaction, sign, seal,
//!   record), Bob `receive`s it (open, verify, apply, record) and gets `Applied`. Latency of
//!   that path, median and p99; throughput counts the whole loop including Alice's
//!   `mark_sent` (one more record). With `MemoryStore`, with `FileStore` (every record
//!   fsynced), and the baseline of two `group::Member`s without persistence.
//!
//! Run: `cargo bench --bench replica`. `SEALDOC_BENCH_QUICK=1` skips `N = 1` and uses fewer
//! round trips; `SEALDOC_BENCH_FILE_N1=1` adds `N = 1` in a `FileStore` (260k fsyncs).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/trace.rs"]
mod trace;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_core::CryptoRngCore;
use sealdoc::crypto::{DeviceKemSecret, StorageKey};
use sealdoc::doc::{ActorId, Doc, DocError};
use sealdoc::graph::Device;
use sealdoc::group::{GroupPolicy, Joiner, Member, Received as GroupReceived, Role};
use sealdoc::replica::{Options, Received, Recipient, Replica};
use sealdoc::store::{FileStore, Loaded, MemoryStore, RecordId, RecordKind, Storage, StoreError};
use serde_json::json;
use trace::{Res, Trace};
use zeroize::Zeroizing;

fn key() -> StorageKey {
    StorageKey::from_bytes(Zeroizing::new([7; 32]))
}

fn rng(seed: u64) -> Box<dyn CryptoRngCore + Send> {
    Box::new(ChaCha20Rng::seed_from_u64(seed))
}

fn dev(seed: u8) -> (Device, DeviceKemSecret) {
    let kem = DeviceKemSecret::generate(&mut ChaCha20Rng::from_seed([seed.wrapping_add(100); 32]));
    (Device::from_seed(&[seed; 32]), kem)
}

/// A `MemoryStore` the bench can still read after handing it to a replica.
#[derive(Clone)]
struct Shared(Arc<Mutex<MemoryStore>>);

impl Storage for Shared {
    fn append(&mut self, kind: RecordKind, data: &[u8]) -> Result<RecordId, StoreError> {
        self.0.lock().unwrap().append(kind, data)
    }
    fn accept_pending(&mut self, pending: RecordId) -> Result<RecordId, StoreError> {
        self.0.lock().unwrap().accept_pending(pending)
    }
    fn discard_pending(&mut self, pending: RecordId) -> Result<(), StoreError> {
        self.0.lock().unwrap().discard_pending(pending)
    }
    fn write_snapshot(&mut self, state: &[u8], covers_through: RecordId) -> Result<(), StoreError> {
        self.0.lock().unwrap().write_snapshot(state, covers_through)
    }
    fn load(&mut self) -> Result<Loaded, StoreError> {
        self.0.lock().unwrap().load()
    }
    fn put_blob(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        self.0.lock().unwrap().put_blob(name, data)
    }
    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.lock().unwrap().blob(name)
    }
    fn remove_blob(&mut self, name: &str) -> Result<bool, StoreError> {
        self.0.lock().unwrap().remove_blob(name)
    }
}

fn create(store: Box<dyn Storage + Send>, seed: u8) -> Replica {
    let (d, k) = dev(seed);
    Replica::create_with(
        store,
        key(),
        d,
        k,
        GroupPolicy::full_history(),
        Options::default(),
        rng(u64::from(seed)),
    )
    .unwrap()
}

fn joiner(store: Box<dyn Storage + Send>, seed: u8) -> Replica {
    let (d, k) = dev(seed);
    Replica::new_joiner_with(
        store,
        key(),
        d,
        k,
        Options::default(),
        rng(u64::from(seed) + 99),
    )
    .unwrap()
}

fn mark_all_sent(r: &mut Replica) {
    let ids: Vec<u64> = r.outbox().iter().map(|m| m.id).collect();
    r.mark_sent(&ids).unwrap();
}

/// The trace's patches, flattened.
fn patches(t: &Trace) -> Vec<&(usize, usize, String)> {
    t.txns.iter().flat_map(|x| &x.patches).collect()
}

/// Replays the trace into `r`, one change per `n` patches; returns the number of changes.
fn build(r: &mut Replica, ps: &[&(usize, usize, String)], n: usize, t: &Trace) -> Res<usize> {
    let _ = r.change(|tx| tx.set("text", json!([])))?;
    let mut changes = 1;
    for chunk in ps.chunks(n) {
        let _ = r.change(|tx| {
            for (pos, del, ins) in chunk {
                tx.splice_text("text", *pos, *del, ins)?;
            }
            Ok::<_, DocError>(())
        })?;
        changes += 1;
        if changes % 64 == 0 {
            mark_all_sent(r);
        }
    }
    mark_all_sent(r);
    if r.doc().text("text")? != t.end_content {
        return Err("replica text differs from endContent".into());
    }
    Ok(changes)
}

/// The baseline: the trace into a bare `Doc`, one transaction per `n` patches, then `text`.
fn bare_doc(ps: &[&(usize, usize, String)], n: usize, t: &Trace) -> Res<()> {
    let mut doc = Doc::new(ActorId::from_u64(1));
    let _ = doc.transact(|tx| tx.set("text", json!([])))?;
    for chunk in ps.chunks(n) {
        let _ = doc.transact(|tx| {
            for (pos, del, ins) in chunk {
                tx.splice_text("text", *pos, *del, ins)?;
            }
            Ok::<_, DocError>(())
        })?;
    }
    if doc.text("text")? != t.end_content {
        return Err("doc text differs".into());
    }
    Ok(())
}

/// Best of `runs` runs of `f`, which returns the time of the part it measures.
fn best(runs: usize, mut f: impl FnMut() -> Res<Duration>) -> Res<Duration> {
    let mut b = Duration::MAX;
    for _ in 0..runs {
        b = b.min(f()?);
    }
    Ok(b)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn store_bytes(l: &Loaded) -> (usize, usize, usize) {
    let snap = l.snapshot.as_ref().map_or(0, |s| s.state.len());
    let recs: usize = l.records.iter().map(|r| r.data.len()).sum();
    (snap, recs, l.records.len())
}

struct OpenRow {
    what: String,
    changes: usize,
    build: Duration,
    open: Duration,
    store: String,
}

fn open_rows(t: &Trace, ns: &[usize], file_ns: &[usize]) -> Res<Vec<OpenRow>> {
    let ps = patches(t);
    let mut rows = Vec::new();
    for &n in ns {
        let base = best(3, || {
            let s = Instant::now();
            bare_doc(&ps, n, t)?;
            Ok(s.elapsed())
        })?;
        rows.push(OpenRow {
            what: format!("bare Doc replay, N={n}"),
            changes: ps.len().div_ceil(n) + 1,
            build: Duration::ZERO,
            open: base,
            store: "-".into(),
        });

        let mem = Shared(Arc::new(Mutex::new(MemoryStore::new())));
        let mut r = create(Box::new(mem.clone()), 1);
        let s = Instant::now();
        let changes = build(&mut r, &ps, n, t)?;
        let built = s.elapsed();
        drop(r);
        let (snap, recs, nrec) = store_bytes(&mem.0.lock().unwrap().load()?);
        let open = best(3, || {
            let copy = mem.0.lock().unwrap().clone();
            let s = Instant::now();
            let r = Replica::open_with(Box::new(copy), key(), Options::default(), rng(5))?;
            let text = r.doc().text("text")?;
            let e = s.elapsed();
            if text != t.end_content {
                return Err("reopened text differs".into());
            }
            drop(r);
            eprintln!("    open MemoryStore N={n}: {e:.3?}");
            Ok(e)
        })?;
        rows.push(OpenRow {
            what: format!("Replica MemoryStore, N={n}"),
            changes,
            build: built,
            open,
            store: format!("snap {snap} + {nrec} rec {recs}"),
        });
        eprintln!("  N={n}: built in {built:.2?}, open {open:.3?}, base {base:.3?}");

        if file_ns.contains(&n) {
            let dir = tempfile::tempdir()?;
            let mut r = create(Box::new(FileStore::open(dir.path())?), 1);
            let s = Instant::now();
            let changes = build(&mut r, &ps, n, t)?;
            let built = s.elapsed();
            drop(r);
            let open = best(3, || {
                let s = Instant::now();
                let fs = FileStore::open(dir.path())?;
                let r = Replica::open_with(Box::new(fs), key(), Options::default(), rng(6))?;
                let text = r.doc().text("text")?;
                let e = s.elapsed();
                black_box(&text);
                drop(r);
                eprintln!("    open FileStore N={n}: {e:.3?}");
                Ok(e)
            })?;
            let mut fs = FileStore::open(dir.path())?;
            let (snap, recs, nrec) = store_bytes(&fs.load()?);
            drop(fs);
            rows.push(OpenRow {
                what: format!("Replica FileStore, N={n}"),
                changes,
                build: built,
                open,
                store: format!(
                    "snap {snap} + {nrec} rec {recs}; dir {}",
                    dir_bytes(dir.path())
                ),
            });
            eprintln!("  N={n} file: built in {built:.2?}, open {open:.3?}");
        }
    }
    Ok(rows)
}

// ---- Round trip -----------------------------------------------------------------------------

struct TripRow {
    what: &'static str,
    n: usize,
    median: Duration,
    p99: Duration,
    per_sec: f64,
}

fn summarize(what: &'static str, mut lat: Vec<Duration>, total: Duration) -> TripRow {
    lat.sort();
    let n = lat.len();
    TripRow {
        what,
        n,
        median: lat[n / 2],
        p99: lat[(n * 99 / 100).min(n - 1)],
        per_sec: n as f64 / total.as_secs_f64(),
    }
}

fn trip_replicas(
    what: &'static str,
    a: Box<dyn Storage + Send>,
    b: Box<dyn Storage + Send>,
    n: usize,
) -> TripRow {
    let mut alice = create(a, 1);
    let mut bob = joiner(b, 2);
    let add = alice.add_member(&bob.contact_card(), Role::Writer).unwrap();
    for m in &add.outgoing {
        if m.to == Recipient::Device(bob.device_id()) {
            let _ = bob.receive(&m.bytes).unwrap();
        }
    }
    assert!(bob.is_member());
    mark_all_sent(&mut alice);
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let s = Instant::now();
        let u = alice.change(|tx| tx.set("counter", i as i64)).unwrap();
        for m in &u.outgoing {
            match bob.receive(&m.bytes).unwrap() {
                Received::Applied(p) => assert!(!p.is_empty()),
                other => panic!("{other:?}"),
            }
        }
        lat.push(s.elapsed());
        mark_all_sent(&mut alice);
    }
    let total = start.elapsed();
    assert_eq!(bob.doc().get("counter"), Some(json!(n as i64 - 1)));
    summarize(what, lat, total)
}

fn trip_members(n: usize) -> TripRow {
    let mut r = ChaCha20Rng::seed_from_u64(1);
    let (d, k) = dev(1);
    let mut a = Member::create(d, k, GroupPolicy::full_history(), &mut r).unwrap();
    let (d, k) = dev(2);
    let mut j = Joiner::new(d, k);
    let out = a
        .add(&j.contact_card().unwrap(), Role::Writer, &mut r)
        .unwrap()
        .outbound;
    for (_, env) in &out.direct {
        let _ = j.receive(env).unwrap();
    }
    let mut b = j.finish().unwrap().member;
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let s = Instant::now();
        let out = a
            .change(|tx| tx.set("counter", i as i64), &mut r)
            .unwrap()
            .outbound;
        for env in &out.broadcast {
            match b.receive(env, &mut r).unwrap() {
                GroupReceived::Applied(p) => assert!(!p.is_empty()),
                other => panic!("{other:?}"),
            }
        }
        lat.push(s.elapsed());
    }
    let total = start.elapsed();
    summarize("group::Member, no persistence", lat, total)
}

fn main() -> Res<()> {
    let quick = std::env::var_os("SEALDOC_BENCH_QUICK").is_some();
    let started = Instant::now();
    let mut trips = Vec::new();
    let n = if quick { 300 } else { 2000 };
    trips.push(trip_members(n));
    trips.push(trip_replicas(
        "Replica, MemoryStore",
        Box::new(MemoryStore::new()),
        Box::new(MemoryStore::new()),
        n,
    ));
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    trips.push(trip_replicas(
        "Replica, FileStore (fsync)",
        Box::new(FileStore::open(da.path())?),
        Box::new(FileStore::open(db.path())?),
        if quick { 100 } else { 500 },
    ));
    drop((da, db));
    println!();
    println!("Sealed round trip: Alice change -> envelope -> Bob receive -> Applied (one set op)");
    println!(
        "{:<32} {:>6} {:>11} {:>11} {:>10} {:>9}",
        "", "n", "median µs", "p99 µs", "changes/s", "x Member"
    );
    let base = trips[0].median.as_secs_f64();
    for t in &trips {
        println!(
            "{:<32} {:>6} {:>11.1} {:>11.1} {:>10.0} {:>9.2}",
            t.what,
            t.n,
            t.median.as_secs_f64() * 1e6,
            t.p99.as_secs_f64() * 1e6,
            t.per_sec,
            t.median.as_secs_f64() / base
        );
    }

    let Some(t) = trace::load()? else {
        return Ok(());
    };
    let ns: &[usize] = if quick { &[100, 10] } else { &[100, 10, 1] };
    // N = 1 in a FileStore is 260k fsynced appends: a minute on a fast disk, much longer on a
    // loaded one, so only on request.
    let file_ns: &[usize] = if std::env::var_os("SEALDOC_BENCH_FILE_N1").is_some() {
        &[100, 10, 1]
    } else {
        &[100, 10]
    };
    let rows = open_rows(&t, ns, file_ns)?;
    println!();
    println!("Open to first read: whole automerge-paper trace, one change per N patches");
    println!(
        "{:<28} {:>8} {:>10} {:>10} {:>8}  store bytes",
        "", "changes", "build s", "open ms", "x bare"
    );
    let mut base = f64::NAN;
    for r in &rows {
        if r.what.starts_with("bare") {
            base = r.open.as_secs_f64();
        }
        println!(
            "{:<28} {:>8} {:>10.2} {:>10.1} {:>8.1}  {}",
            r.what,
            r.changes,
            r.build.as_secs_f64(),
            r.open.as_secs_f64() * 1e3,
            r.open.as_secs_f64() / base,
            r.store
        );
    }
    eprintln!("total bench time {:.1?}", started.elapsed());
    Ok(())
}
