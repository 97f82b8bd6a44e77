//! `[maintenance] auto_compact_every`: a continuous run compacts the small files its batches
//! leave, in the background, and no query result changes at any compaction.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use isolake_data::polars::prelude::*;
use isolake_tests::lake::{Lake, block_on, generate, metric, sorted_strings};
use isolake_tests::{eventually_with, free_port};

/// Scrapes `/metrics` until `series` reaches `at_least` (the last scrape shown on a timeout).
fn wait_for(url: &str, series: &str, at_least: f64) {
    let client = reqwest::blocking::Client::new();
    let what = format!("{series} to reach {at_least}");
    eventually_with(Duration::from_secs(60), &what, || {
        let text = client
            .get(url)
            .send()
            .ok()
            .and_then(|r| r.text().ok())
            .unwrap_or_default();
        if metric(&text, series).is_some_and(|v| v >= at_least) {
            Ok(())
        } else {
            Err(text)
        }
    });
}

/// The versions of a table whose commit is a compaction (operation OPTIMIZE).
fn compaction_versions(table: &Path) -> Vec<u64> {
    let mut versions: Vec<u64> = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.strip_suffix(".json")?.parse().ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            text.contains("\"operation\":\"OPTIMIZE\"")
                .then_some(version)
        })
        .collect();
    versions.sort_unstable();
    versions
}

/// A table version's rows, sorted on every column so that file order does not matter.
fn rows_at(table: &Path, version: u64) -> DataFrame {
    let location = table.to_string_lossy().into_owned();
    let df = block_on(async move {
        isolake_data::lake::scan_table(&location, Some(version))
            .await
            .unwrap()
            .collect()
            .unwrap()
    });
    let columns: Vec<PlSmallStr> = df
        .schema()
        .iter()
        .filter(|(_, dtype)| !matches!(dtype, DataType::List(_) | DataType::Struct(_)))
        .map(|(name, _)| name.clone())
        .collect();
    df.sort(columns, Default::default()).unwrap()
}

fn live_files(table: &Path) -> usize {
    let location = table.to_string_lossy().into_owned();
    block_on(async move {
        isolake_data::lake::LakeTable::open(&location)
            .await
            .unwrap()
            .file_count()
            .unwrap()
    })
}

#[test]
fn continuous_runs_compact_small_files_without_changing_any_result() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(
        tmp.path(),
        "stability_ms = 1",
        "[maintenance]\nauto_compact_every = 3\n\
         [[detectors]]\nname = \"stl\"\nkind = \"small_then_large\"\n",
    );
    let staging = tmp.path().join("staging");
    let batches = 9;
    generate(&staging, 9 * 400, batches, 5, 0.02);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("http://{addr}/metrics");
    let child = lake.spawn(&["run", "--continuous", "--metrics-addr", &addr]);

    // One file per batch, each landing after the previous batch committed.
    let mut files: Vec<_> = std::fs::read_dir(&staging)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for (i, file) in files.iter().enumerate() {
        std::fs::rename(file, lake.landing().join(format!("part-{i}.json"))).unwrap();
        wait_for(
            &url,
            "isolake_files_total{pipeline=\"fraud\"}",
            (i + 1) as f64,
        );
    }
    wait_for(
        &url,
        "isolake_compactions_total{pipeline=\"fraud\",table=\"silver\"}",
        1.0,
    );
    child.sigterm().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let lake_dir = tmp.path().join("lake");
    for table in [
        "bronze",
        "silver",
        "quarantine",
        "gold/scored_transactions",
        "event_log",
    ] {
        let path = lake_dir.join(table);
        let compactions = compaction_versions(&path);
        assert!(!compactions.is_empty(), "{table} was never compacted");
        // A compaction changes no row: the table reads the same just before and after it.
        for &v in &compactions {
            let (before, after) = (rows_at(&path, v - 1), rows_at(&path, v));
            assert!(before.height() > 0, "{table} v{v}");
            assert!(
                after.equals_missing(&before),
                "{table}: compaction v{v} changed the rows"
            );
        }
        // Fewer live files than the batches that wrote one each.
        let files = live_files(&path);
        assert!(files < batches, "{table}: {files} live files");
    }
    // Every landed line exactly once, and the progress survived the compactions: a restart
    // reads nothing again.
    let bronze = lake.read("bronze").height();
    assert_eq!(bronze, 9 * 400);
    lake.run_once();
    assert_eq!(lake.read("bronze").height(), bronze);
    let silver = lake.read("silver").height();
    assert_eq!(lake.read("gold/scored_transactions").height(), silver);
}

/// A triggered run over a backlog compacts as it goes too (else every batch would cost more
/// than the one before): fewer live files than batches, and the same silver as without it.
#[test]
fn triggered_runs_over_a_backlog_compact_too() {
    let tmp = tempfile::tempdir().unwrap();
    let mut silvers = Vec::new();
    for every in [2, 0] {
        let lake = Lake::new(
            &tmp.path().join(format!("every-{every}")),
            "stability_ms = 1\nmax_files_per_batch = 1",
            &format!("[maintenance]\nauto_compact_every = {every}\n"),
        );
        generate(&lake.landing(), 1_200, 12, 6, 0.02);
        lake.run_once();
        let files = live_files(&tmp.path().join(format!("every-{every}/lake/silver")));
        if every == 0 {
            assert_eq!(files, 12, "one file per batch without compaction");
        } else {
            assert!(files < 12, "{files} live files after 12 batches");
        }
        let silver = lake.read("silver");
        silvers.push((silver.height(), sorted_strings(&silver, "transaction_id")));
    }
    assert_eq!(silvers[0], silvers[1]);
}
