//! Input that used to stop the pipeline or leak data (issue 16, first part): integer keys,
//! landed keys named like bronze's own columns, a byte-order mark, and queries that read
//! files outside the lake. Each test asserts the exact rows.
#![allow(clippy::unwrap_used)]

use isolake_tests::lake::{Lake, sorted_strings, strings};

const INTEGER_KEYS: &str = r#"
[schema]
fields = { id = "integer", account = "integer", ts = "timestamp", amount = "double" }
event_time = "ts"
key = "id"

[[detectors]]
name = "small_then_large"
kind = "small_then_large"
key = "account"
amount = "amount"

[[detectors]]
name = "big"
kind = "threshold"
expr = "amount > 800"
key = "account"
"#;

#[test]
fn integer_dedup_and_detector_keys_work() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", INTEGER_KEYS);
    let lines = [
        r#"{"id": 1, "account": 7, "ts": "2025-01-01T00:00:00Z", "amount": 0.5}"#,
        r#"{"id": 2, "account": 7, "ts": "2025-01-01T00:00:10Z", "amount": 600.0}"#,
        r#"{"id": 1, "account": 7, "ts": "2025-01-01T00:00:11Z", "amount": 3.0}"#,
        r#"{"id": 3, "account": 8, "ts": "2025-01-01T00:00:20Z", "amount": 900.0}"#,
    ];
    std::fs::write(lake.landing().join("t.json"), lines.join("\n")).unwrap();
    lake.run_with(&["run", "--once", "--drain"]);
    assert_eq!(sorted_strings(&lake.read("silver"), "id"), ["1", "2", "3"]);
    let quarantine = lake.read("quarantine");
    assert_eq!(strings(&quarantine, "id"), [Some("1".to_string())]);
    let reasons = quarantine
        .column("_failed_expectations")
        .unwrap()
        .get(0)
        .unwrap();
    assert!(reasons.to_string().contains("duplicate_key"), "{reasons}");
    let alerts = lake.read("gold/alerts");
    let mut found: Vec<(String, String, String)> = (0..alerts.height())
        .map(|i| {
            let cell = |c: &str| alerts.column(c).unwrap().get(i).unwrap().to_string();
            (cell("detector"), cell("key"), cell("transaction_ids"))
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("\"big\"".into(), "\"8\"".into(), "[\"3\"]".into()),
            (
                "\"small_then_large\"".into(),
                "\"7\"".into(),
                "[\"1\", \"2\"]".into()
            ),
        ]
    );
}

#[test]
fn a_landed_key_named_like_a_lineage_column_is_rescued() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", "");
    let good = r#"{"transaction_id":"t1","account_id":"a","user_id":"u","product_id":"p","event_time":"2025-01-01T00:00:00.000Z","amount":5.0,"quantity":1,"unit_cost":5.0,"merchant_category":"m","channel":"pos","country":"NL","distance_from_home_km":1.0,"seconds_since_last_txn":60.0,"account_age_days":100"#;
    let line = format!("{good},\"_source_file\":\"evil.json\",\"_batch_id\":99}}");
    std::fs::write(lake.landing().join("a.json"), line).unwrap();
    lake.run_once();
    let bronze = lake.read("bronze");
    assert_eq!(
        strings(&bronze, "_source_file"),
        [Some("a.json".to_string())]
    );
    assert_eq!(strings(&bronze, "_batch_id"), [Some("1".to_string())]);
    let rescued: serde_json::Value =
        serde_json::from_str(strings(&bronze, "_rescued_data")[0].as_deref().unwrap()).unwrap();
    assert_eq!(
        rescued,
        serde_json::json!({"_source_file": "evil.json", "_batch_id": 99})
    );
    assert_eq!(
        sorted_strings(&lake.read("silver"), "transaction_id"),
        ["t1"]
    );
}

#[test]
fn a_byte_order_mark_and_crlf_line_ends_are_ordinary_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(
        tmp.path(),
        "stability_ms = 1",
        "[schema]\nfields = { id = \"string\", ts = \"timestamp\" }\nevent_time = \"ts\"\nkey = \"id\"",
    );
    let text = "\u{feff}{\"id\":\"b1\",\"ts\":\"2025-01-01T00:00:00Z\"}\r\n\
                {\"id\":\"b2\",\"ts\":\"2025-01-01T00:00:01Z\"}\r\n";
    std::fs::write(lake.landing().join("bom.json"), text).unwrap();
    lake.run_once();
    assert_eq!(sorted_strings(&lake.read("silver"), "id"), ["b1", "b2"]);
    assert_eq!(lake.read("quarantine").height(), 0);
}

#[test]
fn queries_read_only_the_lakes_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", "");
    lake.run_once();
    let secret = tmp.path().join("secret.csv");
    std::fs::write(&secret, "password\nhunter2\n").unwrap();
    let path = secret.display();
    for (sql, names) in [
        (format!("SELECT * FROM read_csv('{path}')"), "read_csv"),
        (
            format!("SELECT * FROM silver WHERE 1 IN (SELECT 1 FROM read_parquet('{path}'))"),
            "read_parquet",
        ),
        (format!("COPY silver TO '{path}'"), "COPY"),
        (
            "CREATE TABLE t AS SELECT * FROM silver".to_string(),
            "CREATE",
        ),
    ] {
        let out = lake.command(&["query", &sql]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sql}: {stderr}");
        assert!(
            stderr.contains("refused") && stderr.contains(names),
            "{sql}: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
    }
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "password\nhunter2\n",
        "nothing was written either"
    );
    let ok = lake
        .command(&["query", "SELECT count(*) AS n FROM silver"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// `n` rows `x0..` of the small schema below, `seconds` apart from `base`.
fn rows(base: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"id\":\"x{i}\",\"ts\":\"{base}:{:02}Z\"}}\n", i % 60))
        .collect()
}

#[test]
fn an_event_time_far_in_the_future_is_quarantined_and_moves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let schema = "[schema]\nfields = { id = \"string\", ts = \"timestamp\" }\nevent_time = \"ts\"\nkey = \"id\"";
    let lake = Lake::new(tmp.path(), "stability_ms = 1", schema);
    let mut first = rows("2025-01-01T00:00", 100);
    first.push_str("{\"id\":\"future\",\"ts\":\"2099-01-01T00:00:00Z\"}\n");
    std::fs::write(lake.landing().join("a.json"), first).unwrap();
    lake.run_once();
    assert_eq!(lake.read("silver").height(), 100);
    let quarantine = lake.read("quarantine");
    assert_eq!(strings(&quarantine, "id"), [Some("future".to_string())]);
    let reasons = quarantine
        .column("_failed_expectations")
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(reasons.to_string(), "[\"event_time_in_future\"]");
    // The same ids an hour later: still duplicates (the outlier moved no dedup window).
    std::fs::write(lake.landing().join("b.json"), rows("2025-01-01T01:00", 100)).unwrap();
    lake.run_once();
    assert_eq!(lake.read("silver").height(), 100);
    let quarantine = lake.read("quarantine");
    assert_eq!(quarantine.height(), 101);
    let duplicates = (0..quarantine.height())
        .filter(|i| {
            let reasons = quarantine
                .column("_failed_expectations")
                .unwrap()
                .get(*i)
                .unwrap();
            reasons.to_string() == "[\"duplicate_key\"]"
        })
        .count();
    assert_eq!(duplicates, 100);
}

#[test]
fn sigint_during_run_drain_commits_the_batch_and_does_not_drain() {
    signal_during_drain("-INT");
}

#[test]
fn sigterm_during_run_drain_commits_the_batch_and_does_not_drain() {
    signal_during_drain("-TERM");
}

fn signal_during_drain(signal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    // The second file is still "being written" (fresh, and the stability wait is long), so
    // the run waits for it after committing the first: the signal lands mid-input.
    let lake = Lake::new(
        tmp.path(),
        "stability_ms = 600000",
        "[[detectors]]\nname = \"stl\"\nkind = \"small_then_large\"",
    );
    isolake_tests::lake::generate(&tmp.path().join("staged"), 200, 2, 3, 0.0);
    let mut staged: Vec<_> = std::fs::read_dir(tmp.path().join("staged"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    staged.sort();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let first = lake.landing().join(staged[0].file_name().unwrap());
    std::fs::copy(&staged[0], &first).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&first)
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::fs::copy(
        &staged[1],
        lake.landing().join(staged[1].file_name().unwrap()),
    )
    .unwrap();
    let child = lake.spawn(&["run", "--once", "--drain"]);
    isolake_tests::eventually(
        std::time::Duration::from_secs(60),
        "batch 1 in bronze",
        || {
            let log = lake.dir.join("lake/bronze/_delta_log");
            log.is_dir()
                .then(|| lake.read("bronze").height())
                .filter(|n| *n > 0)
        },
    );
    let _ = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lake.read("bronze").height(),
        100,
        "the first file, committed"
    );
    let drained = strings(&lake.read("event_log"), "status")
        .iter()
        .filter(|s| s.as_deref() == Some("drained"))
        .count();
    assert_eq!(drained, 0, "the input had not ended: no drain");
}
