//! Dimension tables (`<lake>/dimensions/<name>`, e.g. accounts) and the lookup join that adds
//! their fields to alerts — the Fluss seed's lookup join, done as each batch's alerts are made.
//!
//! A dimension is upserted by key from a CSV or NDJSON file (`isolake-pipeline
//! load-dimension`): rows whose key is in the file are replaced, others kept, new keys added,
//! all in ONE overwrite commit (a MERGE without deltalake's DataFusion feature). Alerts made
//! after an upsert see the new fields; alerts already written keep theirs.

use std::collections::HashSet;
use std::path::Path;

use isolake_data::lake::{Commit, CreateOptions, LakeTable, Rewrite};
use polars::prelude::*;

use crate::config::{Config, DimensionConfig};

pub mod error;
pub use error::DimensionError;

type Result<T, E = DimensionError> = std::result::Result<T, E>;

pub fn location(config: &Config, name: &str) -> String {
    config.table_location(&format!("dimensions/{name}"))
}

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    pub inserted: usize,
    pub updated: usize,
    pub total: usize,
    pub version: u64,
}

/// Reads a CSV or NDJSON file (by extension) of dimension rows.
pub fn read_file(path: &Path) -> Result<DataFrame> {
    let name = path.to_string_lossy().to_lowercase();
    let read = |source| DimensionError::Read {
        path: path.to_path_buf(),
        source,
    };
    if name.ends_with(".csv") {
        CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(read)
    } else if name.ends_with(".json") || name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        let file = std::fs::File::open(path).map_err(|e| read(e.into()))?;
        JsonReader::new(file)
            .with_json_format(JsonFormat::JsonLines)
            .finish()
            .map_err(read)
    } else {
        Err(DimensionError::UnknownFormat {
            path: path.to_path_buf(),
        })
    }
}

/// Upserts `rows` into dimension `name` by `key` (MERGE: update matched, insert new).
pub async fn upsert(config: &Config, name: &str, key: &str, rows: DataFrame) -> Result<Upserted> {
    let fail = |reason: String| DimensionError::BadRows {
        name: name.to_string(),
        reason,
    };
    let keys = rows
        .column(key)
        .map_err(|_| fail(format!("the file has no key column {key:?}")))?
        .cast(&DataType::String)?;
    let keys = keys.str()?;
    if keys.null_count() > 0 {
        return Err(fail(format!("{} row(s) have no {key}", keys.null_count())));
    }
    let new_keys: HashSet<&str> = keys.iter().flatten().collect();
    if new_keys.len() != rows.height() {
        return Err(fail(format!(
            "{key} is not unique in the file ({} rows, {} distinct keys)",
            rows.height(),
            new_keys.len()
        )));
    }
    let location = location(config, name);
    let options = CreateOptions {
        name: Some(name.to_string()),
        description: Some(format!("dimension {name}, upserted by {key}")),
        ..Default::default()
    };
    let mut table = LakeTable::open_or_create(&location, rows.schema(), options).await?;
    let existing = table.scan()?.collect()?;
    let (kept, updated) = if existing.height() == 0 {
        (existing, 0)
    } else {
        let old = existing.column(key)?.cast(&DataType::String)?;
        let matched: BooleanChunked = old
            .str()?
            .iter()
            .map(|k| k.is_some_and(|k| new_keys.contains(k)))
            .collect();
        let updated = matched.sum().unwrap_or(0) as usize;
        (existing.filter(&!&matched)?, updated)
    };
    let merged = if kept.height() == 0 {
        rows.clone()
    } else {
        concat(
            [kept.lazy(), rows.clone().lazy()],
            UnionArgs {
                diagonal: true,
                to_supertypes: true,
                ..Default::default()
            },
        )?
        .collect()?
    };
    let total = merged.height();
    let commit = Commit {
        evolve_schema: true,
        ..Default::default()
    };
    let version = table.replace(&merged, commit, Rewrite::Overwrite).await?;
    Ok(Upserted {
        inserted: rows.height() - updated,
        updated,
        total,
        version,
    })
}

/// The dimensions' current rows, reloaded only when a table's version moved.
#[derive(Default)]
pub struct Lookup {
    tables: Vec<(DimensionConfig, Option<LakeTable>, Option<DataFrame>)>,
}

impl Lookup {
    pub fn new(configs: &[DimensionConfig]) -> Self {
        Self {
            tables: configs.iter().map(|c| (c.clone(), None, None)).collect(),
        }
    }

    /// Loads new versions of the dimension tables (missing tables are skipped).
    pub async fn refresh(&mut self, config: &Config) -> Result<()> {
        for (dim, table, rows) in &mut self.tables {
            match table {
                Some(t) => {
                    let before = t.version();
                    t.refresh().await?;
                    if t.version() == before && rows.is_some() {
                        continue;
                    }
                }
                None => {
                    let location = location(config, &dim.name);
                    if !LakeTable::exists(&location).await? {
                        continue;
                    }
                    *table = Some(LakeTable::open(&location).await?);
                }
            }
            if let Some(t) = table {
                *rows = Some(t.scan()?.collect()?);
            }
        }
        Ok(())
    }

    /// Adds each dimension's fields to the alerts keyed by its key column (left join: an
    /// alert without a dimension row keeps null fields, never disappears).
    pub fn enrich(&self, mut alerts: DataFrame) -> Result<DataFrame> {
        for (dim, _, rows) in &self.tables {
            let Some(rows) = rows else { continue };
            let join_key = "_dimension_key";
            let taken: HashSet<String> = alerts
                .get_column_names()
                .iter()
                .map(|c| c.to_string())
                .collect();
            let mut fields: Vec<Expr> = vec![col(&dim.key).cast(DataType::String).alias(join_key)];
            for name in rows.get_column_names() {
                if name.as_str() == dim.key {
                    continue;
                }
                let out = if taken.contains(name.as_str()) {
                    format!("{}_{}", dim.name, name)
                } else {
                    name.to_string()
                };
                fields.push(col(name.as_str()).alias(out));
            }
            let right = rows.clone().lazy().select(fields);
            let left = alerts.lazy().with_column(
                when(col("key_column").eq(lit(dim.key.clone())))
                    .then(col("key"))
                    .otherwise(lit(NULL).cast(DataType::String))
                    .alias(join_key),
            );
            alerts = left
                .join(
                    right,
                    [col(join_key)],
                    [col(join_key)],
                    JoinArgs::new(JoinType::Left),
                )
                .drop(by_name([join_key], true, false))
                .collect()?;
        }
        Ok(alerts)
    }
}
