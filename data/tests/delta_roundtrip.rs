//! The Delta layer: appends with app transactions, time travel, schema growth, statistics.
#![allow(clippy::unwrap_used)] // a test fails by panicking
#![cfg(feature = "lake")]

use isolake_data::lake::{
    AppTransaction, AppendOutcome, Commit, CreateOptions, LakeTable, scan_table,
};
use isolake_data::polars::prelude::*;
use serde_json::json;

/// A frame with the shapes the pipeline writes: strings, integers, doubles, UTC timestamps
/// with microsecond digits.
fn frame(ids: &[&str], base_us: i64) -> DataFrame {
    let n = ids.len() as i64;
    let times: Vec<i64> = (0..n).map(|i| base_us + i * 1_000_001 + 123_456).collect();
    df! {
        "transaction_id" => ids,
        "amount" => (0..n).map(|i| i as f64 * 1.25 + 0.5).collect::<Vec<_>>(),
        "quantity" => (0..n).collect::<Vec<i64>>(),
        "event_time" => times,
    }
    .unwrap()
    .lazy()
    .with_column(col("event_time").cast(DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    )))
    .collect()
    .unwrap()
}

fn sorted(lf: LazyFrame) -> DataFrame {
    lf.sort(["transaction_id"], Default::default())
        .collect()
        .unwrap()
}

fn txn(version: i64) -> Commit {
    Commit {
        app_transaction: Some(AppTransaction {
            app_id: "pipeline-test".into(),
            version,
        }),
        metadata: json!({ "isolake.batch": version, "files": [format!("f{version}.json")] })
            .as_object()
            .cloned()
            .unwrap(),
        evolve_schema: false,
        fence: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_appends_read_back_exactly_with_versions_and_app_progress() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("bronze");
    let location = location.to_str().unwrap();
    let first = frame(&["a", "b", "c"], 1_704_067_200_000_000);
    let second = frame(&["d", "e"], 1_704_153_600_000_000);

    let mut table = LakeTable::create(location, first.schema(), CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(table.version(), 0);
    assert_eq!(table.app_version("pipeline-test").await.unwrap(), None);

    assert_eq!(
        table.append(&first, txn(1)).await.unwrap(),
        AppendOutcome::Committed { version: 1 }
    );
    assert_eq!(
        table.append(&second, txn(2)).await.unwrap(),
        AppendOutcome::Committed { version: 2 }
    );
    assert_eq!(table.app_version("pipeline-test").await.unwrap(), Some(2));

    // A retried batch is recognised and not written twice.
    assert_eq!(
        table.append(&second, txn(2)).await.unwrap(),
        AppendOutcome::AlreadyCommitted { app_version: 2 }
    );
    let reopened = LakeTable::open(location).await.unwrap();
    assert_eq!(reopened.version(), 2);
    assert_eq!(
        reopened.app_version("pipeline-test").await.unwrap(),
        Some(2)
    );

    // Exactly the rows, timestamps equal to the microsecond (including the schema's unit/zone).
    let expected = first.vstack(&second).unwrap();
    let back = sorted(reopened.scan().unwrap());
    assert_eq!(back.schema(), expected.schema());
    assert!(back.equals_missing(&expected), "{back}\n!=\n{expected}");

    // Every version is readable.
    assert_eq!(
        scan_table(location, Some(0))
            .await
            .unwrap()
            .collect()
            .unwrap()
            .height(),
        0
    );
    assert!(sorted(scan_table(location, Some(1)).await.unwrap()).equals_missing(&first));
    assert!(sorted(scan_table(location, Some(2)).await.unwrap()).equals_missing(&expected));
    let Err(missing) = scan_table(location, Some(9)).await else {
        panic!("version 9 does not exist")
    };
    assert!(missing.to_string().contains("no version 9"), "{missing}");

    // Versions carry their commit metadata and app transactions.
    let versions = reopened.versions().await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(versions[1].commit_info["isolake.batch"], json!(1));
    assert_eq!(versions[2].commit_info["files"], json!(["f2.json"]));
    assert_eq!(
        versions[2].app_transactions,
        vec![AppTransaction {
            app_id: "pipeline-test".into(),
            version: 2
        }]
    );
    assert_eq!(versions[1].operation.as_deref(), Some("WRITE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn projection_and_filters_apply_and_stats_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("t");
    let location = location.to_str().unwrap();
    let df = frame(&["a", "b", "c", "d"], 1_704_067_200_000_000);
    let mut table = LakeTable::create(location, df.schema(), CreateOptions::default())
        .await
        .unwrap();
    table.append(&df, Commit::default()).await.unwrap();

    let picked = table
        .scan()
        .unwrap()
        .filter(col("quantity").gt_eq(lit(2)))
        .select([col("transaction_id")])
        .collect()
        .unwrap();
    assert_eq!(picked.get_column_names(), ["transaction_id"]);
    assert_eq!(picked.height(), 2);

    // Per-file statistics in the add action let other engines skip files.
    let log =
        std::fs::read_to_string(dir.path().join("t/_delta_log/00000000000000000001.json")).unwrap();
    let add: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|a| a.get("add").is_some())
        .unwrap();
    let stats: serde_json::Value =
        serde_json::from_str(add["add"]["stats"].as_str().unwrap()).unwrap();
    assert_eq!(stats["numRecords"], json!(4));
    assert_eq!(stats["minValues"]["transaction_id"], json!("a"));
    assert_eq!(stats["maxValues"]["quantity"], json!(3));
    assert_eq!(stats["nullCount"]["amount"], json!(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_grows_only_when_asked_and_old_rows_read_null() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("t");
    let location = location.to_str().unwrap();
    let df = frame(&["a", "b"], 0);
    let mut table = LakeTable::create(location, df.schema(), CreateOptions::default())
        .await
        .unwrap();
    table.append(&df, Commit::default()).await.unwrap();

    let wider = frame(&["c"], 0)
        .lazy()
        .with_column(lit("x").alias("note"))
        .collect()
        .unwrap();
    let err = table.append(&wider, Commit::default()).await.unwrap_err();
    assert!(err.to_string().contains("note"), "{err}");

    let grown = Commit {
        evolve_schema: true,
        ..Commit::default()
    };
    table.append(&wider, grown).await.unwrap();
    let back = sorted(LakeTable::open(location).await.unwrap().scan().unwrap());
    assert_eq!(back.width(), 5);
    let notes: Vec<Option<&str>> = back.column("note").unwrap().str().unwrap().iter().collect();
    assert_eq!(notes, vec![None, None, Some("x")]);

    // A frame missing a column of the table gets nulls in it.
    let narrow = frame(&["d"], 0).drop("amount").unwrap();
    table.append(&narrow, Commit::default()).await.unwrap();
    let back = sorted(LakeTable::open(location).await.unwrap().scan().unwrap());
    assert_eq!(back.column("amount").unwrap().null_count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn partitioned_tables_restore_partition_values() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("p");
    let location = location.to_str().unwrap();
    let df = frame(&["a", "b", "c"], 0)
        .lazy()
        .with_column(
            when(col("quantity").gt(lit(0)))
                .then(lit("pos"))
                .otherwise(lit("zero"))
                .alias("sign"),
        )
        .collect()
        .unwrap();
    let options = CreateOptions {
        partition_columns: vec!["sign".into()],
        ..Default::default()
    };
    let mut table = LakeTable::create(location, df.schema(), options)
        .await
        .unwrap();
    table.append(&df, Commit::default()).await.unwrap();
    let back = sorted(LakeTable::open(location).await.unwrap().scan().unwrap());
    assert!(back.equals_missing(&df), "{back}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_tables_and_bad_locations_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = LakeTable::open(dir.path().join("nothing").to_str().unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("no Delta table at"), "{err}");
    let err = LakeTable::open("").await.unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}

/// Expired log entries go after the commits that write a checkpoint (not after every commit,
/// which would list the whole log each time), and never from a table that keeps its log.
#[tokio::test(flavor = "multi_thread")]
async fn the_log_is_cleaned_after_checkpoints_and_kept_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let versions_left = |table: LakeTable| async move {
        let mut left = Vec::new();
        for v in 0..=table.version() {
            if table.version_info(v).await.unwrap().is_some() {
                left.push(v);
            }
        }
        left
    };
    for keep in [false, true] {
        let location = dir.path().join(format!("keep-{keep}"));
        let location = location.to_str().unwrap();
        let mut properties = std::collections::HashMap::from([
            ("delta.checkpointInterval".to_string(), "5".to_string()),
            (
                "delta.logRetentionDuration".to_string(),
                "interval 0 seconds".to_string(),
            ),
        ]);
        if keep {
            properties.insert("delta.enableExpiredLogCleanup".into(), "false".into());
        }
        let df = frame(&["a"], 1_704_067_200_000_000);
        let options = CreateOptions {
            properties,
            ..Default::default()
        };
        let mut table = LakeTable::create(location, df.schema(), options)
            .await
            .unwrap();
        for batch in 1..=9 {
            table.append(&df, txn(batch)).await.unwrap();
        }
        // Version 9 wrote no checkpoint: what the cleanup after version 5's left is still
        // there (deltalake keeps the entry just before the checkpoint, as it always did).
        let expected: Vec<u64> = if keep {
            (0..=9).collect()
        } else {
            (4..=9).collect()
        };
        assert_eq!(versions_left(table.clone()).await, expected, "keep: {keep}");
        for batch in 10..=12 {
            table.append(&df, txn(batch)).await.unwrap();
        }
        let expected: Vec<u64> = if keep {
            (0..=12).collect()
        } else {
            (9..=12).collect()
        };
        assert_eq!(versions_left(table.clone()).await, expected, "keep: {keep}");
        let reopened = LakeTable::open(location).await.unwrap();
        assert_eq!(
            reopened.app_version("pipeline-test").await.unwrap(),
            Some(12)
        );
        assert_eq!(reopened.scan().unwrap().collect().unwrap().height(), 12);
    }
}
