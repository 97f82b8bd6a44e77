//! Files outside the Delta tables that a commit relies on (gold's state, a refresh's intent,
//! the seen-files checkpoint), written so that a power cut leaves the old file or the new one
//! whole, never a torn or missing one.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

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
