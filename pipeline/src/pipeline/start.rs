//! Start-up checks and what they compute: the lake belongs to this pipeline id, a full
//! refresh an interruption left half done, and what a batch reads given bronze's columns.

use std::collections::HashSet;

use isolake_data::lake::{Fence, LakeTable};

use crate::durable::StateDir;
use polars::prelude::*;

use crate::bronze;
use crate::config::Config;
use crate::error::{Error, Result};
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

/// Claims every table the pipeline appends to for `fence` (see [`Fence`]): from then on no
/// commit of an earlier lease holder can land on them.
pub(super) async fn claim_tables(plan: &Plan, fence: &Fence) -> Result<()> {
    for (_, location) in crate::tables::appended(&plan.config).await? {
        if LakeTable::exists(&location).await? {
            LakeTable::open(&location).await?.claim(fence).await?;
        }
    }
    Ok(())
}

/// The record that a full refresh is under way: written (durably) before its first overwrite
/// and removed once every derived table is rebuilt, so that a crash, an I/O error or a
/// concurrent `optimize` anywhere in between leaves a refresh that the next start finishes
/// (emptying and rebuilding again gives the same tables), never half-refreshed tables.
pub(super) struct RefreshIntent {
    dir: StateDir,
}

const REFRESH_INTENT: &str = "full_refresh.json";

impl RefreshIntent {
    pub(super) fn new(plan: &Plan) -> Self {
        Self {
            dir: plan.lake.state(&plan.config.id),
        }
    }

    /// Whether a refresh was started and not finished.
    pub(super) async fn pending(&self) -> Result<bool> {
        Ok(self.dir.read(REFRESH_INTENT).await?.is_some())
    }

    pub(super) async fn record(&self) -> Result<()> {
        let started = chrono::Utc::now().to_rfc3339();
        let text = serde_json::json!({ "full_refresh": { "started": started } }).to_string();
        self.dir
            .write(REFRESH_INTENT, text.into_bytes(), true)
            .await
    }

    pub(super) async fn clear(&self) -> Result<()> {
        self.dir.remove(REFRESH_INTENT).await
    }
}
