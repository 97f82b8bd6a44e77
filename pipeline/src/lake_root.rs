//! The lake's root: a local directory or an object-store prefix (`s3://bucket/lake/`). The
//! tables are Delta tables under it either way; this is where the files next to them live
//! (`_state/`, `_locks/`, the default registry) and how the pipeline lists them.

use std::path::{Path, PathBuf};

use isolake_data::lake::objects::ObjectDir;
use isolake_data::lake::{LakeTable, location};

use crate::config::Config;
use crate::durable::StateDir;
use crate::lock::{LockError, LockOptions, PipelineLock};

#[derive(Debug, Clone)]
pub enum LakeRoot {
    Local(PathBuf),
    Remote(ObjectDir),
}

impl LakeRoot {
    /// The root of `location` (a path, `file://` or `s3://` URL).
    pub fn parse(location: &str) -> isolake_data::Result<Self> {
        let url = location::parse(location)?;
        match url.scheme() {
            "file" => Ok(Self::Local(location::local_dir(&url)?)),
            scheme if location::OBJECT_STORE_SCHEMES.contains(&scheme) => {
                Ok(Self::Remote(ObjectDir::open(&url)?))
            }
            _ => Err(isolake_data::Error::UnsupportedScheme {
                location: url.to_string(),
            }),
        }
    }

    /// Takes pipeline `config.id`'s lock: an OS file lock on local disk, a lease on an
    /// object store.
    pub async fn lock(
        &self,
        config: &Config,
        options: LockOptions,
    ) -> Result<PipelineLock, LockError> {
        match self {
            Self::Local(dir) => PipelineLock::local(dir, &config.id, options).await,
            Self::Remote(dir) => PipelineLock::lease(dir, config, options).await,
        }
    }

    /// The local directory, when the lake is on local disk.
    pub fn local(&self) -> Option<&Path> {
        match self {
            Self::Local(dir) => Some(dir),
            Self::Remote(_) => None,
        }
    }

    /// Pipeline `id`'s state directory, `<lake>/_state/<id>/`.
    pub fn state(&self, id: &str) -> StateDir {
        match self {
            Self::Local(dir) => StateDir::Local(dir.join("_state").join(id)),
            Self::Remote(dir) => StateDir::Remote(dir.child("_state").child(id)),
        }
    }

    /// The local registry's default location, `<lake>/_registry` (local lakes only: the
    /// local registry is a directory).
    pub fn default_registry(&self) -> Option<String> {
        self.local()
            .map(|dir| dir.join("_registry").to_string_lossy().into_owned())
    }

    /// The names of the Delta tables directly under `<lake>/<dir>/`.
    pub async fn tables_under(&self, dir: &str) -> isolake_data::Result<Vec<String>> {
        let mut names = match self {
            Self::Local(root) => {
                let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                    return Ok(Vec::new());
                };
                (entries.flatten())
                    .filter(|e| e.path().join("_delta_log").is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            }
            Self::Remote(root) => {
                let mut names = Vec::new();
                for name in root.sub_dirs(dir).await? {
                    let table = root.child(dir).child(&name);
                    if LakeTable::exists(table.url().as_str()).await? {
                        names.push(name);
                    }
                }
                names
            }
        };
        names.sort();
        Ok(names)
    }
}
