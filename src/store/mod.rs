//! Persistence for a replica: an append-only log of opaque records, snapshots that compact it,
//! and small named blobs. The store never interprets what it keeps.
//!
//! The core library talks to storage through the object-safe [`Storage`] trait, so it never
//! opens a file itself. Two implementations ship:
//!
//! * [`MemoryStore`]: everything in memory, for tests and for applications that persist
//!   elsewhere (they can copy out what [`Storage::load`] returns).
//! * [`FileStore`]: a crash-safe store in one directory, described below.
//!
//! # Records
//!
//! A record is caller bytes with a [`RecordKind`] and a [`RecordId`]. Ids are handed out by the
//! store, strictly increasing in append order, starting at 1, and never reused, not even across
//! compaction. A replica keeps:
//!
//! * **accepted** records: envelopes or signed nodes it applied, in the order it applied them;
//! * **pending** records: envelopes it buffered because they were not yet applicable.
//!
//! A pending record leaves the pending set in one of two ways, each a single durable step:
//! [`Storage::accept_pending`] turns it into an accepted record *at a new id* (its place in the
//! replay order is when it was applied, after the dependencies that made it applicable), and
//! [`Storage::discard_pending`] drops it. Both are atomic, so after a restart a record is
//! either still pending or accepted, never both: "pending envelopes survive a restart" and
//! "never double-apply" need no bookkeeping in the replica.
//!
//! [`Storage::write_snapshot`] stores the replica's state together with the last record id it
//! reflects, `covers_through`. From then on [`Storage::load`] returns that snapshot, the
//! accepted records after it, and every live pending record (of any id: buffered envelopes are
//! not part of the state), all in id order. [`FileStore`] uses the occasion to drop the covered
//! records from disk (compaction).
//!
//! # Example
//!
//! ```
//! use sealdoc::store::{MemoryStore, RecordId, RecordKind, Storage};
//!
//! // A FileStore works the same: `FileStore::open(dir)?`.
//! let mut store = MemoryStore::new();
//! let a = store.append(RecordKind::Accepted, b"envelope 1")?;
//! let p = store.append(RecordKind::Pending, b"envelope 3, waits for 2")?;
//! let b = store.append(RecordKind::Accepted, b"envelope 2")?;
//! let p_accepted = store.accept_pending(p)?; // 3 became applicable after 2
//! store.write_snapshot(b"state after 1 and 2", b)?;
//!
//! let loaded = store.load()?;
//! assert_eq!(loaded.snapshot.unwrap().covers_through, b);
//! let ids: Vec<RecordId> = loaded.records.iter().map(|r| r.id).collect();
//! assert_eq!(ids, [p_accepted]); // replayed after the snapshot, as applied
//! assert!(a < b && b < p_accepted);
//! # Ok::<(), sealdoc::store::StoreError>(())
//! ```
//!
//! # Blobs
//!
//! Named byte strings up to [`MAX_BLOB_LEN`] (device and epoch secrets, which the caller has
//! already encrypted under an application key). [`Storage::put_blob`] replaces atomically;
//! [`Storage::remove_blob`] deletes (old epoch secrets must go for forward secrecy; deleting a
//! file does not scrub the disk, which is why blobs arrive encrypted). Blobs are independent of
//! the log: write the secret a record needs *before* appending the record.
//!
//! # Errors and the in-flight operation
//!
//! Every mutating call is durable when it returns `Ok`. When a [`FileStore`] call fails on an
//! I/O error (or the process dies during it), that one operation is *in flight*: after
//! reopening, it has either fully happened or not at all, never in part, and every earlier
//! `Ok` is kept. A store that saw an I/O error is *poisoned*: every later call returns
//! [`StoreError::Poisoned`] until it is dropped and opened again, because after a failed write
//! or fsync nothing can be assumed about the file (fsync errors are not retryable on Linux).
//! Opening again runs recovery, and what [`Storage::load`] then returns says whether the
//! in-flight operation happened; a replica should rebuild from it rather than trust its
//! in-memory state.
//!
//! # `FileStore` directory layout
//!
//! | file | what |
//! |---|---|
//! | `LOCK` | held with an advisory `flock` while a `FileStore` is open |
//! | `log.<gen>` | the log of generation `gen` (16 lowercase hex digits) |
//! | `snap.<gen>` | the snapshot that started generation `gen` (none for generation 0) |
//! | `blob.<name>` | one blob; names are 1 to [`MAX_BLOB_NAME_LEN`] of `[A-Za-z0-9_-]` |
//! | `*.tmp` | a file being written; removed on open |
//!
//! The **current generation** is the greatest `gen` with a `snap.<gen>` file, or 0 if there is
//! none. Its log must exist: generation 0's is created by the first open of an empty
//! directory, and a missing log next to other store files is [`StoreError::Corrupt`], never
//! a silent fresh start. Files of any other
//! generation are left over from an interrupted or finished compaction and are removed on
//! open. Other files in the directory are left alone.
//!
//! # File formats (version 1, integers little endian)
//!
//! Log file, a 60-byte header and then frames back to back:
//!
//! ```text
//! header:  0  magic "SEALDOCL"         8
//!          8  version = 1             u32
//!         12  generation              u64
//!         20  first id of this log    u64   (ids carried over by compaction are smaller)
//!         28  salt                    16 random bytes
//!         44  BLAKE3(bytes 0..44)     first 16 bytes
//! frame:   0  data length             u32   (at most MAX_RECORD_LEN)
//!          4  kind                    u8    1 accepted, 2 pending, 3 promote, 4 discard
//!          5  record id               u64
//!         13  header check            4 bytes: BLAKE3 keyed(Kh, bytes 0..13)
//!         17  data check              8 bytes: BLAKE3 keyed(Kd, bytes 0..13 ‖ data)
//!         25  data                    (promote/discard: the u64 id of the pending record)
//! ```
//!
//! `Kh` and `Kd` are `blake3::derive_key` of the log's salt under two fixed contexts. The checks
//! are keyed so that record data chosen by a remote peer (an envelope) cannot contain bytes that
//! pass for a frame: the peer does not know the salt. They are integrity checks against torn
//! writes and bit rot, not authentication against someone who can read the directory.
//!
//! Snapshot file: `"SEALDOCS"`, version u32, generation u64, covers_through u64, data length
//! u64, first 16 bytes of BLAKE3(bytes 0..36 ‖ data), data. Blob file: `"SEALDOCB"`, version
//! u32, data length u64, first 16 bytes of BLAKE3(bytes 0..20 ‖ name ‖ data), data.
//!
//! # Reading a log: torn tail versus corruption
//!
//! Appends are fsynced one at a time, so at most the final frame can be incomplete after a
//! crash. Frames are read in order; at the first frame that does not verify:
//!
//! 1. fewer than 25 bytes left, or an authentic header (header check passes) whose data runs
//!    past the end of the file, or an authentic header whose data fails its check *and ends
//!    exactly at the end of the file*: a **torn tail**;
//! 2. a header that fails its check, with at most one maximal frame of bytes left *and no
//!    valid frame anywhere after it*: a **torn tail** (a power loss can leave zeros or stale
//!    blocks where the last frame should be);
//! 3. anything else (a bad frame followed by more data, a valid frame after a damaged one, an
//!    authentic header with an impossible length, kind or id): **corruption**.
//!
//! A torn tail is cut off (the file is truncated to the last good frame and fsynced) and
//! reported in [`RecoveryReport::torn_tail`]. It never holds an acknowledged record: an append
//! returns `Ok` only after its frame and everything before it are on disk. Corruption is
//! [`StoreError::Corrupt`] with the file and offset; the store does not open, because
//! skipping damaged acknowledged records silently would break the replica's guarantees. (A
//! single flipped bit in the *last* frame is indistinguishable from a torn write and is treated
//! as one; it is reported.) Snapshots and blobs are written whole and renamed into place, so
//! any damage in them is corruption.
//!
//! # Crash safety, step by step
//!
//! *Append* (also promote and discard, which are frames): write the frame at the end of the
//! log, `fdatasync`, return `Ok`. A crash before the sync completes leaves a prefix of the frame
//! (or nothing, or the whole frame), which rule 1 or 2 above classifies as a torn tail; a whole
//! frame is kept. Either way, the in-flight record is all there or not at all.
//!
//! *Snapshot and compaction*, from generation `g` to `g + 1`:
//!
//! 1. read and verify `log.<g>`; build the new log: header (new salt, `first id` = next id),
//!    then the live pending records and the accepted records above `covers_through`, settled
//!    (promotions applied), with their ids;
//! 2. write it to `log.<g+1>`, fsync it, fsync the directory;
//! 3. write the snapshot to `snap.<g+1>.tmp`, fsync it, rename it to `snap.<g+1>`, fsync the
//!    directory. **The durable rename is the commit point**;
//! 4. remove `log.<g>` and `snap.<g>`. Return `Ok`.
//!
//! A crash before the rename is durable leaves `snap.<g+1>` absent: open picks generation `g`
//! (whose files are untouched) and removes `log.<g+1>` and the temporary file, giving the old
//! view. After the durable rename, open picks `g + 1`, whose log was durable before the rename,
//! and removes the generation `g` files, giving the new view. The two views are the same
//! records except for what the snapshot covers.
//!
//! *Blob*: write `blob.<name>.tmp`, fsync, rename over `blob.<name>`, fsync the directory. A
//! crash leaves the old or the new blob, never a mix. *Remove blob*: unlink, fsync the directory.
//!
//! *Open*: take the lock; list the directory; pick the current generation; **fsync the
//! directory** (so the state that was observed, in particular a rename made just before a
//! crash, is durable before anything is deleted because of it); remove leftovers; verify the
//! snapshot; read the log, truncate a torn tail and fsync. A crash during open leaves a
//! directory from which the next open reaches the same result, so recovery is idempotent.
//! Generation 0's log is created with the temporary-file dance above, so an existing log file
//! always has a whole header.
//!
//! The unit tests check this argument mechanically: a scripted workload runs over a filesystem
//! that stops working after its `k`-th operation, for every `k`, once keeping all written
//! bytes (a process crash) and once discarding everything not yet fsynced, including directory
//! entries (a power loss); every reopen must show every acknowledged operation, nothing twice,
//! and the in-flight operation fully or not at all.
//!
//! # Locking
//!
//! [`FileStore::open`] takes an exclusive advisory lock (`flock` on Unix, `LockFileEx` on
//! Windows, through the `fs4` crate) on `LOCK`, so a second `FileStore` on the same directory,
//! in this process or another, fails with [`StoreError::Locked`]. The lock dies with the
//! process, so a crash never leaves a stale lock behind. Advisory locks bind only programs that
//! ask for them, and may not work on network filesystems.

mod error;
mod file;
mod format;
mod fs;
mod memory;

#[cfg(test)]
mod crash_tests;

pub use error::StoreError;
pub use file::FileStore;
pub use memory::MemoryStore;

/// Largest record, in bytes: 1 MiB plus 4 KiB.
///
/// An envelope is at most 1 MiB (the crypto layer's limit); 4 KiB leaves room for whatever the
/// replica stores beside it. A length field claiming more is rejected before any allocation.
pub const MAX_RECORD_LEN: usize = 1024 * 1024 + 4096;

/// Largest snapshot, in bytes: 256 MiB.
///
/// A snapshot is one replica's whole state and is held in memory to write and to load. This is
/// far beyond any document the library is meant for, yet keeps a damaged file from making load
/// allocate more than a fixed bound.
pub const MAX_SNAPSHOT_LEN: usize = 256 * 1024 * 1024;

/// Largest blob, in bytes: 1 MiB.
///
/// Blobs hold keys and small metadata (a few hundred bytes each); anything bigger belongs in
/// the log or the snapshot.
pub const MAX_BLOB_LEN: usize = 1024 * 1024;

/// Longest blob name, in bytes. Names are file names, kept short and portable.
pub const MAX_BLOB_NAME_LEN: usize = 64;

/// Most frames in one log (records plus settle frames): 2 Mi.
///
/// Loading keeps about 48 bytes of index per frame besides the data; this caps that at about
/// 100 MiB. Appends past it fail with [`StoreError::LogFull`]: the replica is expected to
/// snapshot long before (a snapshot drops covered records and settle frames).
pub const MAX_LOG_RECORDS: usize = 2 * 1024 * 1024;

/// Largest log, in bytes: 256 MiB.
///
/// Loading reads the log into memory; appends that would pass this fail with
/// [`StoreError::LogFull`], so the store never writes a log it would refuse to load.
pub const MAX_LOG_BYTES: u64 = 256 * 1024 * 1024;

/// Identifies a record: its position in the store's append order.
///
/// Ids are assigned by the store, start at 1, strictly increase, and are never reused. The
/// number can be persisted (for example in a snapshot) and turned back with
/// [`RecordId::from_u64`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(u64);

impl RecordId {
    /// Sorts before every id the store hands out. A snapshot that covers through `BEGIN`
    /// covers no record.
    pub const BEGIN: RecordId = RecordId(0);

    /// The id with this number.
    #[must_use]
    pub const fn from_u64(n: u64) -> Self {
        Self(n)
    }

    /// This id's number.
    #[must_use]
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

/// What a record is to the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// Applied: replayed in id order on load.
    Accepted,
    /// Buffered, not yet applicable: returned on load until accepted or discarded.
    Pending,
}

/// One record returned by [`Storage::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its id (for a promoted pending record, the id [`Storage::accept_pending`] returned).
    pub id: RecordId,
    /// Its kind.
    pub kind: RecordKind,
    /// The caller's bytes.
    pub data: Vec<u8>,
}

/// The snapshot returned by [`Storage::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last record id the state reflects.
    pub covers_through: RecordId,
    /// The caller's state bytes.
    pub state: Vec<u8>,
}

/// Everything a replica needs to start: its last snapshot and the records after it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loaded {
    /// The last snapshot written, if any.
    pub snapshot: Option<Snapshot>,
    /// Accepted records after the snapshot and all live pending records, in id order.
    pub records: Vec<Record>,
    /// What opening the store had to repair.
    pub recovered: RecoveryReport,
}

/// What opening a store repaired. Empty for a store that was closed cleanly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The incomplete final frame cut from the log, if any.
    pub torn_tail: Option<TornTail>,
    /// Files left over by an interrupted write or compaction that were removed.
    pub removed_files: Vec<String>,
}

impl RecoveryReport {
    /// True if nothing needed repair.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.torn_tail.is_none() && self.removed_files.is_empty()
    }
}

/// An incomplete final frame found at the end of the log and cut off.
///
/// It held no acknowledged record: only the append in flight at a crash can leave one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornTail {
    /// Offset in the log file where the torn frame started (the new file length).
    pub offset: u64,
    /// How many bytes were cut.
    pub discarded_bytes: u64,
    /// Which check failed.
    pub reason: &'static str,
}

/// Storage for one replica: an append-only log of opaque records, a snapshot, and named blobs.
///
/// Object safe, so a replica can hold a `Box<dyn Storage>`. Every mutating method is durable
/// when it returns `Ok`. See the [module docs](self) for the model and the guarantees.
pub trait Storage {
    /// Appends a record and returns its id.
    ///
    /// # Errors
    ///
    /// [`StoreError::RecordTooLarge`] past [`MAX_RECORD_LEN`], [`StoreError::LogFull`] past
    /// the log limits (snapshot first), I/O errors (the store is then poisoned).
    fn append(&mut self, kind: RecordKind, data: &[u8]) -> Result<RecordId, StoreError>;

    /// Turns the live pending record `pending` into an accepted record with a new id, which
    /// is returned; load replays it at that id.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotPending`] if `pending` is not a live pending record; as for
    /// [`append`](Storage::append) otherwise.
    fn accept_pending(&mut self, pending: RecordId) -> Result<RecordId, StoreError>;

    /// Drops the live pending record `pending` (it was invalid, or evicted from a bounded
    /// buffer). Uses up one id.
    ///
    /// # Errors
    ///
    /// As for [`accept_pending`](Storage::accept_pending).
    fn discard_pending(&mut self, pending: RecordId) -> Result<(), StoreError>;

    /// Atomically replaces the snapshot with `state`, which reflects every accepted record up
    /// to and including `covers_through`. Those records are no longer returned by load (and
    /// a [`FileStore`] deletes them). Pending records are kept whatever their id.
    ///
    /// # Errors
    ///
    /// [`StoreError::SnapshotTooLarge`] past [`MAX_SNAPSHOT_LEN`];
    /// [`StoreError::InvalidCover`] if `covers_through` is below the current snapshot's or
    /// above the last id handed out; I/O errors.
    fn write_snapshot(&mut self, state: &[u8], covers_through: RecordId) -> Result<(), StoreError>;

    /// Returns the snapshot and the records after it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] and I/O errors for a [`FileStore`].
    fn load(&mut self) -> Result<Loaded, StoreError>;

    /// Atomically creates or replaces blob `name`.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidBlobName`], [`StoreError::BlobTooLarge`] past [`MAX_BLOB_LEN`],
    /// I/O errors.
    fn put_blob(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError>;

    /// Returns blob `name`, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidBlobName`]; [`StoreError::Corrupt`] and I/O errors for a
    /// [`FileStore`].
    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Deletes blob `name`; returns whether it existed.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidBlobName`], I/O errors.
    fn remove_blob(&mut self, name: &str) -> Result<bool, StoreError>;
}

/// Checks a blob name: 1 to [`MAX_BLOB_NAME_LEN`] bytes of `[A-Za-z0-9_-]`, which is a safe
/// file name everywhere and cannot collide with the store's own files.
fn check_blob_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_BLOB_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidBlobName(name.chars().take(80).collect()))
    }
}

/// Checks the limits shared by both stores before a record is written.
fn check_record_len(len: usize) -> Result<(), StoreError> {
    if len > MAX_RECORD_LEN {
        return Err(StoreError::RecordTooLarge {
            len,
            max: MAX_RECORD_LEN,
        });
    }
    Ok(())
}

/// Checks a snapshot against the limit and the valid range of `covers_through`: not below
/// the current snapshot's (records it covered are gone) and not past the last id handed out.
fn check_snapshot(len: usize, covers: u64, min: u64, next_id: u64) -> Result<(), StoreError> {
    if len > MAX_SNAPSHOT_LEN {
        return Err(StoreError::SnapshotTooLarge {
            len,
            max: MAX_SNAPSHOT_LEN,
        });
    }
    let max = next_id.saturating_sub(1);
    if covers < min || covers > max {
        return Err(StoreError::InvalidCover {
            covers_through: RecordId(covers),
            min: RecordId(min),
            max: RecordId(max),
        });
    }
    Ok(())
}

fn check_blob(name: &str, len: usize) -> Result<(), StoreError> {
    check_blob_name(name)?;
    if len > MAX_BLOB_LEN {
        return Err(StoreError::BlobTooLarge {
            len,
            max: MAX_BLOB_LEN,
        });
    }
    Ok(())
}
