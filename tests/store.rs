//! The storage layer through its public API: round trips, recovery from torn tails, damaged
//! and hostile files, limits, locking, and `FileStore` against the `MemoryStore` model.
//! Kill-point tests (crashes injected between filesystem operations) are unit tests in
//! src/store/crash_tests.rs, since they need the internal filesystem trait.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sealdoc::store::{
    FileStore, MemoryStore, RecordId, RecordKind, Storage, StoreError, MAX_BLOB_LEN, MAX_LOG_BYTES,
    MAX_RECORD_LEN,
};

/// Byte layout constants from the `store` module docs.
const LOG_HEADER_LEN: usize = 60;
const FRAME_HEADER_LEN: usize = 25;

fn log_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("log.{generation:016x}"))
}

fn open(dir: &Path) -> FileStore {
    FileStore::open(dir).expect("open")
}

/// Appends `n` accepted records `r0`, `r1`, ... of growing length and returns their data.
fn fill(store: &mut dyn Storage, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let data: Vec<u8> = format!("r{i}").bytes().cycle().take(3 + i * 7).collect();
            store.append(RecordKind::Accepted, &data).unwrap();
            data
        })
        .collect()
}

fn datas(store: &mut dyn Storage) -> Vec<Vec<u8>> {
    store
        .load()
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.data)
        .collect()
}

/// A directory holding a closed store with five accepted records; returns the log bytes and
/// the offset of the last frame.
fn five_records() -> (tempfile::TempDir, Vec<Vec<u8>>, Vec<u8>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = fill(&mut open(dir.path()), 5);
    let log = fs::read(log_path(dir.path(), 0)).unwrap();
    let last = log.len() - FRAME_HEADER_LEN - data[4].len();
    (dir, data, log, last)
}

#[test]
fn load_returns_exactly_what_was_acknowledged_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = MemoryStore::new();
    {
        let mut store = open(dir.path());
        let l = store.load().unwrap();
        assert!(l.snapshot.is_none() && l.records.is_empty() && l.recovered.is_clean());
        for s in [&mut store as &mut dyn Storage, &mut model] {
            let a = s.append(RecordKind::Accepted, b"accepted").unwrap();
            assert_eq!(a, RecordId::from_u64(1));
            let p = s.append(RecordKind::Pending, b"pending").unwrap();
            let q = s.append(RecordKind::Pending, b"dropped").unwrap();
            s.append(RecordKind::Accepted, b"").unwrap();
            s.put_blob("device-key", b"encrypted device key").unwrap();
            s.put_blob("epoch-7", b"old").unwrap();
            s.put_blob("epoch-7", b"new").unwrap();
            s.discard_pending(q).unwrap();
            let promoted = s.accept_pending(p).unwrap();
            assert_eq!(promoted, RecordId::from_u64(6));
            s.append(RecordKind::Pending, b"still pending").unwrap();
        }
        assert_eq!(store.load().unwrap().records, model.load().unwrap().records);
    }
    let mut store = open(dir.path());
    let got = store.load().unwrap();
    assert!(got.recovered.is_clean());
    let want = model.load().unwrap();
    assert_eq!(got.records, want.records);
    let kinds: Vec<_> = got
        .records
        .iter()
        .map(|r| (r.id.as_u64(), r.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, RecordKind::Accepted),
            (4, RecordKind::Accepted),
            (6, RecordKind::Accepted),
            (7, RecordKind::Pending)
        ]
    );
    assert_eq!(got.records[2].data, b"pending");
    assert_eq!(
        store.blob("device-key").unwrap().unwrap(),
        b"encrypted device key"
    );
    assert_eq!(store.blob("epoch-7").unwrap().unwrap(), b"new");
    assert_eq!(store.blob("missing").unwrap(), None);

    // A snapshot drops covered accepted records and keeps pending ones, across a reopen.
    store
        .write_snapshot(b"state", RecordId::from_u64(6))
        .unwrap();
    model
        .write_snapshot(b"state", RecordId::from_u64(6))
        .unwrap();
    store.append(RecordKind::Accepted, b"after").unwrap();
    model.append(RecordKind::Accepted, b"after").unwrap();
    drop(store);
    let mut store = open(dir.path());
    let got = store.load().unwrap();
    let want = model.load().unwrap();
    assert_eq!(got.snapshot, want.snapshot);
    assert_eq!(got.records, want.records);
    assert_eq!(got.snapshot.unwrap().state, b"state");
    assert_eq!(
        got.records
            .iter()
            .map(|r| r.id.as_u64())
            .collect::<Vec<_>>(),
        [7, 8]
    );
    assert!(store.remove_blob("epoch-7").unwrap());
    assert!(!store.remove_blob("epoch-7").unwrap());
    assert_eq!(store.blob("epoch-7").unwrap(), None);
}

#[test]
fn compaction_leaves_only_the_current_generation() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let data = fill(&mut store, 4);
    store.write_snapshot(b"s1", RecordId::from_u64(2)).unwrap();
    store.write_snapshot(b"s2", RecordId::from_u64(4)).unwrap();
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["LOCK", "log.0000000000000002", "snap.0000000000000002"]
    );
    assert!(datas(&mut store).is_empty());
    assert_eq!(
        fs::metadata(log_path(dir.path(), 2)).unwrap().len(),
        LOG_HEADER_LEN as u64
    );
    drop(data);
}

#[test]
fn ids_are_never_reused_after_compaction_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    fill(&mut store, 3);
    store.write_snapshot(b"s", RecordId::from_u64(3)).unwrap();
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(
        store.append(RecordKind::Accepted, b"x").unwrap(),
        RecordId::from_u64(4)
    );
}

#[test]
fn cutting_the_log_anywhere_in_its_last_record_recovers_the_earlier_ones() {
    let (_keep, data, log, last) = five_records();
    for cut in last..log.len() {
        let dir = tempfile::tempdir().unwrap();
        // A fresh store gives the directory its layout; then swap in the cut log.
        drop(open(dir.path()));
        fs::write(log_path(dir.path(), 0), &log[..cut]).unwrap();
        let mut store = open(dir.path());
        let l = store.load().unwrap();
        let got: Vec<_> = l.records.into_iter().map(|r| r.data).collect();
        assert_eq!(got, data[..4], "cut at {cut}");
        match l.recovered.torn_tail {
            None => assert_eq!(cut, last),
            Some(t) => {
                assert_eq!(t.offset, last as u64);
                assert_eq!(t.discarded_bytes, (cut - last) as u64);
            }
        }
        assert_eq!(
            fs::metadata(log_path(dir.path(), 0)).unwrap().len(),
            last as u64,
            "the torn tail is truncated away"
        );
        // The store goes on from there, and the next open is clean.
        store.append(RecordKind::Accepted, b"next").unwrap();
        drop(store);
        let mut store = open(dir.path());
        let l = store.load().unwrap();
        assert!(l.recovered.is_clean());
        assert_eq!(l.records.len(), 5);
        assert_eq!(l.records[4].id, RecordId::from_u64(5));
    }
}

#[test]
fn a_flipped_byte_in_the_last_record_is_caught_by_its_checksum() {
    let (_keep, data, log, last) = five_records();
    for at in [last + FRAME_HEADER_LEN, log.len() - 1] {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        let mut bad = log.clone();
        bad[at] ^= 0x20;
        fs::write(log_path(dir.path(), 0), &bad).unwrap();
        let mut store = open(dir.path());
        let l = store.load().unwrap();
        let torn = l.recovered.torn_tail.expect("reported");
        assert_eq!(torn.offset, last as u64);
        assert_eq!(torn.reason, "the last record fails its checksum");
        assert_eq!(l.records.len(), 4);
        assert_eq!(l.records[3].data, data[3]);
    }
}

#[test]
fn a_flipped_byte_in_a_middle_record_is_a_corruption_error() {
    let (_keep, data, log, _) = five_records();
    // Frame 2 starts after the header and frames 0 and 1.
    let start = LOG_HEADER_LEN + 2 * FRAME_HEADER_LEN + data[0].len() + data[1].len();
    let end = start + FRAME_HEADER_LEN + data[2].len();
    for at in start..end {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        let mut bad = log.clone();
        bad[at] ^= 0x01;
        fs::write(log_path(dir.path(), 0), &bad).unwrap();
        match FileStore::open(dir.path()) {
            Err(StoreError::Corrupt { offset, .. }) => assert_eq!(offset, start as u64, "at {at}"),
            other => panic!("flip at {at}: expected Corrupt, got {other:?}"),
        }
        // Nothing was changed on disk: the damage is left for a human to look at.
        assert_eq!(fs::read(log_path(dir.path(), 0)).unwrap(), bad);
    }
}

#[test]
fn garbage_empty_and_foreign_log_files_are_typed_errors() {
    let cases: [(&str, Vec<u8>); 4] = [
        ("empty", Vec::new()),
        (
            "garbage",
            b"this is not a sealdoc log at all, not even close....".repeat(3),
        ),
        ("short header", b"SEALDOCL\x01\x00".to_vec()),
        ("zeros", vec![0; 4096]),
    ];
    for (what, bytes) in cases {
        let dir = tempfile::tempdir().unwrap();
        fs::write(log_path(dir.path(), 0), &bytes).unwrap();
        assert!(
            matches!(FileStore::open(dir.path()), Err(StoreError::Corrupt { .. })),
            "{what}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let mut log = fs::read(log_path(dir.path(), 0)).unwrap();
    log[8] = 9;
    fs::write(log_path(dir.path(), 0), &log).unwrap();
    assert!(matches!(
        FileStore::open(dir.path()),
        Err(StoreError::UnsupportedVersion {
            found: 9,
            expected: 1,
            ..
        })
    ));
}

#[test]
fn a_huge_length_prefix_allocates_nothing() {
    let (_keep, _, log, _) = five_records();
    let mut huge = u32::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(&[1; FRAME_HEADER_LEN - 4]);

    // As the final bytes: indistinguishable from a torn write, so cut off and reported.
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let mut bad = log.clone();
    bad.extend_from_slice(&huge);
    fs::write(log_path(dir.path(), 0), &bad).unwrap();
    let l = open(dir.path()).load().unwrap();
    assert_eq!(l.records.len(), 5);
    assert_eq!(l.recovered.torn_tail.unwrap().offset, log.len() as u64);

    // Followed by more than one frame's worth of data: corruption.
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    bad.resize(bad.len() + MAX_RECORD_LEN + 100, 7);
    fs::write(log_path(dir.path(), 0), &bad).unwrap();
    assert!(matches!(
        FileStore::open(dir.path()),
        Err(StoreError::Corrupt { .. })
    ));

    // In the middle of the log, before valid frames: corruption.
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let mut bad = log.clone();
    bad[LOG_HEADER_LEN..LOG_HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(log_path(dir.path(), 0), &bad).unwrap();
    assert!(matches!(
        FileStore::open(dir.path()),
        Err(StoreError::Corrupt { offset: 60, .. })
    ));
}

#[test]
fn oversized_files_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    // Sparse: takes no disk space, and must not be read into memory.
    let f = fs::OpenOptions::new()
        .write(true)
        .open(log_path(dir.path(), 0))
        .unwrap();
    f.set_len(MAX_LOG_BYTES + 1).unwrap();
    drop(f);
    assert!(matches!(
        FileStore::open(dir.path()),
        Err(StoreError::FileTooLarge { max, .. }) if max == MAX_LOG_BYTES
    ));

    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let f = fs::File::create(dir.path().join("blob.big")).unwrap();
    f.set_len(4 * MAX_BLOB_LEN as u64).unwrap();
    assert!(matches!(
        store.blob("big"),
        Err(StoreError::FileTooLarge { .. })
    ));
    assert!(
        store.load().is_ok(),
        "a read error does not poison the store"
    );
}

#[test]
fn damaged_snapshots_and_blobs_are_corruption_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    fill(&mut store, 2);
    store
        .write_snapshot(b"state", RecordId::from_u64(2))
        .unwrap();
    store.put_blob("k", b"secret").unwrap();
    drop(store);

    let blob = dir.path().join("blob.k");
    let mut bytes = fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    fs::write(&blob, &bytes).unwrap();
    // A snapshot claiming 2^64-1 bytes: rejected by the length check, nothing allocated.
    let snap = dir.path().join("snap.0000000000000001");
    let mut s = fs::read(&snap).unwrap();
    s[28..36].copy_from_slice(&u64::MAX.to_le_bytes());
    fs::write(&snap, &s).unwrap();
    assert!(matches!(
        FileStore::open(dir.path()),
        Err(StoreError::Corrupt { .. })
    ));
    s[28..36].copy_from_slice(&5u64.to_le_bytes());
    fs::write(&snap, &s).unwrap();
    let store = open(dir.path());
    assert!(matches!(store.blob("k"), Err(StoreError::Corrupt { .. })));
    // A blob file renamed by hand does not pass for another blob.
    bytes[n - 1] ^= 1;
    fs::write(&blob, &bytes).unwrap();
    assert_eq!(store.blob("k").unwrap().unwrap(), b"secret");
    fs::copy(&blob, dir.path().join("blob.other")).unwrap();
    assert!(matches!(
        store.blob("other"),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn leftovers_of_interrupted_writes_are_removed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    fill(&mut store, 2);
    store.write_snapshot(b"s", RecordId::from_u64(1)).unwrap();
    drop(store);
    let p = dir.path();
    fs::write(p.join("snap.0000000000000002.tmp"), b"half a snapshot").unwrap();
    fs::write(p.join("log.0000000000000002"), b"uncommitted log").unwrap();
    fs::write(p.join("log.0000000000000000"), b"superseded log").unwrap();
    fs::write(p.join("blob.k.tmp"), b"half a blob").unwrap();
    fs::write(p.join("notes.txt"), b"not ours").unwrap();
    let l = open(p).load().unwrap();
    let mut removed = l.recovered.removed_files.clone();
    removed.sort();
    assert_eq!(
        removed,
        [
            "blob.k.tmp",
            "log.0000000000000000",
            "log.0000000000000002",
            "snap.0000000000000002.tmp"
        ]
    );
    assert_eq!(l.records.len(), 1);
    assert!(p.join("notes.txt").exists());
}

#[test]
fn a_missing_log_is_an_error_not_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store.put_blob("k", b"v").unwrap();
    fill(&mut store, 1);
    drop(store);
    fs::remove_file(log_path(dir.path(), 0)).unwrap();
    assert!(matches!(
        FileStore::open(dir.path()),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    assert!(matches!(
        FileStore::open(dir.path()),
        Err(StoreError::Locked(_))
    ));
    drop(first);
    let _second = open(dir.path());
}

#[test]
fn caller_mistakes_are_typed_errors_that_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = open(dir.path());
    let mut mem = MemoryStore::new();
    for s in [&mut file as &mut dyn Storage, &mut mem] {
        let a = s.append(RecordKind::Accepted, b"a").unwrap();
        assert!(matches!(
            s.append(RecordKind::Accepted, &vec![0; MAX_RECORD_LEN + 1]),
            Err(StoreError::RecordTooLarge { .. })
        ));
        s.append(RecordKind::Accepted, &vec![0; MAX_RECORD_LEN])
            .unwrap();
        assert!(matches!(
            s.accept_pending(a),
            Err(StoreError::NotPending(_))
        ));
        assert!(matches!(
            s.discard_pending(RecordId::from_u64(99)),
            Err(StoreError::NotPending(_))
        ));
        assert!(matches!(
            s.write_snapshot(b"s", RecordId::from_u64(3)),
            Err(StoreError::InvalidCover { .. })
        ));
        s.write_snapshot(b"s", a).unwrap();
        assert!(matches!(
            s.write_snapshot(b"s", RecordId::BEGIN),
            Err(StoreError::InvalidCover { .. })
        ));
        assert!(matches!(
            s.put_blob("k", &vec![0; MAX_BLOB_LEN + 1]),
            Err(StoreError::BlobTooLarge { .. })
        ));
        for name in ["", "a.b", "../x", "LOCK/x", "é", &"n".repeat(65)] {
            assert!(
                matches!(s.put_blob(name, b"v"), Err(StoreError::InvalidBlobName(_))),
                "{name:?}"
            );
            assert!(matches!(s.blob(name), Err(StoreError::InvalidBlobName(_))));
        }
        s.put_blob(&"n".repeat(64), b"v").unwrap();
        let l = s.load().unwrap();
        assert_eq!(
            l.records.len(),
            1,
            "only the maximal record is after the snapshot"
        );
        assert_eq!(l.records[0].data.len(), MAX_RECORD_LEN);
    }
}

#[test]
fn the_storage_trait_is_object_safe() {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<Box<dyn Storage + Send>> =
        vec![Box::new(MemoryStore::new()), Box::new(open(dir.path()))];
    for mut s in stores {
        let id = s.append(RecordKind::Pending, b"x").unwrap();
        s.accept_pending(id).unwrap();
        assert_eq!(s.load().unwrap().records.len(), 1);
    }
}

/// A directory in memory where possible, for the property tests' many fsyncs.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Step {
    Append(bool, Vec<u8>),
    /// Settle the n-th live pending record (modulo their count).
    Accept(usize),
    Discard(usize),
    /// Snapshot covering through the n-th id handed out so far (modulo).
    Snapshot(usize, Vec<u8>),
    Blob(u8, Option<Vec<u8>>),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        4 => (any::<bool>(), bytes()).prop_map(|(p, d)| Step::Append(p, d)),
        2 => any::<usize>().prop_map(Step::Accept),
        1 => any::<usize>().prop_map(Step::Discard),
        1 => (any::<usize>(), bytes()).prop_map(|(n, s)| Step::Snapshot(n, s)),
        1 => (0u8..3, proptest::option::of(bytes())).prop_map(|(n, d)| Step::Blob(n, d)),
        1 => Just(Step::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn file_store_matches_the_memory_model(steps in proptest::collection::vec(step(), 1..40)) {
        let dir = scratch_dir();
        let mut file = open(dir.path());
        let mut mem = MemoryStore::new();
        let mut issued = 0u64;
        for s in steps {
            let pending: Vec<RecordId> = mem
                .load()
                .unwrap()
                .records
                .iter()
                .filter(|r| r.kind == RecordKind::Pending)
                .map(|r| r.id)
                .collect();
            match s {
                Step::Append(p, d) => {
                    let kind = if p { RecordKind::Pending } else { RecordKind::Accepted };
                    prop_assert_eq!(file.append(kind, &d).unwrap(), mem.append(kind, &d).unwrap());
                    issued += 1;
                }
                Step::Accept(n) | Step::Discard(n) if pending.is_empty() => {
                    let id = RecordId::from_u64(n as u64);
                    let is_accept = matches!(s, Step::Accept(_));
                    let (f, m) = if is_accept {
                        (file.accept_pending(id).map(drop), mem.accept_pending(id).map(drop))
                    } else {
                        (file.discard_pending(id), mem.discard_pending(id))
                    };
                    prop_assert!(matches!(f, Err(StoreError::NotPending(_))));
                    prop_assert!(matches!(m, Err(StoreError::NotPending(_))));
                }
                Step::Accept(n) => {
                    let id = pending[n % pending.len()];
                    prop_assert_eq!(file.accept_pending(id).unwrap(), mem.accept_pending(id).unwrap());
                    issued += 1;
                }
                Step::Discard(n) => {
                    let id = pending[n % pending.len()];
                    file.discard_pending(id).unwrap();
                    mem.discard_pending(id).unwrap();
                    issued += 1;
                }
                Step::Snapshot(n, state) => {
                    let min = mem.load().unwrap().snapshot.map_or(0, |s| s.covers_through.as_u64());
                    let covers = RecordId::from_u64(min + (n as u64) % (issued - min + 1));
                    file.write_snapshot(&state, covers).unwrap();
                    mem.write_snapshot(&state, covers).unwrap();
                }
                Step::Blob(n, data) => {
                    let name = format!("blob-{n}");
                    match data {
                        Some(d) => {
                            file.put_blob(&name, &d).unwrap();
                            mem.put_blob(&name, &d).unwrap();
                        }
                        None => prop_assert_eq!(
                            file.remove_blob(&name).unwrap(),
                            mem.remove_blob(&name).unwrap()
                        ),
                    }
                }
                Step::Reopen => {
                    drop(file);
                    file = open(dir.path());
                    prop_assert!(file.load().unwrap().recovered.is_clean());
                }
            }
            let (f, m) = (file.load().unwrap(), mem.load().unwrap());
            prop_assert_eq!(f.snapshot, m.snapshot);
            prop_assert_eq!(f.records, m.records);
            for n in 0..3 {
                let name = format!("blob-{n}");
                prop_assert_eq!(file.blob(&name).unwrap(), mem.blob(&name).unwrap());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_as_a_log_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        keep_header in any::<bool>(),
    ) {
        let dir = scratch_dir();
        drop(open(dir.path()));
        let path = log_path(dir.path(), 0);
        let mut log = if keep_header {
            fs::read(&path).unwrap()
        } else {
            Vec::new()
        };
        log.extend_from_slice(&bytes);
        fs::write(&path, &log).unwrap();
        if let Ok(mut store) = FileStore::open(dir.path()) {
            let l = store.load().unwrap();
            // Random bytes never pass a keyed frame check: everything after the header is a
            // torn tail (at most one frame long) or an error.
            prop_assert!(l.records.is_empty());
        }
    }

    #[test]
    fn mutated_logs_load_a_prefix_or_fail(
        n in 1usize..6,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..3),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = scratch_dir();
        let data = fill(&mut open(dir.path()), n);
        let path = log_path(dir.path(), 0);
        let mut log = fs::read(&path).unwrap();
        let len = log.len();
        for (i, x) in flips {
            log[i.index(len)] ^= x;
        }
        log.truncate(cut.index(len + 1));
        fs::write(&path, &log).unwrap();
        if let Ok(mut store) = FileStore::open(dir.path()) {
            let got = datas(&mut store);
            prop_assert!(got.len() <= n);
            prop_assert_eq!(&got[..], &data[..got.len()]);
        }
    }
}
