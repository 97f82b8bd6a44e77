//! MATCH_RECOGNIZE detectors against real Apache Flink 2.3 output: the three queries of
//! Flink's anomaly-detection tutorial on the sales fixture, and the small-then-large rule
//! written as MATCH_RECOGNIZE on the transactions fixture — in one batch, in single-row
//! batches, and with a restart after every batch.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use isolake_tests::flink::{self, fixtures};
use isolake_tests::lake::{Lake, strings};
use polars::prelude::*;

const Q1: &str = "
SELECT *
FROM SalesRecordTable
    MATCH_RECOGNIZE (
        ORDER BY purchase_time
        MEASURES
            UNUSUAL_SALE.quantity AS unusual_quantity,
            UNUSUAL_SALE.purchase_time AS unusual_tstamp
        PATTERN (UNUSUAL_SALE)
        DEFINE
            UNUSUAL_SALE AS CAST(UNUSUAL_SALE.quantity AS INT) > 3
    )";

const Q2: &str = "
SELECT *
FROM SalesRecordTable
    MATCH_RECOGNIZE (
        ORDER BY purchase_time
        MEASURES
            FIRST(UNUSUAL_SALE.quantity) AS first_unusual_quantity,
            FIRST(UNUSUAL_SALE.purchase_time) AS first_unusual_tstamp,
            LAST(UNUSUAL_SALE.quantity) AS last_unusual_quantity,
            LAST(UNUSUAL_SALE.purchase_time) AS last_unusual_tstamp
        PATTERN (UNUSUAL_SALE{2})
        DEFINE
            UNUSUAL_SALE AS CAST(UNUSUAL_SALE.quantity AS INT) = 2
    )";

const Q3: &str = "
SELECT *
FROM SalesRecordTable
    MATCH_RECOGNIZE (
        PARTITION BY user_id
        ORDER BY purchase_time
        MEASURES
            UNUSUAL_SALE.invoice_id AS unusual_invoice_id,
            CAST(UNUSUAL_SALE.quantity AS INT) AS unusual_quantity,
            UNUSUAL_SALE.purchase_time AS unusual_tstamp,
            AVG(CAST(TYPICAL_SALE.quantity AS INT)) AS avg_quantity,
            FIRST(TYPICAL_SALE.purchase_time) AS avg_first_sale_tstamp,
            LAST(TYPICAL_SALE.purchase_time) AS avg_last_sale_tstamp
        ONE ROW PER MATCH
        AFTER MATCH SKIP PAST LAST ROW
        PATTERN (TYPICAL_SALE+? UNUSUAL_SALE) WITHIN INTERVAL '10' SECOND
        DEFINE
            UNUSUAL_SALE AS
                UNUSUAL_SALE.quantity > AVG(CAST(TYPICAL_SALE.quantity AS INT)) * 3
    )";

fn toml_query(name: &str, sql: &str, output_table: bool) -> String {
    format!(
        "\n[[detectors]]\nname = \"{name}\"\nkind = \"match_recognize\"\n\
         table = \"SalesRecordTable\"\noutput_table = {output_table}\nsql = \"\"\"{sql}\n\"\"\"\n"
    )
}

fn sales_config() -> String {
    let mut config = String::from(
        "[schema]\nfields = { invoice_id = \"string\", user_id = \"string\", product_id = \
         \"string\", quantity = \"string\", unit_cost = \"string\", purchase_time = \
         \"timestamp\" }\nevent_time = \"purchase_time\"\n\
         event_time_format = \"%Y-%m-%d %H:%M:%S%.3f\"\n",
    );
    config.push_str(&toml_query("q1", Q1, false));
    config.push_str(&toml_query("q2", Q2, false));
    config.push_str(&toml_query("q3", Q3, true));
    config
}

fn small_then_large(within: &str) -> String {
    format!(
        "SELECT * FROM Transactions MATCH_RECOGNIZE (
            PARTITION BY account_id
            ORDER BY ts
            MEASURES
                SMALL.`timestamp` AS small_ts,
                SMALL.amount AS small_amount,
                LARGE.`timestamp` AS large_ts,
                LARGE.amount AS large_amount
            PATTERN (SMALL LARGE) {within}
            DEFINE
                SMALL AS SMALL.amount < 1.00,
                LARGE AS LARGE.amount > 500.00
        )"
    )
}

fn txns_config() -> String {
    let mut config = String::from(
        "[schema]\nfields = { account_id = \"string\", timestamp = \"integer\", amount = \
         \"double\" }\nevent_time = \"ts\"\nevent_time_from = \"timestamp\"\n\
         event_time_format = \"epoch_ms\"\n",
    );
    for (name, within) in [
        ("sql_basic", ""),
        ("sql_timed", "WITHIN INTERVAL '1' MINUTE"),
    ] {
        config.push_str(&format!(
            "\n[[detectors]]\nname = \"{name}\"\nkind = \"match_recognize\"\n\
             table = \"Transactions\"\nsql = \"\"\"{}\"\"\"\n",
            small_then_large(within)
        ));
    }
    config
}

/// A JSON value as text with object keys sorted (order-independent comparison).
fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by_key(|(k, _)| *k);
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k:?}:{}", canonical(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        other => other.to_string(),
    }
}

fn expected(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join("expected").join(name)).unwrap();
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| canonical(&serde_json::from_str(l).unwrap()))
        .collect();
    rows.sort();
    rows
}

/// The alerts of `detector`: their measures, as Flink prints them.
fn matches(lake: &Lake, detector: &str) -> Vec<String> {
    let alerts = lake
        .read("gold/alerts")
        .lazy()
        .filter(col("detector").eq(lit(detector)))
        .collect()
        .unwrap();
    let mut rows: Vec<String> = strings(&alerts, "measures")
        .into_iter()
        .map(|m| canonical(&serde_json::from_str(&m.unwrap()).unwrap()))
        .collect();
    rows.sort();
    rows
}

/// The keys of a JSON object line in the order they appear.
fn key_order(line: &str) -> Vec<String> {
    line.trim_matches(|c| c == '{' || c == '}')
        .split(",\"")
        .map(|part| {
            part.trim_start_matches('"')
                .split("\":")
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn assert_sales(lake: &Lake, how: &str) {
    for q in ["q1", "q2", "q3"] {
        let want = expected(&format!("{q}.jsonl"));
        assert!(!want.is_empty());
        assert_eq!(matches(lake, q), want, "{how}: {q}");
    }
}

fn assert_txns(lake: &Lake, how: &str) {
    for q in ["sql_basic", "sql_timed"] {
        assert_eq!(
            matches(lake, q),
            expected(&format!("{q}.jsonl")),
            "{how}: {q}"
        );
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn flinks_tutorial_queries_give_flinks_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", &sales_config());
    std::fs::copy(
        fixtures().join("sales/sales.json"),
        lake.landing().join("sales.json"),
    )
    .unwrap();
    lake.run_with(&["run", "--once", "--drain"]);
    assert_sales(&lake, "one batch");

    // Q3's own table: Flink's columns, in Flink's order, typed.
    let table = lake.read("gold/q3");
    let first = std::fs::read_to_string(fixtures().join("expected/q3.jsonl")).unwrap();
    let names: Vec<String> = table
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(names, key_order(first.lines().next().unwrap()));
    assert_eq!(table.height(), expected("q3.jsonl").len());
    assert_eq!(
        table.column("unusual_quantity").unwrap().dtype(),
        &DataType::Int64
    );
    assert!(matches!(
        table.column("unusual_tstamp").unwrap().dtype(),
        DataType::Datetime(_, _)
    ));
}

#[test]
fn small_then_large_as_match_recognize_gives_flinks_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", &txns_config());
    std::fs::copy(flink::txns_json(), lake.landing().join("txns.json")).unwrap();
    lake.run_with(&["run", "--once", "--drain"]);
    assert_txns(&lake, "one batch");
}

#[test]
fn matches_are_the_same_in_single_row_batches_and_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    for (fixture, config, check) in [
        (
            "sales/sales.json",
            sales_config(),
            assert_sales as fn(&Lake, &str),
        ),
        (
            "txns/txns.json",
            txns_config(),
            assert_txns as fn(&Lake, &str),
        ),
    ] {
        let rows = lines(&fixtures().join(fixture));
        let name = fixture.split('/').next().unwrap();
        let split = Lake::new(
            &tmp.path().join(format!("{name}-split")),
            "stability_ms = 1\nmax_files_per_batch = 1",
            &config,
        );
        for (i, row) in rows.iter().enumerate() {
            std::fs::write(split.landing().join(format!("row-{i:03}.json")), row).unwrap();
        }
        split.run_with(&["run", "--once", "--drain"]);
        check(&split, "single-row batches");

        let restarted = Lake::new(
            &tmp.path().join(format!("{name}-restarted")),
            "stability_ms = 1",
            &config,
        );
        for (i, row) in rows.iter().enumerate() {
            std::fs::write(restarted.landing().join(format!("row-{i:03}.json")), row).unwrap();
            restarted.run_once();
        }
        restarted.run_with(&["run", "--once", "--drain"]);
        check(&restarted, "a restart after every row");
    }
}

#[test]
fn unsupported_or_malformed_queries_are_config_errors_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "SELECT * FROM SalesRecordTable MATCH_RECOGNIZE (ORDER BY purchase_time ALL ROWS PER MATCH PATTERN (A) DEFINE A AS A.quantity > 1)",
            "ALL ROWS PER MATCH",
        ),
        (
            "SELECT * FROM SalesRecordTable MATCH_RECOGNIZE (ORDER BY purchase_time PATTERN (A) DEFINE A AS UPPER(A.quantity) = 'X')",
            "UPPER",
        ),
        (
            "SELECT * FROM SalesRecordTable MATCH_RECOGNIZE (ORDER BY purchase_time PATTERN (A B) DEFINE A AS A.nope > 1)",
            "nope",
        ),
        (
            "SELECT * FROM Other MATCH_RECOGNIZE (ORDER BY purchase_time PATTERN (A) DEFINE A AS true)",
            "Other",
        ),
        (
            "SELECT * FROM SalesRecordTable MATCH_RECOGNIZE (ORDER BY purchase_time PATTERN (A",
            "SQL",
        ),
    ];
    for (i, (sql, needle)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case-{i}"));
        let mut config = sales_config();
        config.push_str(&toml_query("bad", sql, false));
        let lake = Lake::new(&dir, "", &config);
        let out = lake.command(&["validate"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sql}: {stderr}");
        assert!(stderr.contains(needle), "{needle:?} not named in: {stderr}");
        assert!(
            stderr.contains("detectors[3].sql"),
            "the key is named: {stderr}"
        );
        assert!(stderr.contains("line "), "the line is named: {stderr}");
    }
}
