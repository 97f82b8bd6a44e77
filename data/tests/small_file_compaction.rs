//! Auto compaction: only small files are rewritten, in a `dataChange = false` commit that
//! keeps every row, the app progress and time travel as they were.
#![allow(clippy::unwrap_used)] // a test fails by panicking
#![cfg(feature = "lake")]

use isolake_data::lake::{AppTransaction, Commit, CreateOptions, LakeTable, scan_table};
use isolake_data::polars::prelude::*;

fn rows(from: i64, n: i64) -> DataFrame {
    df! {
        "id" => (from..from + n).collect::<Vec<i64>>(),
        "amount" => (from..from + n).map(|i| i as f64 * 0.5).collect::<Vec<f64>>(),
    }
    .unwrap()
}

fn sorted(df: DataFrame) -> DataFrame {
    df.sort(["id"], Default::default()).unwrap()
}

fn parquet_sizes(dir: &std::path::Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        .map(|e| e.metadata().unwrap().len())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_small_files_are_rewritten_and_nothing_a_reader_sees_changes() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("t").to_string_lossy().into_owned();
    let schema = rows(0, 1).schema().as_ref().clone();
    let mut table = LakeTable::create(&location, &schema, CreateOptions::default())
        .await
        .unwrap();
    // One large file, then five micro-batches' worth of small ones.
    table
        .append(&rows(0, 50_000), Commit::default())
        .await
        .unwrap();
    let large = parquet_sizes(&dir.path().join("t"))[0];
    for i in 0..5 {
        let commit = Commit {
            app_transaction: Some(AppTransaction {
                app_id: "pipeline".into(),
                version: i + 1,
            }),
            ..Default::default()
        };
        table
            .append(&rows(50_000 + i * 10, 10), commit)
            .await
            .unwrap();
    }
    let small = *parquet_sizes(&dir.path().join("t")).iter().min().unwrap();
    assert!(small * 4 < large, "small {small} vs large {large} bytes");
    let target = large / 2;
    let before_version = table.version();
    let before = sorted(table.scan().unwrap().collect().unwrap());

    let compacted = table.compact_small(target).await.unwrap();
    assert_eq!(compacted.files_before, 6);
    assert_eq!(compacted.files_after, 2, "{compacted:?}");
    assert_eq!(
        compacted.rows, 50,
        "only the small files' rows are rewritten"
    );
    assert_eq!(compacted.version, Some(before_version + 1));
    assert_eq!(table.file_count().unwrap(), 2);

    // The same rows now, at the version before, and the app progress kept.
    let after = sorted(
        scan_table(&location, None)
            .await
            .unwrap()
            .collect()
            .unwrap(),
    );
    assert!(after.equals(&before));
    let travelled = scan_table(&location, Some(before_version)).await.unwrap();
    assert!(sorted(travelled.collect().unwrap()).equals(&before));
    assert_eq!(table.app_version("pipeline").await.unwrap(), Some(5));
    // The large file is the one that was left alone.
    assert!(parquet_sizes(&dir.path().join("t")).contains(&large));

    // One small file left (the merged one): nothing more to do.
    let again = table.compact_small(target).await.unwrap();
    assert_eq!(again.version, None);
}
