//! Errors of the storage layer.
//!
//! Two kinds share this enum: a caller's mistake (a record or blob too large, a bad blob name,
//! settling a record that is not pending), which changes nothing, and trouble with the disk
//! (I/O errors, damaged files). After an I/O error in a mutating call a
//! [`FileStore`](super::FileStore) is poisoned; see the [module docs](super).

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use super::RecordId;

/// Why a storage operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The operating system reported an error.
    #[error("I/O error during {op} of {path}: {source}")]
    Io {
        /// What the store was doing: "write", "fsync", "rename", ...
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Another [`FileStore`](super::FileStore) (in this process or another) has the directory
    /// open.
    #[error("store directory {0} is locked by another FileStore")]
    Locked(PathBuf),
    /// A file does not verify. The store refuses to open rather than skip acknowledged data.
    #[error("corrupt store file {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What was wrong.
        reason: &'static str,
    },
    /// A file has the right magic but a format version this code does not read.
    #[error("store file {path} has format version {found}, expected {expected}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The version this code reads and writes.
        expected: u32,
    },
    /// A file is larger than any file the store writes of its kind.
    #[error("store file {path} is larger than the limit of {max} bytes")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit for its kind.
        max: u64,
    },
    /// A record was larger than [`MAX_RECORD_LEN`](super::MAX_RECORD_LEN).
    #[error("record of {len} bytes exceeds the limit of {max}")]
    RecordTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A snapshot was larger than [`MAX_SNAPSHOT_LEN`](super::MAX_SNAPSHOT_LEN).
    #[error("snapshot of {len} bytes exceeds the limit of {max}")]
    SnapshotTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A blob was larger than [`MAX_BLOB_LEN`](super::MAX_BLOB_LEN).
    #[error("blob of {len} bytes exceeds the limit of {max}")]
    BlobTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A blob name was empty, too long, or had a character outside `[A-Za-z0-9_-]`.
    #[error("invalid blob name {0:?}: use 1 to 64 of A-Z a-z 0-9 _ -")]
    InvalidBlobName(String),
    /// The log reached [`MAX_LOG_RECORDS`](super::MAX_LOG_RECORDS) or
    /// [`MAX_LOG_BYTES`](super::MAX_LOG_BYTES): write a snapshot to compact it.
    #[error("log full ({frames} frames, {bytes} bytes): write a snapshot to compact it")]
    LogFull {
        /// Frames in the log.
        frames: usize,
        /// Bytes in the log.
        bytes: u64,
    },
    /// `accept_pending` or `discard_pending` named a record that is not a live pending record.
    #[error("record {0:?} is not a live pending record")]
    NotPending(RecordId),
    /// `write_snapshot` got a `covers_through` outside `min..=max`.
    #[error("snapshot cannot cover through {covers_through:?}: must be in {min:?}..={max:?}")]
    InvalidCover {
        /// The requested id.
        covers_through: RecordId,
        /// The current snapshot's `covers_through`.
        min: RecordId,
        /// The last id handed out.
        max: RecordId,
    },
    /// An earlier I/O error left the on-disk state unknown; drop the store and open it again.
    #[error("store is poisoned by an earlier I/O error; reopen it to recover")]
    Poisoned,
}
