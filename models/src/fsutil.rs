//! File primitives: atomic writes (model artifacts, registry files) and the registry's lock file.
//!
//! Readers never take the lock: every file they read is replaced by a rename, so they see
//! the old content or the new one, never a mix. Writers serialise on one lock file per
//! registry, created with `O_EXCL` (`create_new`), so two training jobs cannot both pick the
//! same next version number or interleave read-modify-write cycles of an aliases file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};

/// A writer holding the lock longer than this is presumed dead (writes take milliseconds).
const STALE_AFTER: Duration = Duration::from_secs(30);
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

/// The registry's write lock; released (the file removed) on drop.
#[derive(Debug)]
pub(crate) struct WriteLock {
    path: PathBuf,
}

impl WriteLock {
    /// Takes the lock at `path`, waiting for a live holder and breaking a stale one (a lock
    /// file older than 30 s: its writer crashed, since writes take milliseconds).
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    let _ = writeln!(f, "pid {}", std::process::id());
                    return Ok(WriteLock {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if is_stale(path) {
                        // Rename first, so only one of several waiters removes the stale lock
                        // (a plain remove could delete a fresh lock taken meanwhile).
                        let grave = path.with_extension(format!("stale-{}", unique_suffix()));
                        if fs::rename(path, &grave).is_ok() {
                            let _ = fs::remove_file(&grave);
                        }
                        continue;
                    }
                    if started.elapsed() > WAIT_AT_MOST {
                        return Err(Error::RegistryUnreachable {
                            registry: path.display().to_string(),
                            reason: format!(
                                "another writer has held the lock for over {} s; if no other \
                                 isolake job is running, delete {}",
                                WAIT_AT_MOST.as_secs(),
                                path.display()
                            ),
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(e) => return Err(io_error(path)(e)),
            }
        }
    }
}

fn is_stale(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_AFTER)
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
