//! The filesystem operations a [`FileStore`](super::FileStore) performs, behind a trait so that
//! tests can inject crashes between any two of them (see [`CrashFs`]).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// Every filesystem operation the store performs, one method each.
pub(crate) trait Fs: fmt::Debug + Send + Sync {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of `dir` that are valid UTF-8.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Reads a whole file, failing with [`io::ErrorKind::FileTooLarge`] if it is longer than
    /// `max` (checked before reading, so a huge file is never read into memory).
    fn read(&self, path: &Path, max: u64) -> io::Result<Vec<u8>>;
    /// Creates `path`, or truncates it if it exists, for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Opens the existing file `path` for appending.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file.
pub(crate) trait FsFile: fmt::Debug + Send + Sync {
    /// Writes all of `data` (at the end, for a file opened for appending).
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes the file's data and length durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// The operating system's filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OsFs;

#[derive(Debug)]
struct OsFile(File);

impl Fs for OsFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn read(&self, path: &Path, max: u64) -> io::Result<Vec<u8>> {
        let f = File::open(path)?;
        let len = f.metadata()?.len();
        if len > max {
            return Err(io::ErrorKind::FileTooLarge.into());
        }
        // `len <= max`, and every `max` the store passes fits in memory by design.
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        // Read at most max + 1 bytes in case the file grew after the metadata call.
        f.take(max.saturating_add(1)).read_to_end(&mut buf)?;
        if buf.len() as u64 > max {
            return Err(io::ErrorKind::FileTooLarge.into());
        }
        Ok(buf)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(OsFile(f)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let f = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(OsFile(f)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    #[cfg(unix)]
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    /// Windows cannot open a directory as a file; NTFS journals renames, and there is no
    /// portable way to flush a directory there.
    #[cfg(not(unix))]
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

impl FsFile for OsFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

#[cfg(test)]
pub(crate) use crash::{CrashFs, CrashMode};

/// A filesystem that crashes at a chosen step, for the kill-point tests.
#[cfg(test)]
mod crash {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex, MutexGuard};

    use super::*;

    /// What a crash does to data that was written but not yet made durable.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum CrashMode {
        /// The process dies: everything written so far stays (it is in the page cache), and
        /// the failing write leaves the first half of its bytes (a torn write).
        Process,
        /// The machine loses power: file contents written since their last fsync and
        /// directory changes since the last directory fsync are undone.
        PowerLoss,
    }

    /// A directory change not yet made durable by `sync_dir`, with what undoing it needs.
    #[derive(Debug)]
    enum DirOp {
        Created(PathBuf),
        Renamed {
            from: PathBuf,
            to: PathBuf,
            replaced: Option<Vec<u8>>,
        },
        Removed(PathBuf, Vec<u8>),
    }

    #[derive(Debug)]
    struct State {
        steps: usize,
        fail_at: usize,
        crashed: bool,
        mode: CrashMode,
        /// Durable contents of files changed since their last fsync.
        dirty: HashMap<PathBuf, Vec<u8>>,
        journal: Vec<DirOp>,
    }

    /// Operates on the real filesystem, but operation number `fail_at` (counting from 0, every
    /// method of [`Fs`] and [`FsFile`] is one operation) fails and so does every later one.
    #[derive(Debug, Clone)]
    pub(crate) struct CrashFs {
        state: Arc<Mutex<State>>,
    }

    #[derive(Debug)]
    struct CrashFile {
        inner: Box<dyn FsFile>,
        path: PathBuf,
        state: Arc<Mutex<State>>,
    }

    fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
        state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn crash_err() -> io::Error {
        io::Error::other("simulated crash")
    }

    impl State {
        /// Counts one step; `Err` if this step or an earlier one crashed.
        fn step(&mut self) -> io::Result<()> {
            if self.crashed {
                return Err(crash_err());
            }
            let n = self.steps;
            self.steps += 1;
            if n == self.fail_at {
                self.crash();
                return Err(crash_err());
            }
            Ok(())
        }

        /// True if the next step is the one that crashes (for torn writes).
        fn is_crash_step(&self) -> bool {
            !self.crashed && self.steps == self.fail_at
        }

        fn crash(&mut self) {
            self.crashed = true;
            if self.mode != CrashMode::PowerLoss {
                return;
            }
            for (path, content) in self.dirty.drain() {
                if path.exists() {
                    let _ = fs::write(&path, content);
                }
            }
            while let Some(op) = self.journal.pop() {
                match op {
                    DirOp::Created(p) => {
                        let _ = fs::remove_file(p);
                    }
                    DirOp::Renamed { from, to, replaced } => {
                        let _ = fs::rename(&to, &from);
                        if let Some(old) = replaced {
                            let _ = fs::write(&to, old);
                        }
                    }
                    DirOp::Removed(p, content) => {
                        let _ = fs::write(p, content);
                    }
                }
            }
        }

        /// Remembers the durable content of `path` before its first unsynced change.
        fn touch(&mut self, path: &Path) {
            if !self.dirty.contains_key(path) {
                let content = fs::read(path).unwrap_or_default();
                self.dirty.insert(path.to_path_buf(), content);
            }
        }
    }

    impl CrashFs {
        /// A filesystem whose operation number `fail_at` crashes in `mode`.
        pub fn new(fail_at: usize, mode: CrashMode) -> Self {
            Self {
                state: Arc::new(Mutex::new(State {
                    steps: 0,
                    fail_at,
                    crashed: false,
                    mode,
                    dirty: HashMap::new(),
                    journal: Vec::new(),
                })),
            }
        }

        /// Operations performed (or attempted) so far.
        pub fn steps(&self) -> usize {
            lock(&self.state).steps
        }

        /// Makes operation number `k` the one that crashes.
        pub fn set_fail_at(&self, k: usize) {
            lock(&self.state).fail_at = k;
        }

        /// True once the crash happened.
        pub fn crashed(&self) -> bool {
            lock(&self.state).crashed
        }

        fn file(&self, path: &Path, inner: Box<dyn FsFile>) -> Box<dyn FsFile> {
            Box::new(CrashFile {
                inner,
                path: path.to_path_buf(),
                state: Arc::clone(&self.state),
            })
        }
    }

    impl Fs for CrashFs {
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            lock(&self.state).step()?;
            OsFs.create_dir_all(dir)
        }

        fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
            lock(&self.state).step()?;
            OsFs.list(dir)
        }

        fn read(&self, path: &Path, max: u64) -> io::Result<Vec<u8>> {
            lock(&self.state).step()?;
            OsFs.read(path, max)
        }

        fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
            let mut s = lock(&self.state);
            s.step()?;
            if path.exists() {
                s.touch(path);
            } else {
                s.journal.push(DirOp::Created(path.to_path_buf()));
                s.dirty.insert(path.to_path_buf(), Vec::new());
            }
            drop(s);
            Ok(self.file(path, OsFs.create(path)?))
        }

        fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
            lock(&self.state).step()?;
            Ok(self.file(path, OsFs.open_append(path)?))
        }

        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            let mut s = lock(&self.state);
            s.step()?;
            let replaced = s.dirty.remove(to).or_else(|| fs::read(to).ok());
            if let Some(d) = s.dirty.remove(from) {
                s.dirty.insert(to.to_path_buf(), d);
            }
            s.journal.push(DirOp::Renamed {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                replaced,
            });
            OsFs.rename(from, to)
        }

        fn remove(&self, path: &Path) -> io::Result<()> {
            let mut s = lock(&self.state);
            s.step()?;
            let content = s.dirty.remove(path).map_or_else(|| fs::read(path), Ok)?;
            s.journal.push(DirOp::Removed(path.to_path_buf(), content));
            OsFs.remove(path)
        }

        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            let mut s = lock(&self.state);
            s.step()?;
            s.journal.clear();
            OsFs.sync_dir(dir)
        }
    }

    impl FsFile for CrashFile {
        fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
            let mut s = lock(&self.state);
            if s.crashed {
                return Err(crash_err());
            }
            s.touch(&self.path);
            if s.is_crash_step() && s.mode == CrashMode::Process {
                // A torn write: the first half lands, then the process dies.
                let _ = self.inner.write_all(&data[..data.len() / 2]);
            }
            s.step()?;
            self.inner.write_all(data)
        }

        fn sync(&mut self) -> io::Result<()> {
            let mut s = lock(&self.state);
            s.step()?;
            self.inner.sync()?;
            s.dirty.remove(&self.path);
            Ok(())
        }

        fn truncate(&mut self, len: u64) -> io::Result<()> {
            let mut s = lock(&self.state);
            s.step()?;
            s.touch(&self.path);
            self.inner.truncate(len)
        }
    }
}
