//! Plain objects next to the tables (the lease, gold's state, checkpoints, landed files) on
//! an object store, addressed by names under one prefix: the part of object_store the
//! pipeline needs, with conditional writes kept explicit.

use std::sync::Arc;

use bytes::Bytes;
pub use deltalake::logstore::object_store::UpdateVersion;
use deltalake::logstore::object_store::path::Path;
use deltalake::logstore::object_store::{
    self, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use futures::TryStreamExt;
use url::Url;

use super::s3_store;
use crate::error::{Error, Result};

/// A directory-like prefix of an object store (`s3://bucket/lake/_state/fraud/`).
#[derive(Clone)]
pub struct ObjectDir {
    store: Arc<dyn ObjectStore>,
    root: Path,
    url: Url,
}

impl std::fmt::Debug for ObjectDir {
    // The store's own Debug prints its whole configuration, keys included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectDir({})", self.url)
    }
}

/// One version of an object: its bytes and what a conditional update must name.
#[derive(Debug, Clone)]
pub struct Versioned {
    pub bytes: Bytes,
    pub version: UpdateVersion,
}

/// The result of a conditional write.
#[derive(Debug, Clone)]
pub enum Conditional {
    /// Written; the new version.
    Written(UpdateVersion),
    /// Someone else's write came first (the object exists, or changed since it was read).
    Lost,
}

/// One object of a listing: its name under the prefix, size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

impl ObjectDir {
    /// Opens the prefix `url` (an `s3://` URL) with the options of [`s3_store`].
    pub fn open(url: &Url) -> Result<Self> {
        let (store, root) =
            s3_store::build(url, std::iter::empty()).map_err(|source| Error::ObjectStore {
                location: url.to_string(),
                source: Box::new(source),
            })?;
        Ok(Self {
            store,
            root,
            url: url.clone(),
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The prefix `name/` under this one.
    pub fn child(&self, name: &str) -> Self {
        let mut url = self.url.clone();
        url.set_path(&format!("{}{name}/", self.url.path()));
        Self {
            store: self.store.clone(),
            root: self.path(name),
            url,
        }
    }

    fn path(&self, name: &str) -> Path {
        name.split('/')
            .filter(|part| !part.is_empty())
            .fold(self.root.clone(), |path, part| path.clone().join(part))
    }

    fn error(&self, name: &str, source: object_store::Error) -> Error {
        Error::ObjectStore {
            location: format!("{}{name}", self.url),
            source: Box::new(source),
        }
    }

    /// The object `name` with its version, or `None` when there is none.
    pub async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        let result = match self.store.get(&self.path(name)).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(name, e)),
        };
        let version = UpdateVersion {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = result.bytes().await.map_err(|e| self.error(name, e))?;
        Ok(Some(Versioned { bytes, version }))
    }

    /// Writes `name` whole (replacing any object there): readers see the old or the new.
    pub async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let payload = PutPayload::from(bytes);
        (self.store.put(&self.path(name), payload).await)
            .map(|_| ())
            .map_err(|e| self.error(name, e))
    }

    /// Writes `name` only if no object is there (`If-None-Match: *`).
    pub async fn put_if_absent(&self, name: &str, bytes: Vec<u8>) -> Result<Conditional> {
        self.put_conditional(name, bytes, PutMode::Create).await
    }

    /// Writes `name` only if it is still at `version` (`If-Match`).
    pub async fn put_if_unchanged(
        &self,
        name: &str,
        bytes: Vec<u8>,
        version: &UpdateVersion,
    ) -> Result<Conditional> {
        let mode = PutMode::Update(version.clone());
        self.put_conditional(name, bytes, mode).await
    }

    async fn put_conditional(
        &self,
        name: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> Result<Conditional> {
        let options = PutOptions::from(mode);
        let written = self
            .store
            .put_opts(&self.path(name), PutPayload::from(bytes), options)
            .await;
        match written {
            Ok(result) => Ok(Conditional::Written(UpdateVersion {
                e_tag: result.e_tag,
                version: result.version,
            })),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(Conditional::Lost),
            Err(e) => Err(self.error(name, e)),
        }
    }

    /// Deletes `name` (nothing when it is not there).
    pub async fn delete(&self, name: &str) -> Result<()> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(name, e)),
        }
    }

    /// Renames `from` to `to` (on S3: a copy, then a delete of `from`).
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        (self.store.rename(&self.path(from), &self.path(to)).await).map_err(|e| self.error(from, e))
    }

    /// Every object under `prefix` (relative to this one, `""` for all) whose name sorts
    /// after `after`, in name order: one paged listing that starts after `after`
    /// (S3's `start-after`), so a poll does not list history again.
    pub async fn list_after(&self, prefix: &str, after: Option<&str>) -> Result<Vec<Listed>> {
        let base = self.path(prefix);
        let stream = match after {
            Some(after) => self.store.list_with_offset(Some(&base), &self.path(after)),
            None => self.store.list(Some(&base)),
        };
        let metas: Vec<_> = stream
            .try_collect()
            .await
            .map_err(|e| self.error(prefix, e))?;
        let root_parts = self.root.parts().count();
        let mut listed: Vec<Listed> = metas
            .into_iter()
            .map(|meta| Listed {
                name: meta
                    .location
                    .parts()
                    .skip(root_parts)
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
                size: meta.size,
                modified_ms: meta.last_modified.timestamp_millis(),
            })
            .collect();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listed)
    }

    /// The names of the prefixes directly under this one (`dims/` of `<lake>/`).
    pub async fn sub_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let base = self.path(prefix);
        let listing = (self.store.list_with_delimiter(Some(&base)).await)
            .map_err(|e| self.error(prefix, e))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Checks that the store refuses a second put-if-absent of one object, as Delta commits
    /// and the lease rely on; a store that accepts it is [`Error::NoConditionalWrites`].
    pub async fn check_conditional_writes(&self) -> Result<()> {
        let name = format!(
            "_isolake_probe/{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let first = self.put_if_absent(&name, b"1".to_vec()).await?;
        let second = self.put_if_absent(&name, b"2".to_vec()).await?;
        self.delete(&name).await?;
        match (first, second) {
            (Conditional::Written(_), Conditional::Lost) => Ok(()),
            _ => Err(Error::NoConditionalWrites {
                location: self.url.to_string(),
            }),
        }
    }
}

/// Runs `future` to completion from synchronous code: on the current multi-threaded runtime
/// (without blocking its other tasks), else on a runtime of its own.
pub(crate) fn block_on<T: Send>(future: impl std::future::Future<Output = T> + Send) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        _ => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map(|runtime| runtime.block_on(future))
                })
                .join()
        })
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        .unwrap_or_else(|e| panic!("cannot start a runtime: {e}")),
    }
}
