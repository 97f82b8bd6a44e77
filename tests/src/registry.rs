//! The train/score/registry tests' fixtures: a labelled Delta table to train on, and runs of
//! `isolake-train` and `isolake-score` against a registry (a local dir or an MLflow URL).

use std::path::Path;
use std::process::{Command, Output};

use isolake_data::generator::{self, GeneratorConfig};
use isolake_data::lake::{Commit, CreateOptions, LakeTable};
use isolake_data::record::{self, Transaction};
use polars::prelude::*;

use crate::binary;

/// Writes a labelled Delta table of `rows` generated transactions (plus a `label` column,
/// 1 = anomaly) in two commits, at `dir/name`; returns its path.
pub fn labelled_table(dir: &Path, name: &str, rows: usize, seed: u64) -> String {
    let landing = dir.join(format!("{name}-landing"));
    let dataset = generator::generate(&GeneratorConfig::new(rows, 2, seed)).expect("generate");
    let written = generator::write_dataset(&dataset, &landing, None).expect("write the files");
    let location = dir.join(name).to_string_lossy().into_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let mut schema = record::canonical_schema();
        schema.insert("label".into(), DataType::Int64);
        let mut table = LakeTable::create(&location, &schema, CreateOptions::default())
            .await
            .expect("create the labelled table");
        let ranges = dataset.file_ranges();
        for (path, range) in written.files.iter().zip(ranges) {
            let mut df = record::transactions_to_frame(&read_transactions(path))
                .expect("transactions as a frame");
            let labels: Vec<i64> = dataset.events[range]
                .iter()
                .map(|e| i64::from(e.kind.label()))
                .collect();
            df.with_column(Column::new("label".into(), labels))
                .expect("add the labels");
            table
                .append(&df, Commit::default())
                .await
                .expect("append a file's rows");
        }
    });
    location
}

/// The transactions of a generated JSON-lines file.
fn read_transactions(path: &Path) -> Vec<Transaction> {
    std::fs::read_to_string(path)
        .expect("read a generated file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a generated line is a transaction"))
        .collect()
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
    cmd.output().unwrap_or_else(|e| panic!("{bin} starts: {e}"))
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
    .expect("scan the scored file")
    .sort(["transaction_id"], SortMultipleOptions::default())
    .collect()
    .expect("read the scored file");
    let ids = df
        .column("transaction_id")
        .and_then(|c| c.str().cloned())
        .expect("a string transaction_id column");
    let s = df
        .column("anomaly_score")
        .and_then(|c| c.f64().cloned())
        .expect("a double anomaly_score column");
    ids.iter()
        .zip(s.iter())
        .map(|(i, v)| (i.expect("no null transaction id").to_string(), v))
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
        utf8(out),
        "--cache-dir",
        utf8(cache),
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

/// A path as an argument; temp dirs are UTF-8.
fn utf8(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
