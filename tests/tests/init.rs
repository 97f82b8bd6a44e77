//! `isolake-pipeline init`: the config it proposes from the landed files declares what the
//! data holds (types, event time, key, one expectation per field), `validate` accepts it, and
//! `run --once` runs it with the rows each check lets through.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use isolake_data::record::{CANONICAL_FIELDS, NUMERIC_FEATURES};
use isolake_tests::binary;
use isolake_tests::flink::fixtures;
use isolake_tests::lake::{count_lines, generate, non_null, read_table, sorted_strings, strings};
use polars::prelude::DataFrame;
use serde_json::{Map, Value};

/// A project: `<dir>/landing`, the config init writes at `<dir>/isolake.toml`, `<dir>/lake`.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("landing")).unwrap();
        Self { dir }
    }

    fn landing(&self) -> PathBuf {
        self.dir.path().join("landing")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("isolake.toml")
    }

    /// `init --landing <landing> --out <config>` with `extra` arguments, whatever its outcome.
    fn init(&self, extra: &[&str]) -> Output {
        Command::new(binary("isolake-pipeline"))
            .arg("init")
            .arg("--landing")
            .arg(self.landing())
            .arg("--out")
            .arg(self.config())
            .args(extra)
            .output()
            .unwrap()
    }

    /// `init --id <id>`, which must succeed; its stdout.
    fn init_ok(&self, id: &str) -> String {
        let out = self.init(&["--id", id]);
        assert!(
            out.status.success(),
            "init failed ({:?}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `validate` then `run --once` on the written config, which must both succeed.
    fn validate_and_run(&self) {
        for args in [&["validate"][..], &["run", "--once"]] {
            let out = Command::new(binary("isolake-pipeline"))
                .args(args)
                .arg("--config")
                .arg(self.config())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?} failed ({:?}):\n{}{}\nconfig:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.text()
            );
        }
    }

    fn table(&self, name: &str) -> DataFrame {
        read_table(&self.dir.path().join("lake").join(name))
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.config()).unwrap()
    }

    fn toml(&self) -> toml::Table {
        self.text().parse().unwrap()
    }

    /// `schema` of the written config.
    fn schema(&self) -> toml::Table {
        self.toml()["schema"].as_table().unwrap().clone()
    }

    /// The declared fields in file order, with their types; the parsed file must agree.
    fn declared(&self) -> Vec<(String, String)> {
        let text = self.text();
        let section = text.split("[schema.fields]\n").nth(1).unwrap();
        let in_order: Vec<(String, String)> = section
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(|l| {
                let (name, rest) = l.split_once(" = ").unwrap();
                let ty = rest.split('"').nth(1).unwrap();
                (name.to_string(), ty.to_string())
            })
            .collect();
        let parsed: BTreeMap<String, String> = self.schema()["fields"]
            .as_table()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        assert_eq!(parsed, in_order.iter().cloned().collect());
        in_order
    }

    /// `(name, expr, action)` of every expectation.
    fn expectations(&self) -> Vec<(String, String, String)> {
        let config = self.toml();
        let text = |t: &toml::Value, key: &str| t[key].as_str().unwrap().to_string();
        config["expectations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (text(e, "name"), text(e, "expr"), text(e, "action")))
            .collect()
    }

    /// The line of the config that declares `field`.
    fn field_line(&self, field: &str) -> String {
        let prefix = format!("{field} = ");
        let text = self.text();
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap()
            .to_string()
    }
}

fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// Every non-blank line landed in `dir`, parsed as a JSON object (`None`: not one).
fn landed_objects(dir: &Path) -> Vec<Option<Map<String, Value>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for line in bytes.split(|b| *b == b'\n') {
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.push(serde_json::from_slice::<Map<String, Value>>(line).ok());
            }
        }
    }
    out
}

#[test]
fn the_generators_data_gets_the_canonical_schema_and_runs() {
    let p = Project::new();
    generate(&p.landing(), 2000, 4, 7, 0.01);
    let objects = landed_objects(&p.landing());
    let malformed = objects.iter().filter(|o| o.is_none()).count();
    let stdout = p.init_ok("fraud");
    assert!(stdout.contains("sampled 4 of 4 file(s)"), "{stdout}");
    let counts = format!(
        "2000 line(s), {} JSON object(s), {malformed} malformed line(s) skipped",
        2000 - malformed
    );
    assert!(malformed > 0 && stdout.contains(&counts), "{stdout}");

    let canonical: Vec<(String, String)> = CANONICAL_FIELDS
        .iter()
        .map(|(n, t)| {
            (
                n.to_string(),
                serde_json::to_value(t).unwrap().as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(p.declared(), canonical);
    let schema = p.schema();
    assert_eq!(schema["event_time"].as_str(), Some("event_time"));
    assert_eq!(schema["key"].as_str(), Some("transaction_id"));
    assert!(schema.get("event_time_format").is_none() && schema.get("event_time_from").is_none());
    let expected: Vec<(String, String, String)> = CANONICAL_FIELDS
        .iter()
        .map(|(n, _)| {
            let vital = *n == "transaction_id" || *n == "event_time";
            let action = if vital { "quarantine" } else { "warn" };
            (
                format!("has_{n}"),
                format!("{n} IS NOT NULL"),
                action.into(),
            )
        })
        .collect();
    assert_eq!(p.expectations(), expected);
    let features = format!("--features {} ", NUMERIC_FEATURES.join(","));
    assert!(p.text().contains(&features), "{}", p.text());
    // The generator's wrong types are a few strays: the type of the rest wins, noted.
    assert!(p.field_line("amount").contains("bad data, rescued"));

    p.validate_and_run();
    let (bronze, silver, quarantine) =
        (p.table("bronze"), p.table("silver"), p.table("quarantine"));
    assert_eq!(bronze.height(), count_lines(&p.landing()));
    assert_eq!(bronze.height(), 2000);
    assert_eq!(silver.height() + quarantine.height(), bronze.height());
    // What must not reach silver, judged from the landed lines alone: no JSON object, an
    // amount or quantity landed as text (rescued: valid_types), no event time (quarantine).
    let text = |o: &Map<String, Value>, k: &str| o.get(k).is_some_and(Value::is_string);
    let no_time = |o: &Map<String, Value>| o.get("event_time").is_none_or(Value::is_null);
    let parsed = objects.iter().flatten();
    let wrong_types = parsed
        .clone()
        .filter(|o| text(o, "amount") || text(o, "quantity"));
    let no_times = parsed.clone().filter(|o| no_time(o));
    assert!(
        wrong_types.count() > 0 && no_times.count() > 0,
        "the seed lands both"
    );
    let mut good: Vec<String> = parsed
        .filter(|o| !text(o, "amount") && !text(o, "quantity") && !no_time(o))
        .map(|o| o["transaction_id"].as_str().unwrap().to_string())
        .collect();
    good.sort();
    assert_eq!(quarantine.height(), 2000 - good.len());
    assert_eq!(sorted_strings(&silver, "transaction_id"), good);
}

#[test]
fn flinks_sales_fixture_gets_a_formatted_event_time_and_numeric_text() {
    let p = Project::new();
    std::fs::copy(
        fixtures().join("sales/sales.json"),
        p.landing().join("sales.json"),
    )
    .unwrap();
    let stdout = p.init_ok("sales");
    let fields = [
        ("invoice_id", "string"),
        ("user_id", "string"),
        ("product_id", "string"),
        ("quantity", "string"),
        ("unit_cost", "string"),
        ("purchase_time", "timestamp"),
    ];
    assert_eq!(p.declared(), pairs(&fields));
    let schema = p.schema();
    assert_eq!(schema["event_time"].as_str(), Some("purchase_time"));
    assert_eq!(
        schema["event_time_format"].as_str(),
        Some("%Y-%m-%d %H:%M:%S%.3f")
    );
    assert_eq!(schema["key"].as_str(), Some("invoice_id"));
    // Numeric text stays text; the casts are a commented suggestion.
    assert!(
        p.text()
            .contains("\n# casts = { quantity = \"integer\", unit_cost = \"double\" }\n")
    );
    assert!(p.toml().get("silver").is_none());
    assert!(
        stdout.contains("quantity → integer, unit_cost → double"),
        "{stdout}"
    );
    assert!(stdout.contains("features:   none"), "{stdout}");

    p.validate_and_run();
    let silver = p.table("silver");
    assert_eq!(silver.height(), 21);
    assert_eq!(non_null(&silver, "purchase_time"), 21);
    assert_eq!(p.table("quarantine").height(), 0);
}

#[test]
fn flinks_txns_fixture_computes_the_event_time_from_epoch_milliseconds() {
    let p = Project::new();
    std::fs::copy(
        fixtures().join("txns/txns.json"),
        p.landing().join("txns.json"),
    )
    .unwrap();
    let stdout = p.init_ok("txns");
    let fields = [
        ("account_id", "string"),
        ("timestamp", "integer"),
        ("amount", "double"),
    ];
    assert_eq!(p.declared(), pairs(&fields));
    let schema = p.schema();
    assert_eq!(schema["event_time"].as_str(), Some("event_time"));
    assert_eq!(schema["event_time_from"].as_str(), Some("timestamp"));
    assert_eq!(schema["event_time_format"].as_str(), Some("epoch_ms"));
    // account_id repeats (and so does every other field): no dedup key.
    assert!(schema.get("key").is_none(), "{}", p.text());
    assert!(stdout.contains("key:        none"), "{stdout}");
    assert!(p.text().contains("--features amount "), "{}", p.text());
    let vital: Vec<(String, String)> = p
        .expectations()
        .into_iter()
        .map(|(name, _, action)| (name, action))
        .collect();
    let expected = [
        ("has_account_id", "warn"),
        ("has_timestamp", "quarantine"),
        ("has_amount", "warn"),
    ];
    assert_eq!(vital, pairs(&expected));

    p.validate_and_run();
    let silver = p.table("silver");
    assert_eq!(silver.height(), 27);
    assert_eq!(non_null(&silver, "event_time"), 27);
    let mut times: Vec<String> = strings(&silver, "event_time")
        .into_iter()
        .flatten()
        .collect();
    times.sort();
    assert!(times[0].starts_with("2025-07-10 14:00:00"), "{times:?}");
}

/// Nested values, a string-or-number field, a boolean, a SQL keyword for a name, integers
/// with doubles, a line that is no JSON, a row without event time.
const HAND_MADE: &str = r#"{"id":"r1","ts":"2025-01-01T00:00:00Z","meta":{"a":1},"tags":["x","y"],"code":"A1","flag":true,"from":"web","score":1}
{"id":"r2","ts":"2025-01-01T00:00:01Z","meta":{"a":2},"tags":[],"code":7,"flag":false,"from":"web","score":2.5}
{"id":"r3","ts":"2025-01-01T00:00:02Z","meta":{},"tags":["z"],"code":"B2","flag":true,"from":"web","score":3}
{"id":"r4","ts":"2025-01-01T00:00:03Z", broken
{"id":"r5","ts":"2025-01-01T00:00:04Z","meta":null,"tags":["w"],"code":12,"flag":false,"from":"web","score":4.25}
{"id":"r6","meta":{"a":3},"tags":["v"],"code":"C3","flag":true,"from":"web","score":5}
{"id":"r7","ts":"2025-01-01T00:00:06Z","meta":{"a":4},"tags":["u"],"code":"D4","from":"web","score":6}
"#;

#[test]
fn mixed_and_nested_values_are_typed_the_way_bronze_keeps_them() {
    let p = Project::new();
    std::fs::write(p.landing().join("events.ndjson"), HAND_MADE).unwrap();
    let stdout = p.init_ok("events");
    let fields = [
        ("id", "string"),
        ("ts", "timestamp"),
        ("meta", "string"),
        ("tags", "string"),
        ("code", "string"),
        ("flag", "boolean"),
        ("from", "string"),
        ("score", "double"),
    ];
    assert_eq!(p.declared(), pairs(&fields));
    assert!(
        stdout.contains("7 line(s), 6 JSON object(s), 1 malformed line(s) skipped"),
        "{stdout}"
    );
    let mixed = "mixed: string, integer → string";
    assert!(stdout.contains(mixed), "{stdout}");
    assert!(p.field_line("code").contains(mixed));
    assert!(p.field_line("meta").contains("JSON text"));
    assert!(p.field_line("tags").contains("JSON text"));
    let schema = p.schema();
    assert_eq!(schema["event_time"].as_str(), Some("ts"));
    assert!(schema.get("event_time_format").is_none());
    assert_eq!(schema["key"].as_str(), Some("id"));
    assert!(p.text().contains("--features score "), "{}", p.text());
    let actions: Vec<String> = p.expectations().into_iter().map(|e| e.2).collect();
    let vital = ["quarantine"; 2];
    assert_eq!(actions, [&vital[..], &["warn"; 6]].concat());
    // A keyword is quoted, so that the check reads the column.
    assert_eq!(p.expectations()[6].1, r#""from" IS NOT NULL"#);

    p.validate_and_run();
    assert_eq!(p.table("bronze").height(), 7);
    // The broken line (corrupt) and r6 (no event time).
    assert_eq!(p.table("quarantine").height(), 2);
    let silver = p.table("silver");
    assert_eq!(
        sorted_strings(&silver, "id"),
        ["r1", "r2", "r3", "r5", "r7"]
    );
    let by_id = |column: &str| -> BTreeMap<String, Option<String>> {
        let ids = strings(&silver, "id").into_iter().map(Option::unwrap);
        ids.zip(strings(&silver, column)).collect()
    };
    // Objects and arrays are kept as their JSON text, numbers in a text field as theirs.
    assert_eq!(by_id("meta")["r1"].as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(by_id("meta")["r5"], None);
    assert_eq!(by_id("tags")["r2"].as_deref(), Some("[]"));
    assert_eq!(by_id("code")["r2"].as_deref(), Some("7"));
    assert_eq!(by_id("flag")["r7"], None);
    assert_eq!(by_id("score")["r5"].as_deref(), Some("4.25"));
}

#[test]
fn init_refuses_an_existing_config_and_a_landing_without_data() {
    let p = Project::new();
    std::fs::write(p.landing().join("a.json"), HAND_MADE).unwrap();
    std::fs::write(p.config(), "# mine\n").unwrap();
    let out = p.init(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("exists: pass --force"), "{stderr}");
    assert_eq!(p.text(), "# mine\n");
    let out = p.init(&["--force"]);
    assert!(out.status.success());
    assert!(p.text().contains("[schema.fields]"));

    let empty = Project::new();
    std::fs::write(empty.landing().join("_SUCCESS"), "").unwrap();
    std::fs::write(empty.landing().join("notes.txt"), "{}\n").unwrap();
    let out = empty.init(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no landed file in"), "{stderr}");
    assert!(stderr.contains("*.json"), "{stderr}");
    assert!(!empty.config().exists());

    std::fs::write(empty.landing().join("junk.json"), "not json\n[1,2]\n").unwrap();
    let out = empty.init(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("none of the 2 line(s)"), "{stderr}");

    std::fs::remove_dir_all(empty.landing()).unwrap();
    let out = empty.init(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("landing directory"), "{stderr}");
}
