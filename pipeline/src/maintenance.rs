//! `optimize` and `vacuum` over the pipeline's tables (all of them, or one by name).

use std::time::Duration;

use isolake_data::lake::{Compacted, LakeTable};

use crate::config::Config;
use crate::error::{Error, Result};

/// The safe default retention: a reader or a time-travel query older than this may fail.
pub const SAFE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The existing tables to maintain: `only` by name, or all.
async fn targets(config: &Config, only: Option<&str>) -> Result<Vec<(String, LakeTable)>> {
    let tables = crate::tables::by_name(config).await?;
    if let Some(name) = only
        && !tables.contains_key(name)
    {
        return Err(Error::NoSuchTable {
            name: name.to_string(),
            tables: tables.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    let mut out = Vec::new();
    for (name, location) in tables {
        if only.is_some_and(|o| o != name) || !LakeTable::exists(&location).await? {
            continue;
        }
        out.push((name, LakeTable::open(&location).await?));
    }
    Ok(out)
}

/// Compacts the tables (Z-ordered by `zorder_by` when given).
pub async fn optimize(
    config: &Config,
    only: Option<&str>,
    zorder_by: &[String],
) -> Result<Vec<(String, Compacted)>> {
    let mut out = Vec::new();
    for (name, mut table) in targets(config, only).await? {
        let compacted = table.compact(zorder_by).await?;
        out.push((name, compacted));
    }
    Ok(out)
}

/// Vacuums the tables; a retention below [`SAFE_RETENTION`] needs `force`.
pub async fn vacuum(
    config: &Config,
    only: Option<&str>,
    retain: Duration,
    dry_run: bool,
    force: bool,
) -> Result<Vec<(String, Vec<String>)>> {
    if retain < SAFE_RETENTION && !force {
        return Err(Error::UnsafeRetention {
            hours: retain.as_secs() / 3600,
            safe: SAFE_RETENTION.as_secs() / 3600,
        });
    }
    let mut out = Vec::new();
    for (name, mut table) in targets(config, only).await? {
        let files = table.vacuum(retain, dry_run, force).await?;
        out.push((name, files));
    }
    Ok(out)
}
