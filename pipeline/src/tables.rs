//! The pipeline's Delta tables under the lake root, created on first use.

use std::collections::{BTreeMap, HashMap};

use isolake_data::lake::{CreateOptions, LakeTable, location, scan_table};
use polars::prelude::*;

use crate::config::Config;
use crate::error::Result;
use crate::lake_root::LakeRoot;
use crate::plan::Plan;
use crate::plan::gold::GoldPlan;
use crate::{bronze, event_log, gold, silver};

pub const BRONZE: &str = "bronze";
pub const SILVER: &str = "silver";
pub const QUARANTINE: &str = "quarantine";
pub const EVENT_LOG: &str = "event_log";
pub const SCORED: &str = "gold/scored_transactions";
pub const ALERTS: &str = "gold/alerts";

/// The fixed tables by the name queries use, with their path under the lake root.
pub const NAMED: [(&str, &str); 6] = [
    ("bronze", BRONZE),
    ("silver", SILVER),
    ("quarantine", QUARANTINE),
    ("event_log", EVENT_LOG),
    ("scored_transactions", SCORED),
    ("alerts", ALERTS),
];

/// Every table a query can name → its location: the fixed tables, then the Delta tables under
/// `gold/` (detector tables) and `dimensions/`.
pub async fn by_name(config: &Config) -> isolake_data::Result<BTreeMap<String, String>> {
    lake_tables(config, &["gold", "dimensions"]).await
}

/// The tables micro-batches append to (what auto compaction keeps small): the fixed tables
/// and the detector tables, not dimensions.
pub async fn appended(config: &Config) -> isolake_data::Result<BTreeMap<String, String>> {
    lake_tables(config, &["gold"]).await
}

/// The row count of the table at `path` under the lake (from the scan, no column read), or
/// `None` when it does not exist.
pub async fn row_count(config: &Config, path: &str) -> isolake_data::Result<Option<usize>> {
    let location = config.table_location(path);
    if !LakeTable::exists(&location).await? {
        return Ok(None);
    }
    let counted = scan_table(&location, None)
        .await?
        .select([len()])
        .collect()?;
    Ok(counted
        .columns()
        .first()
        .and_then(|c| c.cast(&DataType::UInt64).ok())
        .and_then(|c| c.u64().ok().and_then(|c| c.get(0)))
        .map(|n| n as usize))
}

async fn lake_tables(
    config: &Config,
    dirs: &[&str],
) -> isolake_data::Result<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = NAMED
        .iter()
        .map(|(name, path)| (name.to_string(), config.table_location(path)))
        .collect();
    let root = LakeRoot::parse(&config.lake)?;
    for dir in dirs {
        for name in root.tables_under(dir).await? {
            let location = config.table_location(&format!("{dir}/{name}"));
            out.entry(name).or_insert(location);
        }
    }
    Ok(out)
}

/// The last batch pipeline `id` committed to `table` (0 for none).
pub async fn app_batch(table: &LakeTable, id: &str) -> Result<u64> {
    Ok(table.app_version(id).await?.map_or(0, |v| v.max(0) as u64))
}

/// Bronze, silver, quarantine and the event log.
#[derive(Debug)]
pub struct Tables {
    pub bronze: LakeTable,
    pub silver: LakeTable,
    pub quarantine: LakeTable,
    pub event_log: LakeTable,
}

/// Gold's tables (only when gold is configured: a model or a detector).
#[derive(Debug)]
pub struct GoldTables {
    pub scored: LakeTable,
    pub alerts: LakeTable,
    /// Detectors' own tables (`gold/<detector name>`).
    pub detectors: Vec<(String, LakeTable)>,
}

impl Tables {
    pub async fn open(plan: &Plan) -> Result<Self> {
        let config = &plan.config;
        let bronze_schema = bronze::schema(&config.schema.fields);
        // Source progress lives in bronze's commits: keep them (see source::progress).
        let keep_log = HashMap::from([(
            "delta.enableExpiredLogCleanup".to_string(),
            "false".to_string(),
        )]);
        let bronze = open(
            config,
            BRONZE,
            &bronze_schema,
            keep_log,
            "every landed line, as read",
        );
        let bronze = bronze.await?;
        let silver = open(
            config,
            SILVER,
            &plan.silver_schema,
            HashMap::new(),
            "typed, checked, deduplicated transactions",
        )
        .await?;
        let quarantine = open(
            config,
            QUARANTINE,
            &silver::quarantine_schema(&bronze_schema),
            HashMap::new(),
            "rows that failed expectations, with the reasons",
        )
        .await?;
        let event_log = open(
            config,
            EVENT_LOG,
            &event_log::schema(),
            HashMap::new(),
            "one row per flow per batch",
        )
        .await?;
        Ok(Self {
            bronze,
            silver,
            quarantine,
            event_log,
        })
    }
}

impl GoldTables {
    /// `detector_tables`: the detectors that write a table of their own, with its schema.
    pub async fn open(
        plan: &Plan,
        gold_plan: &GoldPlan,
        detector_tables: &[(String, Schema)],
    ) -> Result<Self> {
        let config = &plan.config;
        let scored = open(
            config,
            SCORED,
            &gold::scored_schema(&plan.silver_schema),
            HashMap::new(),
            "every silver row with its anomaly score and explanation",
        )
        .await?;
        let alerts = open(
            config,
            ALERTS,
            &gold::alerts::schema(&gold_plan.alert_keys),
            HashMap::new(),
            "one row per alert from the model or a rule detector",
        )
        .await?;
        let mut detectors = Vec::new();
        for (name, schema) in detector_tables {
            let table = open(
                config,
                &format!("gold/{name}"),
                schema,
                HashMap::new(),
                "the matches of a MATCH_RECOGNIZE detector, measures as columns",
            )
            .await?;
            detectors.push((name.clone(), table));
        }
        Ok(Self {
            scored,
            alerts,
            detectors,
        })
    }
}

/// `delta.checkpointInterval` of tables created on object stores (deltalake's default, 100,
/// made the 60th batch of a run on moto cost 7x the first).
pub const OBJECT_STORE_CHECKPOINT_INTERVAL: u64 = 10;

async fn open(
    config: &Config,
    name: &str,
    schema: &Schema,
    mut properties: HashMap<String, String>,
    description: &str,
) -> Result<LakeTable> {
    let on_object_store = location::is_object_store(&config.lake);
    // Every refresh replays the commits since the last checkpoint; on an object store each
    // one is a GET, so a batch would cost more the longer since a checkpoint.
    let interval = (config.maintenance.checkpoint_interval)
        .or(on_object_store.then_some(OBJECT_STORE_CHECKPOINT_INTERVAL));
    if let Some(interval) = interval {
        properties.insert("delta.checkpointInterval".into(), interval.to_string());
    }
    let options = CreateOptions {
        partition_columns: Vec::new(),
        properties,
        name: Some(name.to_string()),
        description: Some(description.to_string()),
    };
    Ok(LakeTable::open_or_create(&config.table_location(name), schema, options).await?)
}
