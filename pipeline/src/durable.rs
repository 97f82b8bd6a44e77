//! Files outside the Delta tables that a commit relies on (gold's state, a refresh's intent,
//! the seen-files checkpoint), written so that a power cut leaves the old file or the new one
//! whole, never a torn or missing one: in a local directory (synced, renamed into place) or
//! under an object-store prefix (a PUT replaces an object whole).

use std::io::Write;
use std::path::{Path, PathBuf};

use isolake_data::lake::objects::ObjectDir;

use crate::error::{Error, Result};

/// A directory of such files: `<lake>/_state/<pipeline>/`.
#[derive(Debug, Clone)]
pub enum StateDir {
    Local(PathBuf),
    Remote(ObjectDir),
}

impl StateDir {
    /// Where `name` is, for messages.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Self::Local(dir) => dir.join(name).display().to_string(),
            Self::Remote(dir) => format!("{}{name}", dir.url()),
        }
    }

    /// Writes `name` whole (see [`write_durably`] for `sync`).
    pub async fn write(&self, name: &str, bytes: Vec<u8>, sync: bool) -> Result<()> {
        match self {
            Self::Local(dir) => write_durably(&dir.join(name), &bytes, sync),
            Self::Remote(dir) => Ok(dir.put(name, bytes).await?),
        }
    }

    /// The bytes of `name`, or `None` when there is no such file.
    pub async fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Self::Local(dir) => {
                let path = dir.join(name);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(&path, e)),
                }
            }
            Self::Remote(dir) => Ok(dir.get(name).await?.map(|v| v.bytes.to_vec())),
        }
    }

    /// Removes `name` (if there), durably.
    pub async fn remove(&self, name: &str) -> Result<()> {
        match self {
            Self::Local(dir) => remove_durably(&dir.join(name)),
            Self::Remote(dir) => Ok(dir.delete(name).await?),
        }
    }

    /// The names of the files in the directory (none when it does not exist yet).
    pub async fn names(&self) -> Result<Vec<String>> {
        match self {
            Self::Local(dir) => {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    return Ok(Vec::new());
                };
                Ok(entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect())
            }
            Self::Remote(dir) => {
                let listed = dir.list_after("", None).await?;
                Ok(listed.into_iter().map(|l| l.name).collect())
            }
        }
    }
}

/// Writes `bytes` to `path` durably, before the commit that names it: the file is synced,
/// then renamed into place, then its directory is synced, so after a power cut the name is
/// there with all its bytes, or the commit naming it is not. A missing directory is created
/// (and its parent synced, so the new entry survives too). `sync`: false leaves the directory
/// sync to the caller's last write.
pub fn write_durably(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if sync { sync_dir(dir) } else { Ok(()) }
}

/// Removes `path` (if there) and syncs its directory, so the removal survives a power cut.
pub fn remove_durably(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}
