//! Exactly once across crashes, and one running pipeline per id.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use isolake_tests::eventually;
use isolake_tests::lake::{Lake, count_lines, event_sum, generate, sorted_strings};
use polars::prelude::*;

/// SIGKILL 25 times, each right after the run under test committed to a table (bronze, silver
/// or the event log in turn, the first to third commit of it), restart each time; the end
/// state equals a crash-free run's. Kills are placed by watching the tables, not by timing,
/// so they land mid-run on a slow machine or a fast one.
#[test]
fn crashes_at_random_moments_lose_and_duplicate_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // Two files a batch: 100 batches, enough for 25 kills after up to three commits each.
    let limits = "stability_ms = 1\nmax_files_per_batch = 2";
    let crashed = Lake::new(&tmp.path().join("crashed"), limits, "");
    let clean = Lake::new(&tmp.path().join("clean"), limits, "");
    generate(&crashed.landing(), 8_000, 200, 11, 0.01);
    generate(&clean.landing(), 8_000, 200, 11, 0.01);
    let lines = count_lines(&crashed.landing());

    clean.run_once();

    let tables = ["bronze", "silver", "event_log"];
    let mut landed: HashSet<&str> = HashSet::new();
    let mut killed = 0;
    for round in 0..25 {
        let table = tables[round % tables.len()];
        if crashed.kill_after_commits(&["run", "--once"], table, 1 + round % 3) {
            killed += 1;
            landed.insert(table);
        }
    }
    assert!(killed >= 20, "only {killed} of 25 runs were killed mid-way");
    assert_eq!(landed.len(), 3, "kills landed after commits of {landed:?}");
    crashed.run_once();

    let bronze = crashed.read("bronze");
    assert_eq!(bronze.height(), lines, "every input line once in bronze");
    let places: HashSet<(String, i64)> = bronze
        .column("_source_file")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .zip(bronze.column("_source_line").unwrap().i64().unwrap().iter())
        .map(|(f, l)| (f.unwrap().to_string(), l.unwrap()))
        .collect();
    assert_eq!(places.len(), lines, "no (file, line) twice in bronze");

    let silver = crashed.read("silver");
    let ids = sorted_strings(&silver, "transaction_id");
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no transaction twice in silver");
    assert_eq!(ids, sorted_strings(&clean.read("silver"), "transaction_id"));
    assert_eq!(
        crashed.read("quarantine").height(),
        clean.read("quarantine").height()
    );
    assert_eq!(silver.height() + crashed.read("quarantine").height(), lines);

    // One bronze event per batch in the event log, even for batches caught up after a crash.
    let events = crashed.read("event_log");
    let bronze_events = events
        .lazy()
        .filter(col("flow").eq(lit("bronze")))
        .collect()
        .unwrap();
    let batches: HashSet<i64> = bronze_events
        .column("batch_id")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(batches.len(), bronze_events.height());
    // ... and the event log counts what a crash-free run counts, flow by flow.
    for (flow, column) in [
        ("bronze", "rows_in"),
        ("bronze", "files"),
        ("silver", "rows_out"),
        ("quarantine", "rows_out"),
    ] {
        assert_eq!(
            event_sum(&crashed.read("event_log"), flow, column),
            event_sum(&clean.read("event_log"), flow, column),
            "{flow} {column}"
        );
    }
}

#[test]
fn a_second_run_is_refused_and_a_killed_runs_lock_is_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", "");
    generate(&lake.landing(), 2_000, 4, 5, 0.0);
    let mut first = lake.spawn(&["run", "--continuous"]);
    // Wait until the first run has loaded the files (it holds the lock from start-up).
    let what = "the first run to load the files (two entries in silver's log)";
    eventually(Duration::from_secs(60), what, || {
        let log = lake.dir.join("lake/silver/_delta_log");
        (log.read_dir().map_or(0, |d| d.count()) >= 2).then_some(())
    });
    let second = lake.command(&["run", "--once"]).output().unwrap();
    assert_eq!(second.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("already running"), "{stderr}");

    first.kill().unwrap();
    first.wait().unwrap();
    generate(&lake.landing().join("more"), 1_000, 2, 6, 0.0);
    lake.run_once();
    let silver = lake.read("silver");
    assert_eq!(silver.height(), 3_000);
    let ids = sorted_strings(&silver, "transaction_id");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3_000);
}
