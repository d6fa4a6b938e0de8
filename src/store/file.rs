//! [`FileStore`]: the crash-safe [`Storage`] in one directory. The format and the crash-safety
//! argument are in the [module docs](super).

use std::collections::HashSet;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};

use super::format::{
    decode_blob, decode_snapshot, encode_blob, resolve, scan_log, settle_data, Damage, FrameKeys,
    FrameKind, LogHeader, LogScan, Resolved, SnapFile, BLOB_HEADER_LEN, FORMAT_VERSION,
    FRAME_HEADER_LEN, SALT_LEN, SNAP_HEADER_LEN,
};
use super::fs::{Fs, FsFile, OsFs};
use super::{
    check_blob, check_blob_name, check_record_len, check_snapshot, Loaded, Record, RecordId,
    RecordKind, RecoveryReport, Snapshot, Storage, StoreError, MAX_BLOB_LEN, MAX_LOG_BYTES,
    MAX_LOG_RECORDS, MAX_SNAPSHOT_LEN,
};

/// Name of the lock file.
const LOCK_FILE: &str = "LOCK";
/// Suffix of files being written.
const TMP_SUFFIX: &str = ".tmp";

/// A crash-safe [`Storage`] in one directory: an append-only log with checksummed frames,
/// snapshots that start a new log generation, and one file per blob.
///
/// Open it with [`FileStore::open`], then call [`Storage::load`] once to get what it holds
/// (recovery already happened in `open`). Every mutating call is fsynced before it returns
/// `Ok`: one `fdatasync` per append (also per accept or discard of a pending record), two
/// fsyncs per blob write, four per snapshot. After an I/O error the store is poisoned: drop it
/// and open it again. The directory is locked while the store is open. The [module docs](super) describe the format, the recovery rules and why a
/// crash at any point leaves a consistent store.
pub struct FileStore {
    dir: PathBuf,
    fs: Box<dyn Fs>,
    /// Holds the advisory lock until dropped.
    _lock: File,
    /// The current generation.
    generation: u64,
    /// Checksum keys of the current log.
    keys: FrameKeys,
    /// The current log, open for writing at its end.
    log: Box<dyn FsFile>,
    /// Bytes in the current log.
    log_len: u64,
    /// Frames in the current log.
    frames: usize,
    /// The id the next record gets.
    next_id: u64,
    /// The current snapshot's `covers_through` (0 without a snapshot).
    covers: u64,
    /// Ids of the live pending records.
    pending: HashSet<u64>,
    /// Set by an I/O error in a mutating call.
    poisoned: bool,
    /// What `open` read, kept for the first `load` so the log is not read twice.
    opened: Option<Loaded>,
    /// What `open` repaired.
    recovered: RecoveryReport,
    /// Frame encoding buffer, reused between appends.
    buf: Vec<u8>,
}

impl fmt::Debug for FileStore {
    /// Shows where the store is, not what it holds (records and blobs can be large, and blobs
    /// hold wrapped secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            dir,
            fs: _,
            _lock: _,
            generation,
            keys: _,
            log: _,
            log_len,
            frames,
            next_id,
            covers,
            pending,
            poisoned,
            opened: _,
            recovered: _,
            buf: _,
        } = self;
        f.debug_struct("FileStore")
            .field("dir", dir)
            .field("generation", generation)
            .field("log_len", log_len)
            .field("frames", frames)
            .field("next_id", next_id)
            .field("covers", covers)
            .field("pending", &pending.len())
            .field("poisoned", poisoned)
            .finish_non_exhaustive()
    }
}

/// Builds the error for a failed `op` on `path`.
fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn damaged(path: &Path, damage: Damage) -> StoreError {
    match damage {
        Damage::Corrupt { offset, reason } => StoreError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason,
        },
        Damage::Version(found) => StoreError::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
        },
    }
}

fn corrupt(path: &Path, offset: u64, reason: &'static str) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    }
}

/// Reads a file of at most `max` bytes, with the limit in the error.
fn read_limited(fs: &dyn Fs, path: &Path, max: u64) -> Result<Vec<u8>, StoreError> {
    fs.read(path, max).map_err(|e| match e.kind() {
        io::ErrorKind::FileTooLarge => StoreError::FileTooLarge {
            path: path.to_path_buf(),
            max,
        },
        _ => io_err("read", path)(e),
    })
}

fn log_name(generation: u64) -> String {
    format!("log.{generation:016x}")
}

fn snap_name(generation: u64) -> String {
    format!("snap.{generation:016x}")
}

/// The generation in a `log.<gen>` or `snap.<gen>` file name.
fn parse_generation(name: &str, prefix: &str) -> Option<u64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(TMP_SUFFIX);
    PathBuf::from(s)
}

fn fresh_salt(dir: &Path) -> Result<[u8; SALT_LEN], StoreError> {
    let mut salt = [0u8; SALT_LEN];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| io_err("getrandom", dir)(io::Error::other(e.to_string())))?;
    Ok(salt)
}

/// Takes the exclusive advisory lock on the directory.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err("open", &path))?;
    // Called through the trait: `File::try_lock` in std is newer than our MSRV.
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(file),
        Err(fs4::TryLockError::WouldBlock) => Err(StoreError::Locked(dir.to_path_buf())),
        Err(fs4::TryLockError::Error(e)) => Err(io_err("lock", &path)(e)),
    }
}

/// Writes `bytes` to `path` through a temporary file: create, write, fsync, rename, fsync the
/// directory. Afterwards `path` has the new content durably; a crash before leaves the old.
fn write_atomic(fs: &dyn Fs, dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = tmp_path(path);
    let mut f = fs.create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    f.sync().map_err(io_err("fsync", &tmp))?;
    drop(f);
    fs.rename(&tmp, path).map_err(io_err("rename", &tmp))?;
    fs.sync_dir(dir).map_err(io_err("fsync", dir))
}

/// Checks what the log holds against the snapshot and settles it.
fn check_and_resolve<'a>(
    path: &Path,
    scan: &LogScan<'a>,
    generation: u64,
    covers: u64,
) -> Result<Resolved<'a>, StoreError> {
    if scan.header.generation != generation {
        return Err(corrupt(
            path,
            12,
            "log generation does not match its file name",
        ));
    }
    if covers >= scan.header.first_id {
        return Err(corrupt(
            path,
            20,
            "log starts inside what the snapshot covers",
        ));
    }
    let resolved = resolve(&scan.frames).map_err(|reason| corrupt(path, 0, reason))?;
    if resolved
        .records
        .iter()
        .any(|&(id, kind, _)| kind == RecordKind::Accepted && id <= covers)
    {
        return Err(corrupt(
            path,
            0,
            "log holds an accepted record the snapshot covers",
        ));
    }
    Ok(resolved)
}

fn to_records(resolved: &Resolved<'_>) -> Vec<Record> {
    resolved
        .records
        .iter()
        .map(|&(id, kind, data)| Record {
            id: RecordId(id),
            kind,
            data: data.to_vec(),
        })
        .collect()
}

impl FileStore {
    /// Opens the store in `dir`, creating the directory and an empty store if needed, and
    /// recovers from any crash: a torn final record is cut off, leftovers of an interrupted
    /// snapshot or blob write are removed. What was repaired is in the
    /// [`RecoveryReport`] of the next [`Storage::load`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`] if another `FileStore` has the directory open;
    /// [`StoreError::Corrupt`], [`StoreError::UnsupportedVersion`] or
    /// [`StoreError::FileTooLarge`] if a file is damaged beyond a torn tail; I/O errors.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir.as_ref(), Box::new(OsFs))
    }

    /// The store's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True after an I/O error in a mutating call: every call fails until the store is
    /// opened again.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// [`open`](Self::open) over any [`Fs`], for fault injection.
    pub(crate) fn open_with(dir: &Path, fs: Box<dyn Fs>) -> Result<Self, StoreError> {
        fs.create_dir_all(dir).map_err(io_err("create", dir))?;
        let lock = lock_dir(dir)?;
        let mut recovered = RecoveryReport::default();

        // 1. Find the current generation: the greatest one with a committed snapshot.
        let names = fs.list(dir).map_err(io_err("list", dir))?;
        let logs: Vec<u64> = names
            .iter()
            .filter_map(|n| parse_generation(n, "log."))
            .collect();
        let snaps: Vec<u64> = names
            .iter()
            .filter_map(|n| parse_generation(n, "snap."))
            .collect();
        let generation = snaps.iter().copied().max().unwrap_or(0);

        // 2. Make what we observed durable before deleting anything because of it.
        fs.sync_dir(dir).map_err(io_err("fsync", dir))?;

        // 3. Remove temporary files and the files of other generations.
        let is_ours =
            |n: &str| n.starts_with("log.") || n.starts_with("snap.") || n.starts_with("blob.");
        let leftovers = names.iter().filter(|n| {
            (n.ends_with(TMP_SUFFIX) && is_ours(n.as_str()))
                || parse_generation(n, "log.").is_some_and(|g| g != generation)
                || parse_generation(n, "snap.").is_some_and(|g| g != generation)
        });
        for name in leftovers {
            let path = dir.join(name);
            fs.remove(&path).map_err(io_err("remove", &path))?;
            recovered.removed_files.push(name.clone());
        }
        // No directory fsync needed: a removal that is lost is redone by the next open.

        // 4. The snapshot.
        let snapshot = if generation > 0 {
            let path = dir.join(snap_name(generation));
            let bytes = read_limited(&*fs, &path, (SNAP_HEADER_LEN + MAX_SNAPSHOT_LEN) as u64)?;
            let snap = decode_snapshot(&bytes).map_err(|d| damaged(&path, d))?;
            if snap.generation != generation {
                return Err(corrupt(
                    &path,
                    12,
                    "snapshot generation does not match its file name",
                ));
            }
            Some(Snapshot {
                covers_through: RecordId(snap.covers_through),
                state: snap.data.to_vec(),
            })
        } else {
            None
        };
        let covers = snapshot.as_ref().map_or(0, |s| s.covers_through.0);

        // 5. The log: create generation 0's on first open; read it, cut a torn tail.
        let log_path = dir.join(log_name(generation));
        if !logs.contains(&generation) {
            // Only an empty directory is a new store. Any other file of ours (a blob, another
            // generation) was written after generation 0's log was durable, so the log was lost.
            let fresh = names
                .iter()
                .all(|n| !is_ours(n.as_str()) || n.ends_with(TMP_SUFFIX));
            if generation > 0 || !fresh {
                return Err(corrupt(
                    &log_path,
                    0,
                    "the log of the current generation is missing",
                ));
            }
            let header = LogHeader {
                generation: 0,
                first_id: 1,
                salt: fresh_salt(dir)?,
            };
            write_atomic(&*fs, dir, &log_path, &header.encode())?;
        }
        let bytes = read_limited(&*fs, &log_path, MAX_LOG_BYTES)?;
        let scan = scan_log(&bytes).map_err(|d| damaged(&log_path, d))?;
        let resolved = check_and_resolve(&log_path, &scan, generation, covers)?;
        let mut log = fs
            .open_append(&log_path)
            .map_err(io_err("open", &log_path))?;
        if let Some(torn) = &scan.torn {
            log.truncate(scan.good_len as u64)
                .map_err(io_err("truncate", &log_path))?;
            log.sync().map_err(io_err("fsync", &log_path))?;
            recovered.torn_tail = Some(torn.clone());
        }

        let last_frame = scan.frames.last().map_or(0, |f| f.id);
        let next_id = scan.header.first_id.max(last_frame.saturating_add(1));
        let pending = resolved
            .records
            .iter()
            .filter(|r| r.1 == RecordKind::Pending)
            .map(|r| r.0)
            .collect();
        let opened = Loaded {
            snapshot,
            records: to_records(&resolved),
            recovered: recovered.clone(),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            fs,
            _lock: lock,
            generation,
            keys: FrameKeys::new(&scan.header.salt),
            log,
            log_len: scan.good_len as u64,
            frames: scan.frames.len(),
            next_id,
            covers,
            pending,
            poisoned: false,
            opened: Some(opened),
            recovered,
            buf: Vec::new(),
        })
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(log_name(self.generation))
    }

    fn usable(&self) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        Ok(())
    }

    /// Poisons the store if `r` is an I/O error.
    fn poison_on_err<T>(&mut self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }

    /// Appends one frame and fsyncs it; returns its id.
    fn write_frame(&mut self, kind: FrameKind, data: &[u8]) -> Result<u64, StoreError> {
        self.usable()?;
        check_record_len(data.len())?;
        let id = self.next_id;
        let frame_len = (FRAME_HEADER_LEN + data.len()) as u64;
        let next = id
            .checked_add(1)
            .filter(|_| self.frames < MAX_LOG_RECORDS && self.log_len + frame_len <= MAX_LOG_BYTES);
        let Some(next) = next else {
            return Err(StoreError::LogFull {
                frames: self.frames,
                bytes: self.log_len,
            });
        };
        self.buf.clear();
        self.keys.encode_frame(kind, id, data, &mut self.buf);
        let path = self.log_path();
        let written = self
            .log
            .write_all(&self.buf)
            .map_err(io_err("append", &path))
            .and_then(|()| self.log.sync().map_err(io_err("fsync", &path)));
        self.poison_on_err(written)?;
        self.next_id = next;
        self.log_len += frame_len;
        self.frames += 1;
        self.opened = None;
        Ok(id)
    }

    fn settle(&mut self, pending: RecordId, kind: FrameKind) -> Result<u64, StoreError> {
        self.usable()?;
        if !self.pending.contains(&pending.0) {
            return Err(StoreError::NotPending(pending));
        }
        let id = self.write_frame(kind, &settle_data(pending))?;
        self.pending.remove(&pending.0);
        Ok(id)
    }

    /// Reads the current log. It has no torn tail: open cut it, and every later write was
    /// whole or poisoned the store.
    fn read_log(&self) -> Result<Vec<u8>, StoreError> {
        read_limited(&*self.fs, &self.log_path(), MAX_LOG_BYTES)
    }

    /// Steps 2 to 4 of compaction (module docs); `Ok` once the new generation is committed.
    fn commit_generation(
        &self,
        new_log: &[u8],
        snapshot: &[u8],
        generation: u64,
    ) -> Result<Box<dyn FsFile>, StoreError> {
        let (fs, dir) = (&*self.fs, &self.dir);
        let log_path = dir.join(log_name(generation));
        let mut log = fs.create(&log_path).map_err(io_err("create", &log_path))?;
        log.write_all(new_log).map_err(io_err("write", &log_path))?;
        log.sync().map_err(io_err("fsync", &log_path))?;
        fs.sync_dir(dir).map_err(io_err("fsync", dir))?;
        write_atomic(fs, dir, &dir.join(snap_name(generation)), snapshot)?;
        Ok(log)
    }
}

impl Storage for FileStore {
    fn append(&mut self, kind: RecordKind, data: &[u8]) -> Result<RecordId, StoreError> {
        let id = self.write_frame(kind.into(), data)?;
        if kind == RecordKind::Pending {
            self.pending.insert(id);
        }
        Ok(RecordId(id))
    }

    fn accept_pending(&mut self, pending: RecordId) -> Result<RecordId, StoreError> {
        self.settle(pending, FrameKind::Promote).map(RecordId)
    }

    fn discard_pending(&mut self, pending: RecordId) -> Result<(), StoreError> {
        self.settle(pending, FrameKind::Discard).map(drop)
    }

    fn write_snapshot(&mut self, state: &[u8], covers_through: RecordId) -> Result<(), StoreError> {
        self.usable()?;
        check_snapshot(state.len(), covers_through.0, self.covers, self.next_id)?;
        let covers = covers_through.0;
        let generation = self.generation.checked_add(1).ok_or(StoreError::LogFull {
            frames: self.frames,
            bytes: self.log_len,
        })?;

        // 1. Build the new log from the verified current one.
        let log_path = self.log_path();
        let bytes = self.read_log()?;
        let scan = scan_log(&bytes).map_err(|d| damaged(&log_path, d))?;
        if scan.torn.is_some() {
            return Err(corrupt(
                &log_path,
                scan.good_len as u64,
                "log changed under the store",
            ));
        }
        let resolved = check_and_resolve(&log_path, &scan, self.generation, self.covers)?;
        let salt = fresh_salt(&self.dir)?;
        let keys = FrameKeys::new(&salt);
        let header = LogHeader {
            generation,
            first_id: self.next_id,
            salt,
        };
        let mut new_log = header.encode().to_vec();
        let mut frames = 0;
        for &(id, kind, data) in &resolved.records {
            if kind == RecordKind::Pending || id > covers {
                keys.encode_frame(kind.into(), id, data, &mut new_log);
                frames += 1;
            }
        }
        let snap = SnapFile {
            generation,
            covers_through: covers,
            data: state,
        }
        .encode();

        // 2.-3. Write the new log and commit the snapshot.
        let committed = self.commit_generation(&new_log, &snap, generation);
        let log = self.poison_on_err(committed)?;

        let old = self.generation;
        self.generation = generation;
        self.keys = keys;
        self.log = log;
        self.log_len = new_log.len() as u64;
        self.frames = frames;
        self.covers = covers;
        self.opened = None;

        // 4. Drop the old generation. The snapshot is committed whatever happens here; a file
        // left behind is removed by the next open.
        let _ = self.fs.remove(&self.dir.join(log_name(old)));
        if old > 0 {
            let _ = self.fs.remove(&self.dir.join(snap_name(old)));
        }
        Ok(())
    }

    fn load(&mut self) -> Result<Loaded, StoreError> {
        self.usable()?;
        if let Some(opened) = self.opened.take() {
            return Ok(opened);
        }
        let snapshot = if self.generation > 0 {
            let path = self.dir.join(snap_name(self.generation));
            let bytes = read_limited(
                &*self.fs,
                &path,
                (SNAP_HEADER_LEN + MAX_SNAPSHOT_LEN) as u64,
            )?;
            let snap = decode_snapshot(&bytes).map_err(|d| damaged(&path, d))?;
            Some(Snapshot {
                covers_through: RecordId(snap.covers_through),
                state: snap.data.to_vec(),
            })
        } else {
            None
        };
        let log_path = self.log_path();
        let bytes = self.read_log()?;
        let scan = scan_log(&bytes).map_err(|d| damaged(&log_path, d))?;
        if scan.torn.is_some() {
            return Err(corrupt(
                &log_path,
                scan.good_len as u64,
                "log changed under the store",
            ));
        }
        let resolved = check_and_resolve(&log_path, &scan, self.generation, self.covers)?;
        Ok(Loaded {
            snapshot,
            records: to_records(&resolved),
            recovered: self.recovered.clone(),
        })
    }

    fn put_blob(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        self.usable()?;
        check_blob(name, data.len())?;
        let bytes = encode_blob(name, data);
        let path = self.dir.join(format!("blob.{name}"));
        let written = write_atomic(&*self.fs, &self.dir, &path, &bytes);
        self.poison_on_err(written)
    }

    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.usable()?;
        check_blob_name(name)?;
        let path = self.dir.join(format!("blob.{name}"));
        let bytes = match read_limited(&*self.fs, &path, (BLOB_HEADER_LEN + MAX_BLOB_LEN) as u64) {
            Ok(b) => b,
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let data = decode_blob(name, &bytes).map_err(|d| damaged(&path, d))?;
        Ok(Some(data.to_vec()))
    }

    fn remove_blob(&mut self, name: &str) -> Result<bool, StoreError> {
        self.usable()?;
        check_blob_name(name)?;
        let path = self.dir.join(format!("blob.{name}"));
        match self.fs.remove(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                self.poisoned = true;
                return Err(io_err("remove", &path)(e));
            }
        }
        let synced = self
            .fs
            .sync_dir(&self.dir)
            .map_err(io_err("fsync", &self.dir));
        self.poison_on_err(synced).map(|()| true)
    }
}
