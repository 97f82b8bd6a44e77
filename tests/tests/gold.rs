//! Gold's rule detectors and alerts: Flink's exact output on its fixtures, split- and
//! crash-independence on generated data, full refresh, and enrichment from a dimension.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use isolake_tests::flink::{self, fixtures};
use isolake_tests::lake::{Lake, event_sum, generate, sorted_strings, strings};
use polars::prelude::*;

/// Flink's DataStream rule with a 60 s window, next to its windowless `basic`.
const TIMED: &str = r#"
[[detectors]]
name = "timed"
kind = "small_then_large"
window = "60s"
"#;

/// The transactions fixture's config with both of Flink's DataStream rules.
fn txns_config() -> String {
    flink::txns_config(TIMED)
}

/// The alerts of `detector` as Flink prints them: sorted JSON objects.
fn flink_rows(lake: &Lake, detector: &str) -> Vec<serde_json::Value> {
    let alerts = lake.read("gold/alerts");
    let detectors = strings(&alerts, "detector");
    let keys = strings(&alerts, "key");
    let measures = strings(&alerts, "measures");
    let mut rows: Vec<serde_json::Value> = detectors
        .iter()
        .zip(keys.iter().zip(measures.iter()))
        .filter(|(d, _)| d.as_deref() == Some(detector))
        .map(|(_, (k, m))| {
            let mut v: serde_json::Value = serde_json::from_str(m.as_deref().unwrap()).unwrap();
            v["account_id"] = serde_json::Value::String(k.clone().unwrap());
            v
        })
        .collect();
    rows.sort_by_key(flink_order);
    rows
}

/// Sort key for Flink's rows: account, then the small row's time.
fn flink_order(v: &serde_json::Value) -> (String, i64) {
    (
        v["account_id"].to_string(),
        v["small_ts"].as_i64().unwrap_or(0),
    )
}

fn expected(name: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixtures().join("expected").join(name)).unwrap();
    let mut rows: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.sort_by_key(flink_order);
    rows
}

fn assert_flink_alerts(lake: &Lake, how: &str) {
    let basic = expected("datastream_basic.jsonl");
    let timed = expected("datastream_timed.jsonl");
    assert_eq!(basic.len(), 7, "fixture sanity");
    assert_eq!(timed.len(), 6, "fixture sanity");
    assert_eq!(flink_rows(lake, "basic"), basic, "{how}: no window");
    assert_eq!(flink_rows(lake, "timed"), timed, "{how}: 60 s window");
}

#[test]
fn flink_datastream_fixture_gives_exactly_flinks_alerts() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", &txns_config());
    std::fs::copy(flink::txns_json(), lake.landing().join("txns.json")).unwrap();
    lake.run_with(&["run", "--once", "--drain"]);
    assert_flink_alerts(&lake, "one file");
    // Every alert names its two rows, small first.
    let alerts = lake.read("gold/alerts");
    let ids = alerts.column("transaction_ids").unwrap().list().unwrap();
    assert!(ids.iter().all(|l| l.is_some_and(|l| l.len() == 2)));
}

#[test]
fn flink_alerts_do_not_depend_on_batches_or_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = flink::txns_lines();
    // One row per file, one file per batch, in one run.
    let split = Lake::new(
        &tmp.path().join("split"),
        "stability_ms = 1\nmax_files_per_batch = 1",
        &txns_config(),
    );
    for (i, line) in lines.iter().enumerate() {
        std::fs::write(split.landing().join(format!("row-{i:03}.json")), line).unwrap();
    }
    split.run_with(&["run", "--once", "--drain"]);
    assert_flink_alerts(&split, "single-row batches");

    // One row at a time, a new process (restored state) for every batch.
    let restarted = Lake::new(
        &tmp.path().join("restarted"),
        "stability_ms = 1",
        &txns_config(),
    );
    for (i, line) in lines.iter().enumerate() {
        std::fs::write(restarted.landing().join(format!("row-{i:03}.json")), line).unwrap();
        restarted.run_once();
    }
    restarted.run_with(&["run", "--once", "--drain"]);
    assert_flink_alerts(&restarted, "a restart after every row");
}

const STL: &str = isolake_tests::lake::SMALL_THEN_LARGE;

/// Transaction ids by label kind, from isolake-gen's labels.csv.
fn labelled(labels: &Path) -> HashMap<String, HashSet<String>> {
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    for line in std::fs::read_to_string(labels).unwrap().lines().skip(1) {
        let mut parts = line.split(',');
        let (Some(id), Some(_), Some(kind)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        out.entry(kind.to_string())
            .or_default()
            .insert(id.to_string());
    }
    out
}

fn generate_labelled(out: &Path, files: usize, labels: &Path) {
    let status = std::process::Command::new(isolake_tests::binary("isolake-gen"))
        .args([
            "--rows",
            "20000",
            "--files",
            &files.to_string(),
            "--seed",
            "5",
        ])
        .arg("--quiet")
        .arg("--out")
        .arg(out)
        .arg("--labels")
        .arg(labels)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Alert ids and the transaction ids they name, for detector `name`.
fn alert_sets(lake: &Lake, name: &str) -> (BTreeSet<String>, HashSet<String>) {
    let alerts = lake
        .read("gold/alerts")
        .lazy()
        .filter(col("detector").eq(lit(name)))
        .collect()
        .unwrap();
    let ids: BTreeSet<String> = sorted_strings(&alerts, "alert_id").into_iter().collect();
    assert_eq!(ids.len(), alerts.height(), "no alert twice");
    let txns = alerts
        .column("transaction_ids")
        .unwrap()
        .explode(ExplodeOptions {
            empty_as_null: false,
            keep_nulls: false,
        })
        .unwrap();
    let txns = txns
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap().to_string())
        .collect();
    (ids, txns)
}

#[test]
fn generated_pairs_are_all_found_whatever_the_split_and_near_misses_never() {
    let tmp = tempfile::tempdir().unwrap();
    let one = Lake::new(&tmp.path().join("one"), "stability_ms = 1", STL);
    let many = Lake::new(
        &tmp.path().join("many"),
        "stability_ms = 1\nmax_files_per_batch = 7",
        STL,
    );
    let labels = tmp.path().join("labels.csv");
    generate_labelled(&one.landing(), 1, &labels);
    generate_labelled(&many.landing(), 100, &tmp.path().join("labels-many.csv"));
    one.run_with(&["run", "--once", "--drain"]);
    many.run_with(&["run", "--once", "--drain"]);

    let kinds = labelled(&labels);
    let pairs = &kinds["small_then_large"];
    assert!(
        pairs.len() >= 20,
        "the generator injected {} rows",
        pairs.len()
    );
    let (ids, txns) = alert_sets(&one, "stl");
    assert_eq!(&txns, pairs, "every injected pair, and nothing else");
    assert_eq!(ids.len() * 2, pairs.len());
    let near: HashSet<&String> = kinds["near_miss"].iter().collect();
    assert!(!near.is_empty());
    assert!(
        txns.iter().all(|t| !near.contains(t)),
        "a near miss alerted"
    );
    assert_eq!(
        alert_sets(&many, "stl").0,
        ids,
        "100 files give the same alerts"
    );
}

#[test]
fn alerts_survive_sigkills_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = "stability_ms = 1\nmax_files_per_batch = 3";
    let crashed = Lake::new(&tmp.path().join("crashed"), limits, STL);
    let clean = Lake::new(&tmp.path().join("clean"), limits, STL);
    generate(&crashed.landing(), 6_000, 60, 3, 0.0);
    generate(&clean.landing(), 6_000, 60, 3, 0.0);
    clean.run_with(&["run", "--once", "--drain"]);

    // Kills right after commits of each of gold's tables: between scores and alerts too.
    let tables = ["bronze", "gold/scored_transactions", "gold/alerts"];
    let mut killed = 0;
    for round in 0..12 {
        let table = tables[round % tables.len()];
        killed += usize::from(crashed.kill_after_commits(&["run", "--once"], table, 1));
    }
    assert!(killed >= 9, "only {killed} of 12 runs were killed mid-way");
    crashed.run_with(&["run", "--once", "--drain"]);

    let (clean_ids, _) = alert_sets(&clean, "stl");
    assert!(!clean_ids.is_empty());
    assert_eq!(alert_sets(&crashed, "stl").0, clean_ids);
    let scored = crashed.read("gold/scored_transactions");
    let silver = crashed.read("silver");
    assert_eq!(
        sorted_strings(&scored, "transaction_id"),
        sorted_strings(&silver, "transaction_id"),
        "every silver row scored exactly once"
    );
}

#[test]
fn full_refresh_rebuilds_silver_and_gold_from_bronze() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(&tmp.path().join("lake"), "stability_ms = 1", STL);
    generate(&lake.landing(), 4_000, 8, 9, 0.0);
    lake.run_with(&["run", "--once", "--drain"]);
    let silver_before = lake.read("silver").height();
    let (alerts_before, _) = alert_sets(&lake, "stl");
    let bronze_before = lake.read("bronze").height();

    // A stricter expectation: the refresh must apply it to everything already loaded.
    let config = lake.dir.join("isolake.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[[expectations]]\nname = \"small_amounts\"\nexpr = \"amount <= 500\"\naction = \"drop\"\n",
    );
    std::fs::write(&config, text).unwrap();
    for _ in 0..2 {
        lake.run_with(&["run", "--once", "--full-refresh", "--drain"]);
    }
    let silver = lake.read("silver");
    assert_eq!(
        lake.read("bronze").height(),
        bronze_before,
        "bronze untouched"
    );
    assert!(
        silver.height() < silver_before,
        "the new expectation dropped rows"
    );
    let amounts = silver.column("amount").unwrap().f64().unwrap();
    assert!(amounts.iter().flatten().all(|a| a < 1000.0));
    let ids = sorted_strings(&silver, "transaction_id");
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates after two refreshes");
    assert_eq!(
        sorted_strings(&lake.read("gold/scored_transactions"), "transaction_id"),
        ids
    );
    // Amounts above the rule's "large" (500) are gone, so no small-then-large alert survives.
    let (alerts_after, _) = alert_sets(&lake, "stl");
    assert!(!alerts_before.is_empty());
    assert!(alerts_after.is_empty(), "{alerts_after:?}");
    let events = lake.read("event_log");
    let refreshes = strings(&events, "flow")
        .iter()
        .filter(|f| f.as_deref() == Some("full_refresh"))
        .count();
    assert_eq!(refreshes, 2);
}

#[test]
fn alerts_carry_dimension_fields_and_an_upsert_changes_later_alerts_only() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(
        tmp.path(),
        "stability_ms = 1",
        &format!(
            "{}\n[dimensions.accounts]\nkey = \"account_id\"\n",
            txns_config()
        ),
    );
    let accounts = tmp.path().join("accounts.csv");
    std::fs::write(
        &accounts,
        "account_id,holder,segment\na1,Ada,retail\na2,Bob,business\n",
    )
    .unwrap();
    lake.run_with(&[
        "load-dimension",
        "--name",
        "accounts",
        "--file",
        accounts.to_str().unwrap(),
    ]);
    let lines = flink::txns_lines();
    // Up to a1's large payment (line 19) and a row 10 s later, so that the watermark
    // (latest − 5 s) passes it; the rest after an upsert.
    std::fs::write(lake.landing().join("part-1.json"), lines[..20].join("\n")).unwrap();
    lake.run_with(&["run", "--once"]);
    std::fs::write(
        &accounts,
        "account_id,holder,segment\na2,Bea,private\na3,Cy,retail\n",
    )
    .unwrap();
    let out = lake.run_with(&[
        "load-dimension",
        "--name",
        "accounts",
        "--file",
        accounts.to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 inserted, 1 updated, 3 row(s)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::write(lake.landing().join("part-2.json"), lines[20..].join("\n")).unwrap();
    lake.run_with(&["run", "--once", "--drain"]);

    let alerts = lake
        .read("gold/alerts")
        .lazy()
        .filter(col("detector").eq(lit("basic")))
        .sort(["key"], Default::default())
        .collect()
        .unwrap();
    assert_eq!(alerts.height(), 7, "one alert per Flink alert, none twice");
    let rows: HashMap<String, (Option<String>, Option<String>)> = strings(&alerts, "key")
        .into_iter()
        .zip(
            strings(&alerts, "holder")
                .into_iter()
                .zip(strings(&alerts, "segment")),
        )
        .map(|(k, v)| (k.unwrap(), v))
        .collect();
    assert_eq!(
        rows.len(),
        7,
        "every alert kept, with or without a dimension row"
    );
    // a1's alert was made before the upsert; a2's and a3's after it.
    assert_eq!(rows["a1"], (Some("Ada".into()), Some("retail".into())));
    assert_eq!(rows["a2"], (Some("Bea".into()), Some("private".into())));
    assert_eq!(rows["a3"], (Some("Cy".into()), Some("retail".into())));
    assert_eq!(rows["a7"], (None, None), "no dimension row: null fields");
    let dimension = lake.read("dimensions/accounts");
    assert_eq!(
        sorted_strings(&dimension, "account_id"),
        vec!["a1", "a2", "a3"]
    );
}

#[test]
fn rows_behind_the_watermark_are_scored_but_skip_sequence_rules_and_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", &txns_config());
    let rows = [
        r#"{"account_id":"x","timestamp":1000000,"amount":0.5}"#,
        r#"{"account_id":"y","timestamp":1030000,"amount":20.0}"#,
        // 25 s behind the latest row: later than the 5 s allowed lateness.
        r#"{"account_id":"x","timestamp":1005000,"amount":900.0}"#,
        // 3 s behind: on time, and sorted before y's row by event time.
        r#"{"account_id":"z","timestamp":1027000,"amount":0.5}"#,
        r#"{"account_id":"z","timestamp":1031000,"amount":700.0}"#,
    ];
    std::fs::write(lake.landing().join("a.json"), rows.join("\n")).unwrap();
    lake.run_with(&["run", "--once", "--drain"]);
    let alerts = lake.read("gold/alerts");
    let keys = sorted_strings(&alerts, "key");
    assert_eq!(
        keys,
        vec!["z", "z"],
        "x's large row came late: no alert for x"
    );
    assert_eq!(
        lake.read("gold/scored_transactions").height(),
        5,
        "late rows still scored"
    );
    assert_eq!(event_sum(&lake.read("event_log"), "gold", "late"), 1);
}

#[test]
fn threshold_rules_alert_on_every_matching_row_and_bad_ones_fail_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let rule = |expr: &str| {
        format!(
            "[[detectors]]\nname = \"big\"\nkind = \"threshold\"\nexpr = \"{expr}\"\nkey = \"account_id\"\n"
        )
    };
    let lake = Lake::new(
        &tmp.path().join("ok"),
        "stability_ms = 1",
        &rule("amount > 900"),
    );
    generate(&lake.landing(), 3_000, 3, 4, 0.0);
    lake.run_once();
    let silver = lake.read("silver");
    let large = silver
        .column("amount")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .filter(|a| *a > 900.0)
        .count();
    let alerts = lake.read("gold/alerts");
    assert!(large > 0, "the seed has amounts above 900");
    assert_eq!(alerts.height(), large, "one alert per matching row");
    assert!(
        strings(&alerts, "reason")
            .iter()
            .all(|r| r.as_deref() == Some("rule \"amount > 900\" holds"))
    );

    for (expr, says) in [
        ("amount", "not a boolean"),
        ("no_such_column > 1", "no_such_column"),
    ] {
        let bad = Lake::new(
            &tmp.path().join(expr.replace(' ', "_")),
            "stability_ms = 1",
            &rule(expr),
        );
        let out = bad.command(&["run", "--once"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{expr}: {stderr}");
        assert!(
            stderr.contains("threshold rule \"big\"") && stderr.contains(says),
            "{stderr}"
        );
    }
}
