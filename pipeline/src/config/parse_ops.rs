//! The operational parts of the config: `[lock]`, `[storage]`, and how the landing zone is
//! listed and cleaned (`source.list_after_last_seen`, `source.clean_source*`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use isolake_data::lake::location;
use toml::de::DeTable;

use super::walker::{Value, Walker, get};
use super::{CleanSource, LockConfig, SourceConfig, StorageOptions, resolve_location};

pub(super) fn parse_lock(w: &mut Walker<'_>, value: Option<&Value<'_>>) -> LockConfig {
    let mut lock = LockConfig::default();
    let Some(table) = value.and_then(|v| w.table("lock", v)) else {
        return lock;
    };
    w.unknown_keys("lock", table, &["lease_ttl"]);
    if let Some(v) = get(table, "lease_ttl") {
        match w.duration("lock.lease_ttl", v) {
            Some(ttl) if ttl >= Duration::from_millis(400) => lock.lease_ttl = ttl,
            Some(_) => w.issue("lock.lease_ttl", Some(v.span()), "at least 400ms"),
            None => {}
        }
    }
    lock
}

/// `[storage]`: every key a string (booleans are written as "true"/"false").
pub(super) fn parse_storage(w: &mut Walker<'_>, value: Option<&Value<'_>>) -> StorageOptions {
    let mut options = StorageOptions::default();
    let Some(table) = value.and_then(|v| w.table("storage", v)) else {
        return options;
    };
    for (key, v) in table.iter() {
        let path = format!("storage.{}", key.get_ref());
        let text = match v.get_ref().as_bool() {
            Some(b) => Some(b.to_string()),
            None => w.string(&path, v),
        };
        if let Some(text) = text {
            options.0.insert(key.get_ref().to_ascii_lowercase(), text);
        }
    }
    options
}

/// The landing zone's upkeep keys of `[source]`.
pub(super) fn parse_upkeep(w: &mut Walker<'_>, table: &DeTable<'_>, source: &mut SourceConfig) {
    if let Some(v) = get(table, "clean_source") {
        match w.string("source.clean_source", v).as_deref() {
            Some("off") => source.clean_source = CleanSource::Off,
            Some("move") => source.clean_source = CleanSource::Move,
            Some("delete") => source.clean_source = CleanSource::Delete,
            Some(_) => w.issue(
                "source.clean_source",
                Some(v.span()),
                "expected \"off\", \"move\" or \"delete\"",
            ),
            None => {}
        }
    }
    if let Some(v) = get(table, "clean_source_retention")
        && let Some(retention) = w.duration("source.clean_source_retention", v)
    {
        source.clean_source_retention = retention;
    }
    if let Some(v) = get(table, "list_after_last_seen") {
        source.list_after_last_seen = w.boolean("source.list_after_last_seen", v).unwrap_or(false);
    }
}

/// `source.landing`: a directory (relative to the config's) or an object-store URL.
pub(super) fn parse_landing(
    w: &mut Walker<'_>,
    table: &DeTable<'_>,
    value: &Value<'_>,
    base: &Path,
    source: &mut SourceConfig,
) {
    match get(table, "landing").map(|v| w.string("source.landing", v)) {
        Some(Some(landing)) if location::is_object_store(&landing) => {
            let url = format!("{}/", landing.trim_end_matches('/'));
            source.landing = PathBuf::from(&url);
            source.remote_landing = Some(url);
        }
        Some(Some(landing)) => {
            source.landing = Path::new(&resolve_location(&landing, base)).to_path_buf()
        }
        Some(None) => {}
        None => w.issue(
            "source.landing",
            Some(value.span()),
            "missing: the landing directory to load files from",
        ),
    }
}
