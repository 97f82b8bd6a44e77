//! Bad input never crashes the pipeline nor loses a line; schema evolution modes; `fail`.
#![allow(clippy::unwrap_used)]

use isolake_tests::lake::{
    Lake, count_lines, event_sum, failed_expectations, generate, non_null, strings,
};
use serde_json::json;

fn record(id: &str, amount: f64) -> String {
    json!({
        "transaction_id": id, "account_id": "a000001", "user_id": "u0000001",
        "product_id": "p1", "event_time": "2024-01-01T00:00:00.000Z", "amount": amount,
        "quantity": 1, "unit_cost": amount, "merchant_category": "grocery",
        "channel": "pos", "country": "DE", "distance_from_home_km": 1.0,
        "seconds_since_last_txn": 60.0, "account_age_days": 100
    })
    .to_string()
}

#[test]
fn a_corpus_of_bad_input_lands_every_line_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", "");
    let landing = lake.landing();
    generate(&landing, 500, 2, 3, 0.0);
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(landing.join(name), bytes).unwrap();
    // 1. broken JSON between good lines
    write(
        "broken.json",
        format!(
            "{}\n{{\"transaction_id\": \"b1\", \"amount\": \n{}\n",
            record("b0", 1.0),
            record("b2", 2.0)
        )
        .into_bytes(),
    );
    // 2. truncated last line (no newline)
    write(
        "truncated.json",
        format!("{}\n{{\"transaction_id\":\"tr1\",\"amo", record("tr0", 1.0)).into_bytes(),
    );
    // 3. binary garbage: three lines of every byte but newline
    let garbage: Vec<u8> = (0..3)
        .flat_map(|_| (0u8..=255).filter(|b| *b != b'\n').chain([b'\n']))
        .collect();
    write("garbage.json", garbage);
    // 4. invalid UTF-8
    write(
        "latin1.json",
        b"{\"transaction_id\":\"caf\xe9\"}\n".to_vec(),
    );
    // 5. wrong types
    write(
        "types.json",
        format!(
            "{}\n",
            record("ty0", 1.0).replace("\"amount\":1.0", "\"amount\":\"abc\"")
        )
        .into_bytes(),
    );
    // 6. missing required fields
    write("missing.json", b"{\"transaction_id\":\"m1\"}\n".to_vec());
    // 7. a 10 MB line (valid, with an extra big field)
    let mut big: serde_json::Value = serde_json::from_str(&record("big1", 3.0)).unwrap();
    big["note"] = json!("x".repeat(10 * 1024 * 1024));
    write("big.json", format!("{big}\n").into_bytes());
    // 8. an empty file
    write("empty.json", Vec::new());
    // 9. a duplicate transaction id
    write(
        "dup.json",
        format!("{}\n{}\n", record("d1", 5.0), record("d1", 6.0)).into_bytes(),
    );
    // 10. a file overwritten after ingestion (below)
    write(
        "overwritten.json",
        format!("{}\n", record("o1", 1.0)).into_bytes(),
    );
    // 11. a symlink to a file outside the landing directory
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(
        outside.join("secret.json"),
        format!("{}\n", record("s1", 1.0)),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.join("secret.json"), landing.join("link.json")).unwrap();
    // A symlink inside is fine, but must not be read twice: it is listed under its own name.
    let expected_lines = count_lines(&landing) - 1; // minus the refused symlink's line
    let corrupt_lines = 1 + 1 + 3 + 1;

    lake.run_once();
    std::fs::write(
        landing.join("overwritten.json"),
        format!("{}\n{}\n", record("o1", 1.0), record("o2", 2.0)),
    )
    .unwrap();
    lake.run_once();

    let bronze = lake.read("bronze");
    assert_eq!(bronze.height(), expected_lines);
    assert_eq!(non_null(&bronze, "_corrupt_record"), corrupt_lines);
    let rescued = strings(&bronze, "_rescued_data");
    assert!(
        rescued.iter().flatten().any(|r| r.contains("\"abc\"")),
        "{rescued:?}"
    );
    assert!(
        bronze.schema().contains("note"),
        "the big line's new column was added"
    );

    let silver = lake.read("silver");
    let quarantine = lake.read("quarantine");
    assert_eq!(
        silver.height() + quarantine.height(),
        expected_lines,
        "each line in silver or quarantine"
    );
    let reasons: Vec<(Option<String>, String)> = strings(&quarantine, "transaction_id")
        .into_iter()
        .zip(failed_expectations(&quarantine))
        .map(|(id, r)| (id, r.join(",")))
        .collect();
    let reason_of = |id: &str| {
        reasons
            .iter()
            .find(|(i, _)| i.as_deref() == Some(id))
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{id} not quarantined: {reasons:?}"))
    };
    assert_eq!(reason_of("d1"), "duplicate_key");
    assert!(
        reason_of("ty0").contains("valid_types(amount)"),
        "{}",
        reason_of("ty0")
    );
    assert!(reason_of("m1").contains("has_event_time"));
    assert_eq!(
        reasons
            .iter()
            .filter(|(_, r)| r == "corrupt_record")
            .count(),
        corrupt_lines
    );
    assert_eq!(
        strings(&silver, "transaction_id")
            .iter()
            .filter(|i| i.as_deref() == Some("d1"))
            .count(),
        1
    );
    assert!(
        !strings(&silver, "transaction_id").contains(&Some("o2".to_string())),
        "overwrite ignored"
    );

    let events = lake.read("event_log");
    assert_eq!(
        event_sum(&events, "bronze", "rows_in") as usize,
        expected_lines
    );
    assert_eq!(
        event_sum(&events, "silver", "corrupt") as usize,
        corrupt_lines
    );
    assert_eq!(
        event_sum(&events, "silver", "quarantined") as usize,
        quarantine.height()
    );
    assert_eq!(
        event_sum(&events, "silver", "rows_out") as usize,
        silver.height()
    );
    let statuses = strings(&events, "status");
    let errors = strings(&events, "error");
    let refused: Vec<_> = statuses
        .iter()
        .zip(&errors)
        .filter(|(s, _)| s.as_deref() == Some("refused"))
        .collect();
    // Reported by each run that sees it (two runs here).
    assert_eq!(refused.len(), 2, "{statuses:?}");
    assert!(
        refused
            .iter()
            .all(|(_, e)| e.as_deref().unwrap().contains("link.json"))
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| s.as_deref() == Some("changed_after_ingestion"))
            .count(),
        1
    );
}

#[test]
fn schema_evolution_modes() {
    let line = format!(
        "{}\n",
        record("n1", 1.0).replacen('{', "{\"loyalty_tier\":\"gold\",", 1)
    );
    for mode in ["add_new_columns", "rescue", "fail_on_new_columns", "none"] {
        let tmp = tempfile::tempdir().unwrap();
        let lake = Lake::new(
            tmp.path(),
            "stability_ms = 1",
            &format!("[schema]\nevolution = \"{mode}\""),
        );
        std::fs::write(lake.landing().join("new.json"), &line).unwrap();
        let out = lake.command(&["run", "--once"]).output().unwrap();
        let bronze = lake.read("bronze");
        match mode {
            "add_new_columns" => {
                assert!(out.status.success());
                assert_eq!(
                    strings(&bronze, "loyalty_tier"),
                    vec![Some("gold".to_string())]
                );
            }
            "rescue" => {
                assert!(out.status.success());
                assert!(!bronze.schema().contains("loyalty_tier"));
                assert_eq!(
                    strings(&bronze, "_rescued_data"),
                    vec![Some("{\"loyalty_tier\":\"gold\"}".to_string())]
                );
            }
            "fail_on_new_columns" => {
                assert_eq!(out.status.code(), Some(4));
                assert!(String::from_utf8_lossy(&out.stderr).contains("loyalty_tier"));
                assert_eq!(bronze.height(), 0);
            }
            _ => {
                assert!(out.status.success());
                assert!(!bronze.schema().contains("loyalty_tier"));
                assert_eq!(strings(&bronze, "_rescued_data"), vec![None]);
                assert_eq!(lake.read("silver").height(), 1);
            }
        }
    }
}

#[test]
fn a_failing_expectation_commits_nothing_and_a_fixed_config_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let expectation = |action: &str| {
        format!(
            "[[expectations]]\nname = \"positive_amount\"\nexpr = \"amount > 0\"\naction = \"{action}\""
        )
    };
    let lake = Lake::new(tmp.path(), "stability_ms = 1", &expectation("fail"));
    std::fs::write(
        lake.landing().join("a.json"),
        format!("{}\n{}\n", record("ok1", 5.0), record("neg1", -5.0)),
    )
    .unwrap();
    let out = lake.command(&["run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("positive_amount") && stderr.contains("a.json:2"),
        "{stderr}"
    );
    assert_eq!(lake.read("bronze").height(), 0);
    assert_eq!(lake.read("silver").height(), 0);

    Lake::new(tmp.path(), "stability_ms = 1", &expectation("quarantine"));
    lake.run_once();
    assert_eq!(
        strings(&lake.read("silver"), "transaction_id"),
        vec![Some("ok1".to_string())]
    );
    assert_eq!(
        strings(&lake.read("quarantine"), "transaction_id"),
        vec![Some("neg1".to_string())]
    );
}

#[test]
fn validate_reports_every_problem_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(
        tmp.path(),
        "stability_ms = \"soon\"\ncolour = 1",
        "[[expectations]]\nname = \"x\"\nexpr = \"amount >\"",
    );
    let out = lake.command(&["validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "line 5: `source.stability_ms`",
        "line 6: `source.colour`",
        "line 9: `expectations[0].expr`",
    ] {
        assert!(stderr.contains(needle), "{needle} missing in:\n{stderr}");
    }
    let ok = Lake::new(&tmp.path().join("ok"), "", "");
    assert!(ok.command(&["validate"]).output().unwrap().status.success());
}
