//! Kill-point tests: a scripted workload runs over a [`CrashFs`] that fails at step `k`, for
//! every `k`, in both crash modes; then the store is reopened on the real filesystem and must
//! hold every acknowledged operation, nothing twice, and the one in-flight operation either
//! wholly or not at all. [`MemoryStore`] is the model of what was acknowledged.

use std::path::Path;

use super::fs::{CrashFs, CrashMode};
use super::{FileStore, Loaded, MemoryStore, RecordId, RecordKind, Storage, StoreError};

/// One step of the workload. Ids are the ones the store hands out, which the workload knows in
/// advance because ids are deterministic.
#[derive(Debug, Clone)]
enum Op {
    Append(RecordKind, Vec<u8>),
    Accept(u64),
    Discard(u64),
    Snapshot(&'static [u8], u64),
    PutBlob(&'static str, &'static [u8]),
    RemoveBlob(&'static str),
    /// Drop the store and open it again (with the same filesystem), then load.
    Reopen,
}

const BLOB_NAMES: [&str; 3] = ["device", "epoch-1", "epoch-2"];

fn workload() -> Vec<Op> {
    use Op::*;
    use RecordKind::{Accepted, Pending};
    vec![
        Append(Accepted, b"a1".to_vec()), // 1
        Append(Pending, b"p1".to_vec()),  // 2
        Append(Accepted, Vec::new()),     // 3
        PutBlob("device", b"device secret v1"),
        Append(Pending, b"p2".to_vec()),  // 4
        Accept(2),                        // 5
        Snapshot(b"state through 5", 5),  // generation 1 keeps pending 4
        Append(Accepted, b"a3".to_vec()), // 6
        Reopen,
        PutBlob("device", b"device secret v2"),
        PutBlob("epoch-1", b"epoch 1"),
        Discard(4),                         // 7
        Append(Pending, b"p3".to_vec()),    // 8
        Snapshot(b"state through 6", 6),    // generation 2 keeps pending 8
        Append(Accepted, vec![0xA5; 5000]), // 9
        RemoveBlob("epoch-1"),
        PutBlob("epoch-2", b"epoch 2"),
        Accept(8),                         // 10
        Append(Accepted, b"a5".to_vec()),  // 11
        Snapshot(b"state through 11", 11), // generation 3, empty log
        Append(Pending, b"p4".to_vec()),   // 12
        Append(Accepted, b"a6".to_vec()),  // 13
    ]
}

fn apply(store: &mut dyn Storage, op: &Op) -> Result<(), StoreError> {
    match op {
        Op::Append(kind, data) => store.append(*kind, data).map(drop),
        Op::Accept(id) => store.accept_pending(RecordId(*id)).map(drop),
        Op::Discard(id) => store.discard_pending(RecordId(*id)),
        Op::Snapshot(state, covers) => store.write_snapshot(state, RecordId(*covers)),
        Op::PutBlob(name, data) => store.put_blob(name, data),
        Op::RemoveBlob(name) => store.remove_blob(name).map(drop),
        Op::Reopen => Ok(()),
    }
}

/// Snapshot and records, without the recovery report.
fn view(l: &Loaded) -> (&Option<super::Snapshot>, &Vec<super::Record>) {
    (&l.snapshot, &l.records)
}

fn blobs(store: &dyn Storage) -> Vec<Option<Vec<u8>>> {
    BLOB_NAMES
        .iter()
        .map(|n| store.blob(n).expect("blob"))
        .collect()
}

/// What the workload run acknowledged.
struct Outcome {
    /// The model after every acknowledged operation.
    acked: MemoryStore,
    /// The operation that failed, if one did.
    in_flight: Option<Op>,
}

/// Runs the workload over `fs` until its first error.
fn run(dir: &Path, fs: &CrashFs) -> Outcome {
    let mut acked = MemoryStore::new();
    let stopped = |acked, in_flight| Outcome { acked, in_flight };
    let Ok(mut store) = FileStore::open_with(dir, Box::new(fs.clone())) else {
        return stopped(acked, None);
    };
    for op in workload() {
        if let Op::Reopen = op {
            drop(store);
            store = match FileStore::open_with(dir, Box::new(fs.clone())) {
                Ok(s) => s,
                Err(_) => return stopped(acked, None),
            };
            match store.load() {
                Ok(l) => assert_eq!(view(&l), view(&acked.load().unwrap()), "load after reopen"),
                Err(_) => return stopped(acked, None),
            }
            continue;
        }
        if apply(&mut store, &op).is_err() {
            assert!(fs.crashed(), "only the injected crash fails: {op:?}");
            return stopped(acked, Some(op));
        }
        apply(&mut acked, &op).expect("the model accepts what the store accepted");
    }
    stopped(acked, None)
}

/// Reopens on the real filesystem and checks the store against the model: equal to the
/// acknowledged state, or to it plus the in-flight operation. Then checks that the store goes
/// on handing out the ids the matching model would.
fn verify(dir: &Path, outcome: &Outcome, context: &str) {
    let mut store = FileStore::open(dir).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let got = store
        .load()
        .unwrap_or_else(|e| panic!("{context}: load: {e}"));
    let got_blobs = blobs(&store);

    let mut candidates = vec![outcome.acked.clone()];
    if let Some(op) = &outcome.in_flight {
        let mut after = outcome.acked.clone();
        apply(&mut after, op).expect("the model accepts the in-flight op");
        candidates.push(after);
    }
    let matching = candidates.iter_mut().position(|m| {
        let l = m.load().unwrap();
        view(&l) == view(&got) && blobs(&*m) == got_blobs
    });
    let Some(model) = matching.map(|i| &mut candidates[i]) else {
        panic!(
            "{context}: store holds neither the acknowledged state nor it plus {:?}\n got: {:?}\n \
             blobs: {:?}\n acked: {:?}",
            outcome.in_flight,
            got,
            got_blobs,
            outcome.acked.clone().load().unwrap()
        );
    };
    let a = store.append(RecordKind::Accepted, b"after").unwrap();
    let b = model.append(RecordKind::Accepted, b"after").unwrap();
    assert_eq!(a, b, "{context}: ids continue");
    drop(store);
    let mut again = FileStore::open(dir).unwrap();
    let l = again.load().unwrap();
    assert!(l.recovered.is_clean(), "{context}: second reopen is clean");
    assert_eq!(
        view(&l),
        view(&model.load().unwrap()),
        "{context}: second reopen"
    );
}

/// A temporary directory, in memory where possible: the crash model decides what survives, so
/// real fsyncs would only make these hundreds of runs slow.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

fn total_steps() -> usize {
    let dir = scratch_dir();
    let fs = CrashFs::new(usize::MAX, CrashMode::Process);
    let outcome = run(dir.path(), &fs);
    assert!(outcome.in_flight.is_none() && !fs.crashed());
    verify(dir.path(), &outcome, "no crash");
    fs.steps()
}

fn crash_at_every_step(mode: CrashMode) {
    let total = total_steps();
    assert!(total > 80, "the workload exercises many steps ({total})");
    for k in 0..=total {
        let dir = scratch_dir();
        let outcome = run(dir.path(), &CrashFs::new(k, mode));
        verify(
            dir.path(),
            &outcome,
            &format!("{mode:?} crash at step {k}/{total}"),
        );
    }
}

#[test]
fn a_process_crash_at_any_step_loses_no_acknowledged_operation() {
    crash_at_every_step(CrashMode::Process);
}

#[test]
fn a_power_loss_at_any_step_loses_no_acknowledged_operation() {
    crash_at_every_step(CrashMode::PowerLoss);
}

#[test]
fn a_crash_during_recovery_is_recovered_by_the_next_open() {
    let total = total_steps();
    for mode in [CrashMode::Process, CrashMode::PowerLoss] {
        for k in 0..=total {
            for j in 0.. {
                let dir = scratch_dir();
                let outcome = run(dir.path(), &CrashFs::new(k, mode));
                let recovery = CrashFs::new(j, mode);
                let _ = FileStore::open_with(dir.path(), Box::new(recovery.clone()));
                verify(
                    dir.path(),
                    &outcome,
                    &format!("{mode:?} crash at step {k}, then at recovery step {j}"),
                );
                if !recovery.crashed() {
                    break;
                }
            }
        }
    }
}

#[test]
fn an_io_error_poisons_the_store_until_reopened() {
    let dir = scratch_dir();
    let fs = CrashFs::new(usize::MAX, CrashMode::Process);
    let mut store = FileStore::open_with(dir.path(), Box::new(fs.clone())).unwrap();
    // The next step is the append's write.
    fs.set_fail_at(fs.steps());
    assert!(matches!(
        store.append(RecordKind::Accepted, b"x"),
        Err(StoreError::Io { .. })
    ));
    assert!(store.is_poisoned());
    assert!(matches!(store.load(), Err(StoreError::Poisoned)));
    assert!(matches!(
        store.append(RecordKind::Accepted, b"x"),
        Err(StoreError::Poisoned)
    ));
    drop(store);
    let mut store = FileStore::open(dir.path()).unwrap();
    let l = store.load().unwrap();
    assert!(l.records.is_empty());
    assert!(l.recovered.torn_tail.is_some(), "half a frame was written");
}
