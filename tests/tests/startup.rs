//! Start-up cost is bounded by the work since the last checkpoint (issue 17): the seen-files
//! index is checkpointed in `<lake>/_state/<id>/seen_files.json` and start-up reads only the
//! bronze commits after it; a checkpoint that does not match bronze is ignored.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use isolake_tests::lake::{Lake, sorted_strings};
use serde_json::Value;

/// One-file batches, a seen-files checkpoint every 3 bronze commits, a Delta checkpoint
/// every 2 (so bronze loads without its older commit entries).
fn lake(dir: &Path) -> Lake {
    Lake::new(
        dir,
        "stability_ms = 1\nmax_files_per_batch = 1",
        "[maintenance]\nprogress_checkpoint_every = 3\ncheckpoint_interval = 2",
    )
}

fn land(lake: &Lake, ids: std::ops::Range<usize>) {
    for i in ids {
        let record = serde_json::json!({
            "transaction_id": format!("t{i}"), "account_id": "a",
            "event_time": "2025-01-01T00:00:00Z", "amount": 1.0, "quantity": 1,
            "unit_cost": 1.0, "distance_from_home_km": 1.0, "seconds_since_last_txn": 1.0,
            "account_age_days": 1
        });
        let path = lake.landing().join(format!("f{i:03}.json"));
        std::fs::write(path, format!("{record}\n")).unwrap();
    }
}

fn checkpoint_path(lake: &Lake) -> PathBuf {
    lake.dir.join("lake/_state/fraud/seen_files.json")
}

fn checkpoint(lake: &Lake) -> Value {
    serde_json::from_slice(&std::fs::read(checkpoint_path(lake)).unwrap()).unwrap()
}

fn checkpointed_files(checkpoint: &Value) -> Vec<String> {
    let files = checkpoint["files"].as_array().unwrap();
    files
        .iter()
        .map(|f| f[0]["path"].as_str().unwrap().to_string())
        .collect()
}

fn bronze_ids(lake: &Lake) -> Vec<String> {
    sorted_strings(&lake.read("bronze"), "transaction_id")
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    let mut ids: Vec<String> = range.map(|i| format!("t{i}")).collect();
    ids.sort();
    ids
}

#[test]
fn start_up_takes_the_files_before_the_checkpoint_from_it_not_from_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = lake(tmp.path());
    land(&lake, 0..7);
    lake.run_once();
    // Bronze versions: 0 creates it, batch i is version i. Checkpoints after versions 2 and 5.
    let written = checkpoint(&lake);
    assert_eq!(written["version"], 5, "{written}");
    let expected: Vec<String> = (0..5).map(|i| format!("f{i:03}.json")).collect();
    assert_eq!(checkpointed_files(&written), expected);

    // The commits the checkpoint covers leave the log (version 0 names the table).
    let log = lake.dir.join("lake/bronze/_delta_log");
    for version in 1..=5 {
        std::fs::remove_file(log.join(format!("{version:020}.json"))).unwrap();
    }
    land(&lake, 7..8);
    lake.run_once();
    assert_eq!(bronze_ids(&lake), ids(0..8), "each file once");

    // Control: without the checkpoint, the files of the removed commits look new.
    std::fs::remove_file(checkpoint_path(&lake)).unwrap();
    lake.run_once();
    let mut twice = ids(0..8);
    twice.extend(ids(0..5));
    twice.sort();
    assert_eq!(bronze_ids(&lake), twice);
}

#[test]
fn a_checkpoint_that_does_not_match_bronze_is_ignored_and_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = lake(tmp.path());
    land(&lake, 0..4);
    lake.run_once();
    let good = checkpoint(&lake);
    assert_eq!(good["version"], 2, "{good}");
    let mut other_table = good.clone();
    other_table["table_id"] = Value::from("00000000-0000-0000-0000-000000000000");
    let mut ahead = good.clone();
    ahead["version"] = Value::from(1_000);
    // Each also claims the file its case lands as seen: used, it would lose that file.
    let claims = |mut c: Value, n: usize| {
        let mut extra = c["files"][0].clone();
        extra[0]["path"] = Value::from(format!("f{n:03}.json"));
        c["files"].as_array_mut().unwrap().push(extra);
        c.to_string()
    };
    let cases = [
        ("garbage", "{ not json".to_string(), "at line 1 column"),
        (
            "other table",
            claims(other_table, 5),
            "another pipeline or bronze table",
        ),
        ("ahead", claims(ahead, 6), "versions bronze does not have"),
    ];
    for (i, (case, text, why)) in cases.into_iter().enumerate() {
        std::fs::write(checkpoint_path(&lake), text).unwrap();
        land(&lake, 4 + i..5 + i);
        let out = lake.run_once();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("ignoring the seen-files checkpoint"),
            "{case}: {stderr}"
        );
        assert!(stderr.contains(why), "{case}: {stderr}");
        assert_eq!(bronze_ids(&lake), ids(0..5 + i), "{case}");
        // Start-up read the whole log (bronze at version 4 + i), so a checkpoint was due.
        let rewritten = checkpoint(&lake);
        assert_eq!(rewritten["version"], 4 + i, "{case}: {rewritten}");
        let expected: Vec<String> = (0..4 + i).map(|n| format!("f{n:03}.json")).collect();
        assert_eq!(checkpointed_files(&rewritten), expected, "{case}");
    }
}
