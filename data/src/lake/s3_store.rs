//! Tables on S3 and S3-compatible stores (`s3://bucket/prefix`): object_store's `AmazonS3`
//! (the build already has it: deltalake's kernel enables object_store's `aws` feature), and
//! deltalake's default log store, which writes every commit entry with put-if-absent
//! (`If-None-Match: *`): two writers can never both create one log entry; the second gets
//! a version conflict and deltalake checks and retries its commit.
//!
//! Credentials and endpoint come from the standard variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`); [`configure`] overrides them for the process (a config's `[storage]`).

use std::collections::HashMap;
use std::sync::{Arc, Once, RwLock};
use std::time::Duration;

use deltalake::DeltaResult;
use deltalake::logstore::object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use deltalake::logstore::object_store::path::Path;
use deltalake::logstore::object_store::{self, BackoffConfig, RetryConfig};
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
};
use url::Url;

/// Options that override the environment for every `s3://` store this process opens.
static OPTIONS: RwLock<Option<HashMap<String, String>>> = RwLock::new(None);

/// Sets storage options (`aws_endpoint_url`, `aws_access_key_id`, … the keys object_store
/// knows, case-insensitive) for the `s3://` stores opened from now on; they take precedence
/// over the `AWS_*` variables.
pub fn configure(options: HashMap<String, String>) {
    if let Ok(mut current) = OPTIONS.write() {
        *current = Some(options);
    }
}

/// Makes deltalake use [`S3Factory`] for `s3://` tables (once per process).
pub(super) fn register() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if let Ok(s3) = Url::parse("s3://") {
            deltalake::logstore::object_store_factories().insert(s3.clone(), Arc::new(S3Factory));
            deltalake::logstore::logstore_factories().insert(s3, Arc::new(S3Factory));
        }
    });
}

struct S3Factory;

impl ObjectStoreFactory for S3Factory {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        Ok(build(url, config.raw.iter())?)
    }
}

/// The store of the bucket of `url` (and the path of `url` in it), configured from the
/// environment, then `raw` (a table's storage options), then [`configure`]'s options.
pub(super) fn build<'a>(
    url: &Url,
    raw: impl Iterator<Item = (&'a String, &'a String)>,
) -> object_store::Result<(ObjectStoreRef, Path)> {
    let mut builder = AmazonS3Builder::from_env().with_retry(RetryConfig {
        // object_store's default retries for minutes; a store that is down should say so.
        backoff: BackoffConfig::default(),
        max_retries: 5,
        retry_timeout: Duration::from_secs(30),
    });
    let overrides = OPTIONS.read().ok().and_then(|o| o.clone());
    let mut options: Vec<(String, String)> = raw.map(|(k, v)| (k.clone(), v.clone())).collect();
    options.extend(overrides.into_iter().flatten());
    for (key, value) in options {
        if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    let store = builder.with_url(url.as_str()).build()?;
    let path = Path::from_url_path(url.path())?;
    let counting = super::counting_store::CountingStore {
        inner: Arc::new(store),
    };
    Ok((Arc::new(counting), path))
}

/// Whether [`configure`] was told `unsafe_single_writer = true`: the user accepts a store
/// without conditional writes because only one writer ever touches the lake.
pub fn unsafe_single_writer() -> bool {
    OPTIONS.read().ok().is_some_and(|options| {
        options
            .as_ref()
            .and_then(|o| o.get("unsafe_single_writer"))
            .is_some_and(|v| v == "true")
    })
}

impl LogStoreFactory for S3Factory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}
