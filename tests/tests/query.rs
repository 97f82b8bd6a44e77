//! `isolake-pipeline query`: SQL over the lake's tables by name, time travel, output formats,
//! and clear errors (exit 2) for bad SQL or an unknown table.
#![allow(clippy::unwrap_used)]

use isolake_tests::flink;
use isolake_tests::lake::{Lake, read_parquet_rows};

/// The transactions fixture's config: its schema and Flink's windowless rule, `basic`.
fn config() -> String {
    flink::txns_config("")
}

fn stdout(lake: &Lake, args: &[&str]) -> String {
    String::from_utf8(lake.run_with(args).stdout).unwrap()
}

#[test]
fn sql_over_named_tables_with_time_travel_and_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", &config());
    let lines = flink::txns_lines();
    std::fs::write(lake.landing().join("a.json"), lines[..20].join("\n")).unwrap();
    lake.run_once();
    std::fs::write(lake.landing().join("b.json"), lines[20..].join("\n")).unwrap();
    lake.run_with(&["run", "--once", "--drain"]);

    let csv = stdout(
        &lake,
        &[
            "query",
            "--format",
            "csv",
            "SELECT key, count(*) AS n FROM alerts GROUP BY key ORDER BY key",
        ],
    );
    let keys: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(keys, ["a1", "a10", "a11", "a2", "a3", "a7", "a8"], "{csv}");
    // Alerts carry their key under its column's name too: the example query.
    let by_account = stdout(
        &lake,
        &[
            "query",
            "--format",
            "csv",
            "SELECT account_id, count(*) AS n FROM alerts GROUP BY 1 ORDER BY 1",
        ],
    );
    assert_eq!(by_account.replacen("account_id", "key", 1), csv);

    // Version 1 of alerts is the first batch: alerts up to its watermark only.
    let now = stdout(
        &lake,
        &[
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM alerts",
        ],
    );
    let then = stdout(
        &lake,
        &[
            "query",
            "--format",
            "csv",
            "--as-of-version",
            "1",
            "SELECT count(*) AS n FROM alerts",
        ],
    );
    assert_eq!(now.lines().nth(1), Some("7"));
    let then: u64 = then.lines().nth(1).unwrap().parse().unwrap();
    assert!(then > 0 && then < 7, "{then}");

    // JSON lines and a parquet file hold the same rows.
    let json = stdout(
        &lake,
        &[
            "query",
            "--format",
            "json",
            "SELECT account_id, amount FROM silver WHERE amount > 500",
        ],
    );
    let expected = lines
        .iter()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["amount"].as_f64().unwrap() > 500.0
        })
        .count();
    assert!(expected > 0);
    assert_eq!(json.lines().count(), expected, "{json}");
    let out = tmp.path().join("big.parquet");
    lake.run_with(&[
        "query",
        "--output",
        out.to_str().unwrap(),
        "SELECT * FROM scored_transactions",
    ]);
    assert_eq!(read_parquet_rows(&out), 27);

    let table = stdout(
        &lake,
        &[
            "query",
            "--format",
            "table",
            "SELECT flow FROM event_log LIMIT 3",
        ],
    );
    assert!(
        table.contains("flow") && table.contains("(3 rows)"),
        "{table}"
    );
}

#[test]
fn bad_sql_and_unknown_tables_exit_2_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", &config());
    std::fs::copy(flink::txns_json(), lake.landing().join("t.json")).unwrap();
    lake.run_once();
    for (sql, needle) in [
        ("SELEC 1", "invalid SQL"),
        ("SELECT * FROM nope", "nope"),
        ("SELECT missing_column FROM silver", "missing_column"),
    ] {
        let out = lake.command(&["query", sql]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sql}: {stderr}");
        assert!(stderr.contains(needle), "{sql}: {stderr}");
    }
    let out = lake
        .command(&["query", "--as-of-version", "99", "SELECT * FROM silver"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("silver"));
}

#[test]
fn tables_checkpoint_at_the_configured_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(
        tmp.path(),
        "stability_ms = 1\nmax_files_per_batch = 1",
        &format!("{}\n[maintenance]\ncheckpoint_interval = 2\n", config()),
    );
    let lines = flink::txns_lines();
    for (i, chunk) in lines.chunks(6).enumerate() {
        std::fs::write(lake.landing().join(format!("p{i}.json")), chunk.join("\n")).unwrap();
    }
    lake.run_once();
    let log = lake.dir.join("lake/silver/_delta_log");
    let checkpoints = std::fs::read_dir(&log)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".checkpoint.parquet")
        })
        .count();
    assert!(
        checkpoints >= 2,
        "{checkpoints} checkpoints in {}",
        log.display()
    );
    // The rows are all there, read through the checkpoints.
    let csv = stdout(
        &lake,
        &[
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM silver",
        ],
    );
    assert_eq!(csv.lines().nth(1), Some(lines.len().to_string().as_str()));
}
