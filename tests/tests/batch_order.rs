//! Across a backlog the next batch is prepared while the last one's gold commits
//! (`pipeline::batch`), yet every commit lands in batch order: for each batch bronze, silver,
//! quarantine, scored_transactions, alerts and the event log, and all of batch N before any of
//! batch N+1. The order is observed with inotify on every table's log: one queue, so one total
//! order, and no clock involved.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::mpsc;

use isolake_tests::lake::{Lake, SMALL_THEN_LARGE};
use notify::{RecursiveMode, Watcher};

const TABLES: [&str; 6] = [
    "bronze",
    "silver",
    "quarantine",
    "gold/scored_transactions",
    "gold/alerts",
    "event_log",
];

/// The batch (app transaction version of pipeline `fraud`) a log entry commits, if it is a
/// commit entry (`<20 digits>.json`) with one.
fn batch_of(entry: &Path) -> Option<u64> {
    let name = entry.file_name()?.to_str()?;
    let digits = name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let text = std::fs::read_to_string(entry).ok()?;
    text.lines().find_map(|line| {
        let action: serde_json::Value = serde_json::from_str(line).ok()?;
        let txn = action.get("txn")?;
        (txn["appId"] == "fraud").then(|| txn["version"].as_u64())?
    })
}

#[test]
fn overlapped_batches_commit_every_table_in_batch_order() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(
        tmp.path(),
        "stability_ms = 1\nmax_files_per_batch = 1",
        SMALL_THEN_LARGE,
    );
    lake.run_once(); // creates every table (version 0), no batch yet
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let _ = tx.send(event.paths);
        }
    })
    .unwrap();
    let logs: Vec<_> = TABLES
        .iter()
        .map(|t| lake.dir.join("lake").join(t).join("_delta_log"))
        .collect();
    for log in &logs {
        watcher.watch(log, RecursiveMode::NonRecursive).unwrap();
    }
    let batches = 5u64;
    for i in 0..batches {
        let lines: String = (0..50)
            .map(|r| {
                format!(
                    "{{\"transaction_id\":\"t{i}-{r}\",\"account_id\":\"a{}\",\
                     \"event_time\":\"2025-01-01T00:{i:02}:{:02}Z\",\"amount\":{}.5,\
                     \"quantity\":1,\"unit_cost\":1.0}}\n",
                    r % 7,
                    r % 60,
                    r % 3 * 400
                )
            })
            .collect();
        std::fs::write(lake.landing().join(format!("f{i}.json")), lines).unwrap();
    }
    lake.run_once();
    drop(watcher);
    // (batch, table) in the order the commit entries appeared.
    let mut order: Vec<(u64, usize)> = Vec::new();
    for path in rx.try_iter().flatten() {
        let Some(table) = logs
            .iter()
            .position(|log| path.parent() == Some(log.as_path()))
        else {
            continue;
        };
        if let Some(batch) = batch_of(&path)
            && !order.contains(&(batch, table))
        {
            order.push((batch, table));
        }
    }
    let expected: Vec<(u64, usize)> = (1..=batches)
        .flat_map(|b| (0..TABLES.len()).map(move |t| (b, t)))
        .collect();
    let named = |o: &[(u64, usize)]| -> Vec<String> {
        o.iter()
            .map(|(b, t)| format!("{b}:{}", TABLES[*t]))
            .collect()
    };
    assert_eq!(named(&order), named(&expected));
}
