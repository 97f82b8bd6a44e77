//! The lock of a pipeline on a local lake: an OS file lock under the lake root.
//!
//! The lock is `flock`-style (`File::try_lock`): the kernel releases it when the holder dies,
//! so a lock left by a killed process is recovered by the next start without guessing from
//! pids. The file keeps the holder's pid and start time for the error message.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::LockError;

#[derive(Debug)]
pub struct FileLock {
    _file: File,
    pub path: PathBuf,
}

impl FileLock {
    /// Takes the lock of pipeline `id` under `lake_dir`, or says who holds it.
    pub fn acquire(lake_dir: &Path, id: &str) -> Result<Self, LockError> {
        let dir = lake_dir.join("_locks");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LockError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("{id}.lock"));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .map(|s| format!(" by {}", s.trim()))
                    .unwrap_or_default();
                return Err(LockError::Held {
                    id: id.to_string(),
                    path: path.display().to_string(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        file.set_len(0).map_err(io(&path))?;
        write!(
            file,
            "pid {} since {}",
            std::process::id(),
            chrono::Utc::now().to_rfc3339()
        )
        .map_err(io(&path))?;
        Ok(Self { _file: file, path })
    }
}
