//! File primitives: atomic writes (model artifacts, registry files) and the registry's lock file.
//!
//! Readers never take the lock: every file they read is replaced by a rename, so they see
//! the old content or the new one, never a mix. Writers serialise on the kernel's exclusive
//! lock of one lock file per registry, so two training jobs cannot both pick the same next
//! version number or interleave read-modify-write cycles of an aliases file. The kernel
//! releases the lock when its holder exits or dies, so there is never a stale lock to break
//! (breaking one by age is check-then-act: two writers could both proceed) and the file
//! itself stays.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};

/// How long to wait for a live writer before giving up.
const WAIT_AT_MOST: Duration = Duration::from_secs(20);

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A name unique to this process and moment, for temporary files and run ids.
pub(crate) fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `bytes` to `path` atomically: a hidden temporary file in the same directory,
/// flushed to disk, then renamed over `path`. Creates the parent directories.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", unique_suffix()));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_error(&tmp))?;
        f.write_all(bytes).map_err(io_error(&tmp))?;
        f.sync_all().map_err(io_error(&tmp))?;
        fs::rename(&tmp, path).map_err(io_error(path))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir);
    Ok(())
}

/// Persists a rename; not every platform can open a directory, so best effort.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `value` as pretty JSON (the registry's files are meant to be read by people).
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::RegistryRefused {
        registry: path.display().to_string(),
        reason: format!("cannot serialise: {e}"),
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Reads a JSON file; `Ok(None)` if it does not exist.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::RegistryRefused {
                registry: path.display().to_string(),
                reason: format!(
                    "the file is not valid registry JSON ({e}); it was edited by hand or by \
                     another tool — restore it from a backup"
                ),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// The registry's write lock: held while the open file is locked, released on drop (or by
/// the kernel, when the process dies).
#[derive(Debug)]
pub(crate) struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// Takes the lock at `path`, waiting for a live holder at most [`WAIT_AT_MOST`].
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_error(path))?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if started.elapsed() < WAIT_AT_MOST => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::RegistryUnreachable {
                        registry: path.display().to_string(),
                        reason: format!(
                            "another isolake job has held its write lock for over {} s",
                            WAIT_AT_MOST.as_secs()
                        ),
                    });
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_error(path)(e)),
            }
        }
        // Who holds it, for a person looking at the file (the lock is the kernel's).
        let _ = file.set_len(0);
        let _ = writeln!(file, "pid {}", std::process::id());
        Ok(WriteLock { _file: file })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};

    use super::*;

    #[test]
    fn one_writer_at_a_time_and_a_left_lock_file_is_no_obstacle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        // A lock file a crashed writer left behind (any age): nobody holds it.
        fs::write(&path, "pid 1\n").unwrap();
        let first = WriteLock::acquire(&path).unwrap();
        let released = Arc::new(AtomicBool::new(false));
        let started = Arc::new(Barrier::new(2));
        let second = {
            let (path, released, started) = (path.clone(), released.clone(), started.clone());
            std::thread::spawn(move || {
                started.wait();
                let lock = WriteLock::acquire(&path).unwrap();
                // Only after the first writer let go.
                assert!(released.load(Ordering::SeqCst));
                drop(lock);
            })
        };
        started.wait();
        std::thread::sleep(Duration::from_millis(200));
        released.store(true, Ordering::SeqCst);
        drop(first);
        second.join().unwrap();
        // The file stays: dropping a lock never removes another writer's.
        assert!(path.exists());
    }
}
