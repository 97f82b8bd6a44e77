//! One running pipeline per id. A local lake uses an OS file lock ([`file`]); a lake on an
//! object store, where no OS lock reaches across machines, a lease object that the holder
//! renews and a standby takes over ([`lease`]), with a fence on every commit.

pub mod file;
pub mod lease;

use std::path::PathBuf;

use isolake_data::lake::Fence;

use crate::config::Config;
use crate::lake_root::LakeRoot;

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
    /// Takes pipeline `config.id`'s lock on `lake`.
    pub async fn acquire(
        lake: &LakeRoot,
        config: &Config,
        options: LockOptions,
    ) -> Result<Self, LockError> {
        match lake {
            LakeRoot::Local(dir) => {
                // Two local processes of one pipeline cannot both wait: a standby polls.
                loop {
                    match file::FileLock::acquire(dir, &config.id) {
                        Err(LockError::Held { .. }) if options.standby => {
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await
                        }
                        other => return other.map(Self::File),
                    }
                }
            }
            LakeRoot::Remote(dir) => {
                let dir = dir.child("_locks");
                let lease =
                    lease::Lease::acquire(dir, &config.id, config.lock.lease_ttl, options).await?;
                Ok(Self::Lease(lease))
            }
        }
    }

    /// The fence every commit must carry (object-store lakes).
    pub fn fence(&self) -> Option<Fence> {
        match self {
            Self::File(_) => None,
            Self::Lease(lease) => Some(lease.fence()),
        }
    }
}
