//! The object store of local (`file://`) tables: object_store's `LocalFileSystem`, with a
//! listing that costs what it returns, not the size of the directory.
//!
//! Every commit lists the table's `_delta_log` from the last checkpoint on
//! (`list_with_offset`). `LocalFileSystem` walks the whole directory and turns every entry into
//! an object path before comparing it with the offset, so each commit cost more the longer the
//! table's log: a table that keeps its log (bronze) or a month of it (the default retention)
//! holds tens of thousands of entries. Here the directory is read once, names are compared as
//! they are, and only the entries past the offset are looked at. Anything this shortcut does
//! not cover (a sub-directory, a name that object paths encode) goes to `LocalFileSystem`.

use std::fmt;
use std::sync::{Arc, Once};

use async_trait::async_trait;
use deltalake::DeltaResult;
use deltalake::logstore::object_store::path::Path;
use deltalake::logstore::object_store::{
    self, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use deltalake::logstore::{ObjectStoreFactory, ObjectStoreRef, StorageConfig};
use futures::stream::{self, BoxStream, StreamExt};
use url::Url;

/// Makes deltalake use [`LocalStore`] for `file://` tables (once per process).
pub(super) fn register() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if let Ok(file) = Url::parse("file://") {
            deltalake::logstore::object_store_factories().insert(file, Arc::new(LocalFactory));
        }
    });
}

struct LocalFactory;

impl ObjectStoreFactory for LocalFactory {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        let (inner, path) = object_store::parse_url_opts(url, &config.raw)?;
        let store = LocalStore {
            inner: Arc::from(inner),
        };
        Ok((Arc::new(store), path))
    }
}

/// `LocalFileSystem` (rooted at `/`, as deltalake builds it for `file://` URLs) with a
/// listing from an offset that skips the entries before it by name.
#[derive(Debug)]
pub struct LocalStore {
    inner: Arc<dyn ObjectStore>,
}

impl fmt::Display for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalStore({})", self.inner)
    }
}

/// The object paths under `prefix` (a directory without sub-directories) that sort after
/// `offset`, or `None` when the shortcut does not apply and the full listing must run.
fn names_after(prefix: &Path, offset: &Path) -> Option<Vec<Path>> {
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    };
    if !plain(prefix.as_ref()) || prefix.as_ref().is_empty() {
        return None;
    }
    let dir = std::path::Path::new("/").join(prefix.as_ref());
    // Names are compared with the offset's last part when it is in this directory (no
    // allocation per entry); an offset elsewhere is compared whole.
    let within = offset
        .as_ref()
        .strip_prefix(prefix.as_ref())
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !rest.contains('/'));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).ok()? {
        let entry = entry.ok()?;
        let name = entry.file_name();
        let name = name.to_str().filter(|n| plain(n))?;
        let after = match within {
            Some(offset_name) => name > offset_name,
            None => format!("{prefix}/{name}").as_str() > offset.as_ref(),
        };
        if !after {
            continue;
        }
        if entry.file_type().ok()?.is_dir() {
            return None;
        }
        out.push(Path::from(format!("{prefix}/{name}")));
    }
    Some(out)
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let Some(paths) = prefix.and_then(|p| names_after(p, offset)) else {
            return self.inner.list_with_offset(prefix, offset);
        };
        let inner = Arc::clone(&self.inner);
        stream::iter(paths)
            .then(move |path| {
                let inner = Arc::clone(&inner);
                async move { inner.head(&path).await }
            })
            // A temporary file renamed or removed since the directory was read is not listed.
            .filter(|r| {
                let gone = matches!(r, Err(object_store::Error::NotFound { .. }));
                futures::future::ready(!gone)
            })
            .boxed()
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test fails by panicking
    use super::*;
    use futures::TryStreamExt;

    /// The shortcut lists exactly what `LocalFileSystem` lists after an offset.
    #[tokio::test]
    async fn listing_after_an_offset_equals_the_full_walk() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("_delta_log");
        std::fs::create_dir(&log).unwrap();
        for v in 0..40u64 {
            std::fs::write(log.join(format!("{v:020}.json")), b"{}").unwrap();
        }
        std::fs::write(log.join("00000000000000000030.checkpoint.parquet"), b"x").unwrap();
        std::fs::write(log.join("_last_checkpoint"), b"{}").unwrap();
        let url = Url::from_directory_path(dir.path()).unwrap();
        let (inner, root) = object_store::parse_url(&url).unwrap();
        let inner: Arc<dyn ObjectStore> = Arc::from(inner);
        let store = LocalStore {
            inner: Arc::clone(&inner),
        };
        let prefix = root.clone().join("_delta_log");
        let offset = prefix.clone().join(format!("{:020}", 30).as_str());
        let sorted = |mut v: Vec<ObjectMeta>| {
            v.sort_by(|a, b| a.location.cmp(&b.location));
            v
        };
        let fast: Vec<ObjectMeta> = store
            .list_with_offset(Some(&prefix), &offset)
            .try_collect()
            .await
            .unwrap();
        let full: Vec<ObjectMeta> = inner
            .list_with_offset(Some(&prefix), &offset)
            .try_collect()
            .await
            .unwrap();
        let (fast, full) = (sorted(fast), sorted(full));
        // 30.checkpoint.parquet, 30.json, 31..=39 json and _last_checkpoint.
        assert_eq!(fast.len(), 12, "{fast:?}");
        assert_eq!(fast, full);
        // A sub-directory past the offset: the full walk answers (it recurses).
        std::fs::create_dir(log.join("_staged_commits")).unwrap();
        std::fs::write(log.join("_staged_commits").join("a.json"), b"{}").unwrap();
        let fast: Vec<ObjectMeta> = store
            .list_with_offset(Some(&prefix), &offset)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(fast.len(), 13, "{fast:?}");
    }
}
