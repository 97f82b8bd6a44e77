//! One running pipeline per id. A local lake uses an OS file lock ([`file`]); a lake on an
//! object store, where no OS lock reaches across machines, a lease object that the holder
//! renews and a standby takes over ([`lease`]), with a fence on every commit.

pub mod file;
pub mod lease;

use std::path::{Path, PathBuf};

use isolake_data::lake::Fence;
use isolake_data::lake::objects::ObjectDir;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "pipeline {id:?} is already running (lock {path} held{holder}); stop it first, wait \
         for it to finish, or start this one with `run --continuous --standby` to take over \
         when it stops"
    )]
    Held {
        id: String,
        path: String,
        holder: String,
    },
    #[error("lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lease {location}: {source}")]
    Store {
        location: String,
        source: Box<isolake_data::Error>,
    },
    #[error(
        "lease {location} is not a lease this version reads ({reason}); if no pipeline {id:?} runs, delete it"
    )]
    Corrupt {
        location: String,
        id: String,
        reason: String,
    },
}

/// How to take the lock.
#[derive(Debug, Clone, Copy, Default)]
pub struct LockOptions {
    /// Wait for the holder to stop (its lease to expire) instead of failing.
    pub standby: bool,
}

/// The held lock: released when dropped.
#[derive(Debug)]
pub enum PipelineLock {
    File(file::FileLock),
    Lease(lease::Lease),
}

impl PipelineLock {
    /// Takes pipeline `id`'s OS file lock under the local lake `dir`; a standby polls it.
    pub async fn local(dir: &Path, id: &str, options: LockOptions) -> Result<Self, LockError> {
        loop {
            match file::FileLock::acquire(dir, id) {
                Err(LockError::Held { .. }) if options.standby => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await
                }
                other => return other.map(Self::File),
            }
        }
    }

    /// Takes pipeline `config.id`'s lease in `<lake>/_locks/` of an object-store lake.
    pub async fn lease(
        lake: &ObjectDir,
        config: &Config,
        options: LockOptions,
    ) -> Result<Self, LockError> {
        let dir = lake.child("_locks");
        let ttl = config.lock.lease_ttl;
        Ok(Self::Lease(
            lease::Lease::acquire(dir, &config.id, ttl, options).await?,
        ))
    }

    /// The fence every commit must carry (object-store lakes).
    pub fn fence(&self) -> Option<Fence> {
        match self {
            Self::File(_) => None,
            Self::Lease(lease) => Some(lease.fence()),
        }
    }
}
