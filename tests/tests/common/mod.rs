//! Shared fixtures of the train/score/registry tests: a labelled Delta table and a way to
//! run the binaries.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use isolake_data::generator::{self, GeneratorConfig};
use isolake_data::lake::{Commit, CreateOptions, LakeTable};
use isolake_data::record::{self, Transaction};
use isolake_tests::binary;
use polars::prelude::*;

/// Writes a labelled Delta table of `rows` generated transactions (plus a `label` column,
/// 1 = anomaly) in two commits, at `dir/name`; returns its path.
pub fn labelled_table(dir: &Path, name: &str, rows: usize, seed: u64) -> String {
    let landing = dir.join(format!("{name}-landing"));
    let dataset = generator::generate(&GeneratorConfig::new(rows, 2, seed)).unwrap();
    let written = generator::write_dataset(&dataset, &landing, None).unwrap();
    let location = dir.join(name).to_string_lossy().into_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut schema = record::canonical_schema();
        schema.insert("label".into(), DataType::Int64);
        let mut table = LakeTable::create(&location, &schema, CreateOptions::default())
            .await
            .unwrap();
        let ranges = dataset.file_ranges();
        for (path, range) in written.files.iter().zip(ranges) {
            let txns: Vec<Transaction> = std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let mut df = record::transactions_to_frame(&txns).unwrap();
            let labels: Vec<i64> = dataset.events[range]
                .iter()
                .map(|e| i64::from(e.kind.label()))
                .collect();
            df.with_column(Column::new("label".into(), labels)).unwrap();
            table.append(&df, Commit::default()).await.unwrap();
        }
    });
    location
}

/// Runs a binary with arguments and extra environment; never inherits MLflow variables
/// from the developer's shell.
pub fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary(bin));
    cmd.args(args)
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_TRACKING_USERNAME")
        .env_remove("MLFLOW_TRACKING_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// stdout of a successful run, trimmed; panics with stderr otherwise.
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The anomaly scores of a scored Parquet file, by transaction id order.
pub fn scores(parquet: &Path) -> Vec<(String, Option<f64>)> {
    let df = LazyFrame::scan_parquet(
        PlRefPath::new(parquet.to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
    .unwrap()
    .sort(["transaction_id"], SortMultipleOptions::default())
    .collect()
    .unwrap();
    let ids = df.column("transaction_id").unwrap().str().unwrap().clone();
    let s = df.column("anomaly_score").unwrap().f64().unwrap().clone();
    ids.iter()
        .zip(s.iter())
        .map(|(i, v)| (i.unwrap().to_string(), v))
        .collect()
}

/// Scores `input` with `model` from `registry` into the parquet file `out`.
pub fn score(
    registry: &str,
    model: &str,
    input: &str,
    out: &Path,
    cache: &Path,
    env: &[(&str, &str)],
) -> Output {
    let args = [
        "--model",
        model,
        "--registry",
        registry,
        "--input",
        input,
        "--output",
        out.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    run("isolake-score", &args, env)
}

/// Trains on `table` into `registry` with fixed hyperparameters; returns the output.
pub fn train(
    registry: &str,
    table: &str,
    model: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut args = vec![
        "--input",
        table,
        "--registry",
        registry,
        "--model-name",
        model,
        "--experiment",
        model,
        "--n-estimators",
        "50",
        "--seed",
        "7",
        "--contamination",
        "0.02",
        "--label-column",
        "label",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run("isolake-train", &args, env)
}
