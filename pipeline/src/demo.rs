//! `isolake-pipeline demo`: what a new user runs first.
//!
//! Until the pipeline exists this demo only generates a labelled day of transactions into a
//! landing directory and loads it, one file per commit, into a bronze-like Delta table through
//! the data layer (each commit carries an app transaction, so rerunning loads nothing twice).
//! It then reads the table back and prints what is in it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use isolake_data::generator::{self, GeneratorConfig};
use isolake_data::lake::{AppTransaction, AppendOutcome, Commit, CreateOptions, LakeTable};
use isolake_data::record::{self, Transaction};
use polars::prelude::*;

/// Settings of a demo run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: PathBuf,
    pub rows: usize,
    pub files: usize,
    pub seed: u64,
}

/// Runs the demo and returns the report it prints.
pub async fn run(options: &DemoOptions) -> anyhow::Result<String> {
    let landing = options.dir.join("landing");
    let bronze = options.dir.join("lake").join("bronze");
    let mut out = String::new();

    let config = GeneratorConfig::new(options.rows, options.files, options.seed);
    let dataset = generator::generate(&config)?;
    let written =
        generator::write_dataset(&dataset, &landing, Some(&options.dir.join("labels.csv")))?;
    writeln!(
        out,
        "generated {} labelled transactions in {} files under {}",
        written.rows,
        written.files.len(),
        landing.display()
    )?;

    let location = bronze.to_string_lossy().into_owned();
    let mut table = LakeTable::open_or_create(
        &location,
        &bronze_schema(),
        CreateOptions {
            name: Some("bronze".into()),
            description: Some("demo: landed transactions, one commit per file".into()),
            ..Default::default()
        },
    )
    .await?;
    let (mut committed, mut skipped) = (0, 0);
    for (batch, path) in written.files.iter().enumerate() {
        let df = load_file(path)?;
        let commit = Commit {
            app_transaction: Some(AppTransaction {
                app_id: "isolake-demo".into(),
                version: batch as i64 + 1,
            }),
            metadata: serde_json::json!({ "isolake.source_file": path.to_string_lossy() })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            evolve_schema: false,
        };
        match table.append(&df, commit).await? {
            AppendOutcome::Committed { .. } => committed += 1,
            AppendOutcome::AlreadyCommitted { .. } => skipped += 1,
        }
    }
    writeln!(
        out,
        "bronze-like Delta table {}: {committed} files committed, {skipped} already there, now at version {}",
        bronze.display(),
        table.version()
    )?;

    let summary = table
        .scan()?
        .group_by([col("channel")])
        .agg([
            len().alias("transactions"),
            col("amount").sum().alias("total_amount"),
            col("event_time").min().alias("first"),
            col("event_time").max().alias("last"),
        ])
        .sort(["channel"], Default::default())
        .collect()?;
    writeln!(out, "{summary}")?;
    writeln!(
        out,
        "Not implemented yet: silver (expectations, quarantine), training, gold scoring and \
         alerts. Read the table with any Delta reader, e.g. Python:\n  \
         python -c \"import deltalake; print(deltalake.DeltaTable('{}').to_pyarrow_table().num_rows)\"",
        bronze.display()
    )?;
    Ok(out)
}

fn bronze_schema() -> Schema {
    let mut schema = record::canonical_schema();
    schema.with_column("_source_file".into(), DataType::String);
    schema
}

fn load_file(path: &Path) -> anyhow::Result<DataFrame> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let txns = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<Transaction>(line)
                .with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut df = record::transactions_to_frame(&txns)?;
    let source = Column::new_scalar(
        "_source_file".into(),
        Scalar::from(PlSmallStr::from(path.to_string_lossy().as_ref())),
        df.height(),
    );
    df.with_column(source)?;
    Ok(df)
}
