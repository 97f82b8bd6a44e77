//! Start-up checks and what they compute: the lake belongs to this pipeline id, a full
//! refresh an interruption left half done, and what a batch reads given bronze's columns.

use std::collections::HashSet;
use std::path::PathBuf;

use isolake_data::lake::LakeTable;
use polars::prelude::*;

use crate::bronze;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::gold::state;
use crate::plan::Plan;
use crate::source::progress;
use crate::source::reader::{ReadLimits, ReadSchema};
use crate::tables::Tables;

/// Refuses a lake whose bronze another pipeline id writes, before anything is changed.
pub(super) async fn ensure_owner(plan: &Plan) -> Result<()> {
    let location = plan.config.table_location(crate::tables::BRONZE);
    if !LakeTable::exists(&location).await? {
        return Ok(());
    }
    let bronze = LakeTable::open(&location).await?;
    match progress::owner(&bronze).await? {
        Some(owner) if owner != plan.config.id => Err(lake_owned(plan, &owner)),
        _ => Ok(()),
    }
}

pub(super) fn lake_owned(plan: &Plan, owner: &str) -> Error {
    Error::LakeOwned {
        lake: plan.config.lake.clone(),
        owner: owner.to_string(),
        id: plan.config.id.clone(),
    }
}

/// What a batch reads: the declared fields, and the columns earlier batches added to bronze.
pub(super) fn read_schema(config: &Config, tables: &Tables) -> Result<ReadSchema> {
    let declared: HashSet<&str> = config
        .schema
        .fields
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    let system = bronze::schema(&[]);
    let mut reserved: Vec<String> = system.iter_names().map(|n| n.to_string()).collect();
    let mut evolved = Vec::new();
    let stored = tables.bronze.schema()?;
    for field in stored.iter_fields() {
        let name = field.name().to_string();
        if declared.contains(name.as_str()) || system.contains(&name) {
            continue;
        }
        // Evolved columns are text; a column of another type is a field no longer declared,
        // whose landed values are rescued rather than cast into it.
        match field.dtype() {
            DataType::String => evolved.push(name),
            _ => reserved.push(name),
        }
    }
    Ok(ReadSchema {
        fields: bronze::stored_fields(&config.schema.fields, &stored),
        evolved,
        evolution: config.schema.evolution,
        reserved,
        limits: ReadLimits {
            max_file_bytes: config.source.max_file_bytes,
            max_line_bytes: config.source.max_line_bytes,
            max_new_columns: config.schema.max_new_columns,
        },
    })
}

/// The record that a full refresh is under way: written (durably) before its first overwrite
/// and removed once every derived table is rebuilt, so that a crash, an I/O error or a
/// concurrent `optimize` anywhere in between leaves a refresh that the next start finishes
/// (emptying and rebuilding again gives the same tables), never half-refreshed tables.
pub(super) struct RefreshIntent {
    path: PathBuf,
}

impl RefreshIntent {
    pub(super) fn new(plan: &Plan) -> Self {
        let dir = state::dir(&plan.lake_dir, &plan.config.id);
        Self {
            path: dir.join("full_refresh.json"),
        }
    }

    /// Whether a refresh was started and not finished.
    pub(super) fn pending(&self) -> bool {
        self.path.exists()
    }

    pub(super) fn record(&self) -> Result<()> {
        let started = chrono::Utc::now().to_rfc3339();
        let text = serde_json::json!({ "full_refresh": { "started": started } }).to_string();
        crate::durable::write_durably(&self.path, text.as_bytes(), true)
    }

    pub(super) fn clear(&self) -> Result<()> {
        crate::durable::remove_durably(&self.path)
    }
}
