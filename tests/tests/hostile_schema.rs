//! Schema changes on a lake that already holds rows (issue 16): new fields and measures evolve
//! the tables in the batch's own commit, a wider type is applied in place keeping every
//! value, a narrowing or removed column is refused until `run --full-refresh` applies it, and
//! a write never turns a value into NULL.
#![allow(clippy::unwrap_used)]

use isolake_data::lake::{Commit, CreateOptions, LakeTable};
use isolake_tests::lake::{Lake, block_on, sorted_strings, strings};
use polars::prelude::*;

fn write_config(lake: &Lake, rest: &str) {
    let text = format!(
        "id = \"fraud\"\nlake = \"./lake\"\n[source]\nlanding = \"./landing\"\nstability_ms = 1\n{rest}\n"
    );
    std::fs::write(lake.dir.join("isolake.toml"), text).unwrap();
}

fn land(lake: &Lake, name: &str, lines: &[&str]) {
    std::fs::write(lake.landing().join(name), lines.join("\n")).unwrap();
}

fn dtype(df: &DataFrame, column: &str) -> DataType {
    df.column(column).unwrap().dtype().clone()
}

const V1: &str = r#"
[schema]
fields = { id = "string", ts = "timestamp", amount = "double" }
event_time = "ts"
key = "id"

[[detectors]]
name = "big"
kind = "threshold"
expr = "amount > 800"
"#;

#[test]
fn new_fields_evolve_every_table_in_the_batch_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "", "");
    write_config(&lake, V1);
    // `merchant` is not declared yet: bronze evolves a text column for it.
    land(
        &lake,
        "1.json",
        &[r#"{"id": "a", "ts": "2025-01-01T00:00:00Z", "amount": 1.0, "merchant": "m1"}"#],
    );
    lake.run_once();
    // An unchanged config changes nothing.
    let out = lake.command(&["validate"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("schema change"));
    let before: Vec<usize> = ["bronze", "silver", "gold/scored_transactions"]
        .iter()
        .map(|t| lake.commits(t))
        .collect();
    write_config(
        &lake,
        &V1.replace(
            "amount = \"double\" }",
            "amount = \"double\", merchant = \"string\", qty = \"integer\" }",
        ),
    );
    let out = lake.command(&["validate"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("silver: adds column merchant"), "{stdout}");
    assert!(stdout.contains("bronze: adds column qty"), "{stdout}");
    land(
        &lake,
        "2.json",
        &[
            r#"{"id": "b", "ts": "2025-01-01T00:01:00Z", "amount": 2.0, "merchant": "m2", "qty": 3}"#,
        ],
    );
    lake.run_once();
    // One commit per table for the batch: the new columns came with its rows.
    let after: Vec<usize> = ["bronze", "silver", "gold/scored_transactions"]
        .iter()
        .map(|t| lake.commits(t))
        .collect();
    assert_eq!(after, before.iter().map(|n| n + 1).collect::<Vec<_>>());
    for table in ["silver", "gold/scored_transactions"] {
        let rows = lake.read(table).sort(["id"], Default::default()).unwrap();
        assert_eq!(
            strings(&rows, "id"),
            [Some("a".into()), Some("b".into())],
            "{table}"
        );
        assert_eq!(
            strings(&rows, "merchant"),
            [None, Some("m2".into())],
            "{table}"
        );
        assert_eq!(strings(&rows, "qty"), [None, Some("3".into())], "{table}");
        assert_eq!(dtype(&rows, "qty"), DataType::Int64, "{table}");
    }
    let bronze = lake
        .read("bronze")
        .sort(["id"], Default::default())
        .unwrap();
    assert_eq!(
        strings(&bronze, "merchant"),
        [Some("m1".into()), Some("m2".into())]
    );
}

#[test]
fn a_wider_type_is_applied_in_place_keeping_every_value() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "", "");
    let v1 = V1.replace(
        "amount = \"double\" }",
        "amount = \"double\", qty = \"integer\" }",
    );
    write_config(&lake, &v1);
    land(
        &lake,
        "1.json",
        &[
            r#"{"id": "a", "ts": "2025-01-01T00:00:00Z", "amount": 1.0, "qty": 5}"#,
            r#"{"id": "b", "ts": "2025-01-01T00:00:01Z", "amount": 1.0, "qty": 9007199254740992}"#,
        ],
    );
    lake.run_once();
    write_config(&lake, &v1.replace("qty = \"integer\"", "qty = \"double\""));
    let out = lake.command(&["validate"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("silver: will widen column qty from Int64 to Float64"),
        "{stdout}"
    );
    land(
        &lake,
        "2.json",
        &[r#"{"id": "c", "ts": "2025-01-01T00:01:00Z", "amount": 2.0, "qty": 2.5}"#],
    );
    lake.run_once();
    for table in ["bronze", "silver", "gold/scored_transactions"] {
        let rows = lake.read(table).sort(["id"], Default::default()).unwrap();
        assert_eq!(dtype(&rows, "qty"), DataType::Float64, "{table}");
        let qty: Vec<Option<f64>> = rows.column("qty").unwrap().f64().unwrap().iter().collect();
        assert_eq!(
            qty,
            [Some(5.0), Some(9007199254740992.0), Some(2.5)],
            "{table}"
        );
    }
    assert_eq!(lake.read("quarantine").height(), 0);
}

#[test]
fn a_narrowed_or_removed_column_is_refused_until_a_full_refresh_applies_it() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "", "");
    let v1 = V1.replace(
        "amount = \"double\" }",
        "amount = \"double\", note = \"string\" }",
    );
    write_config(&lake, &v1);
    land(
        &lake,
        "1.json",
        &[
            r#"{"id": "a", "ts": "2025-01-01T00:00:00Z", "amount": 5.0, "note": "x"}"#,
            r#"{"id": "b", "ts": "2025-01-01T00:00:01Z", "amount": 900.0, "note": "y"}"#,
        ],
    );
    lake.run_once();
    let v2 = V1.replace(
        "[[detectors]]",
        "[silver]\ncasts = { amount = \"integer\" }\n\n[[detectors]]",
    );
    write_config(&lake, &v2);
    let expected = "table silver: column amount is Float64 and would become Int64";
    for args in [&["validate"][..], &["run", "--once"]] {
        let out = lake.command(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stderr.contains("--full-refresh"), "{stderr}");
    }
    // Nothing changed meaning: silver is as it was.
    assert_eq!(dtype(&lake.read("silver"), "amount"), DataType::Float64);
    // Only the removed column now: still refused.
    write_config(&lake, V1);
    let out = lake.command(&["validate"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("table silver: column note is no longer produced"),
        "{stderr}"
    );
    write_config(&lake, &v2);
    lake.run_with(&["run", "--once", "--full-refresh"]);
    let silver = lake
        .read("silver")
        .sort(["id"], Default::default())
        .unwrap();
    assert_eq!(dtype(&silver, "amount"), DataType::Int64);
    assert!(silver.column("note").is_err(), "{silver:?}");
    assert_eq!(
        strings(&silver, "amount"),
        [Some("5".into()), Some("900".into())]
    );
    assert_eq!(
        sorted_strings(&lake.read("gold/alerts"), "detector"),
        ["big"]
    );
    // Bronze keeps what landed.
    assert_eq!(sorted_strings(&lake.read("bronze"), "note"), ["x", "y"]);
}

#[test]
fn a_new_measure_grows_the_detector_table() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "", "");
    let config = |measures: &str| {
        format!(
            "[schema]\nfields = {{ id = \"string\", account = \"string\", ts = \"timestamp\", \
             amount = \"double\" }}\nevent_time = \"ts\"\nkey = \"id\"\n\n[[detectors]]\n\
             name = \"big\"\nkind = \"match_recognize\"\ntable = \"T\"\noutput_table = true\n\
             sql = \"\"\"SELECT * FROM T MATCH_RECOGNIZE (PARTITION BY account ORDER BY ts \
             MEASURES {measures} PATTERN (BIG) DEFINE BIG AS BIG.amount > 100)\"\"\"\n"
        )
    };
    write_config(&lake, &config("BIG.amount AS big_amount"));
    land(
        &lake,
        "1.json",
        &[r#"{"id": "a", "account": "k", "ts": "2025-01-01T00:00:00Z", "amount": 500.0}"#],
    );
    lake.run_with(&["run", "--once", "--drain"]);
    write_config(&lake, &config("BIG.amount AS big_amount, BIG.id AS big_id"));
    land(
        &lake,
        "2.json",
        &[r#"{"id": "b", "account": "k", "ts": "2025-01-01T00:01:00Z", "amount": 600.0}"#],
    );
    lake.run_with(&["run", "--once", "--drain"]);
    let rows = lake
        .read("gold/big")
        .sort(["big_amount"], Default::default())
        .unwrap();
    assert_eq!(
        strings(&rows, "big_amount"),
        [Some("500.0".into()), Some("600.0".into())]
    );
    assert_eq!(strings(&rows, "big_id"), [None, Some("b".into())]);
}

#[test]
fn a_write_never_turns_a_value_into_null() {
    let tmp = tempfile::tempdir().unwrap();
    let location = tmp.path().join("t").to_string_lossy().into_owned();
    block_on(async {
        let schema = Schema::from_iter([
            Field::new("n".into(), DataType::Int64),
            Field::new("small".into(), DataType::Int32),
        ]);
        let mut table = LakeTable::create(&location, &schema, CreateOptions::default())
            .await
            .unwrap();
        let version = table.version();
        let fraction = df!("n" => [1.5f64], "small" => [1i32]).unwrap();
        let err = table
            .append(&fraction, Commit::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column n cannot take the values written to it without loss"),
            "{err}"
        );
        let overflow = df!("n" => [1i64], "small" => [1i64 << 40]).unwrap();
        let err = table
            .append(&overflow, Commit::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1099511627776")
                || err.to_lowercase().contains("overflow")
                || err.contains("Can't cast"),
            "{err}"
        );
        assert_eq!(table.version(), version);
        let fits = df!("n" => [7i32], "small" => [3i64]).unwrap();
        table.append(&fits, Commit::default()).await.unwrap();
        let rows = table.scan().unwrap().collect().unwrap();
        assert_eq!(strings(&rows, "n"), [Some("7".into())]);
        assert_eq!(strings(&rows, "small"), [Some("3".into())]);
    });
}
