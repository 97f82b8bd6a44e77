//! A table written by isolake's data layer opens in Python `deltalake` with the same rows.
#![allow(clippy::unwrap_used)] // a test fails by panicking

use isolake_data::generator::{self, GeneratorConfig};
use isolake_data::lake::{AppTransaction, Commit, CreateOptions, LakeTable};
use isolake_data::record::{self, Transaction};
use isolake_tests::run_python;
use polars::prelude::*;

const READ_WITH_DELTALAKE: &str = r#"
import json, sys
import pyarrow.compute as pc
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1])
t = dt.to_pyarrow_table()
print(json.dumps({
    "rows": t.num_rows,
    "version": dt.version(),
    "amount_sum": pc.sum(t["amount"]).as_py(),
    "min_event_time_us": pc.min(t["event_time"]).cast("int64").as_py(),
    "event_time_type": str(t.schema.field("event_time").type),
    "distinct_ids": pc.count_distinct(t["transaction_id"]).as_py(),
}))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn python_deltalake_reads_what_the_data_layer_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    let dataset = generator::generate(&GeneratorConfig::new(6_000, 3, 5)).unwrap();
    let written = generator::write_dataset(&dataset, &landing, None).unwrap();

    let location = dir.path().join("bronze").to_string_lossy().into_owned();
    let mut table = LakeTable::create(
        &location,
        &record::canonical_schema(),
        CreateOptions::default(),
    )
    .await
    .unwrap();
    for (i, path) in written.files.iter().enumerate() {
        let txns: Vec<Transaction> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let commit = Commit {
            app_transaction: Some(AppTransaction {
                app_id: "interop".into(),
                version: i as i64 + 1,
            }),
            ..Commit::default()
        };
        table
            .append(&record::transactions_to_frame(&txns).unwrap(), commit)
            .await
            .unwrap();
    }

    let ours = table
        .scan()
        .unwrap()
        .select([
            len().alias("rows"),
            col("amount").sum().alias("amount_sum"),
            col("event_time")
                .min()
                .cast(DataType::Int64)
                .alias("min_us"),
        ])
        .collect()
        .unwrap();
    let rows = ours.column("rows").unwrap().u32().unwrap().get(0).unwrap() as u64;
    let amount_sum = ours
        .column("amount_sum")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    let min_us = ours
        .column("min_us")
        .unwrap()
        .i64()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(rows, 6_000);

    let theirs = run_python(READ_WITH_DELTALAKE, &[&location]);
    assert_eq!(theirs["rows"].as_u64(), Some(rows));
    assert_eq!(theirs["distinct_ids"].as_u64(), Some(rows));
    assert_eq!(theirs["version"].as_u64(), Some(3));
    let their_sum = theirs["amount_sum"].as_f64().unwrap();
    assert!(
        (their_sum - amount_sum).abs() < 1e-6 * amount_sum.abs(),
        "{their_sum} vs {amount_sum}"
    );
    assert_eq!(theirs["min_event_time_us"].as_i64(), Some(min_us));
    assert_eq!(theirs["event_time_type"], "timestamp[us, tz=UTC]");
}
