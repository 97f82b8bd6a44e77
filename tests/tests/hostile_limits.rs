//! Input that used to exhaust memory, stop the listing or collide (issue 16): over-long lines,
//! over-large files, unbounded schema evolution, unreadable entries, non-UTF-8 file names and
//! keys that cannot be keys. Each test asserts the exact rows and events.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use isolake_tests::lake::{Lake, metric, sorted_strings, strings};
use isolake_tests::{binary, eventually_with, free_port};

const FIELDS: &str = r#"
[schema]
fields = { id = "string", ts = "timestamp", amount = "double" }
event_time = "ts"
key = "id"
"#;

fn line(id: &str, amount: f64) -> String {
    format!(r#"{{"id": "{id}", "ts": "2025-01-01T00:00:00Z", "amount": {amount}}}"#)
}

/// The event log's (flow, status, error) rows, sorted.
fn events(lake: &Lake) -> Vec<(String, String, String)> {
    let log = lake.read("event_log");
    let cell = |c: &str, i: usize| strings(&log, c)[i].clone().unwrap_or_default();
    let mut out: Vec<_> = (0..log.height())
        .map(|i| (cell("flow", i), cell("status", i), cell("error", i)))
        .collect();
    out.sort();
    out
}

fn with_status(lake: &Lake, status: &str) -> Vec<String> {
    events(lake)
        .into_iter()
        .filter(|(_, s, _)| s == status)
        .map(|(_, _, e)| e)
        .collect()
}

#[test]
fn a_line_over_max_line_bytes_is_a_corrupt_row_keeping_its_first_kib() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(
        tmp.path(),
        "stability_ms = 1\nmax_line_bytes = 2000",
        FIELDS,
    );
    let long = format!(r#"{{"id": "big", "pad": "{}"}}"#, "x".repeat(5000));
    let text = [line("a", 1.0), long.clone(), line("b", 2.0)].join("\n");
    std::fs::write(lake.landing().join("t.json"), text).unwrap();
    lake.run_once();
    let bronze = lake.read("bronze");
    assert_eq!(bronze.height(), 3);
    let corrupt = strings(&bronze, "_corrupt_record");
    assert_eq!(corrupt[0], None);
    assert_eq!(corrupt[1].as_deref(), Some(&long[..1024]));
    assert_eq!(corrupt[2], None);
    assert_eq!(sorted_strings(&lake.read("silver"), "id"), ["a", "b"]);
    let quarantine = lake.read("quarantine");
    assert_eq!(strings(&quarantine, "_source_line"), [Some("2".into())]);
    let reasons = quarantine.column("_failed_expectations").unwrap().get(0);
    assert_eq!(reasons.unwrap().to_string(), "[\"line_too_long\"]");
}

#[test]
fn a_file_over_max_file_bytes_is_refused_once_and_never_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1\nmax_file_bytes = 400", FIELDS);
    std::fs::write(lake.landing().join("ok.json"), line("a", 1.0)).unwrap();
    let big: Vec<String> = (0..10).map(|i| line(&format!("big{i}"), 1.0)).collect();
    std::fs::write(lake.landing().join("big.json"), big.join("\n")).unwrap();
    // Small on disk, over the limit once decompressed: refused before it is held whole.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(" ".repeat(100_000).as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 400);
    std::fs::write(lake.landing().join("bomb.json.gz"), gz).unwrap();
    lake.run_once();
    lake.run_once();
    assert_eq!(sorted_strings(&lake.read("bronze"), "id"), ["a"]);
    let refused = with_status(&lake, "refused");
    assert_eq!(refused.len(), 2, "{refused:?}");
    let size = std::fs::metadata(lake.landing().join("big.json"))
        .unwrap()
        .len();
    let limit = "more than source.max_file_bytes = 400: refused and never read again";
    assert_eq!(
        refused[0],
        format!(
            "big.json: {size} bytes, {limit} (raise the limit and land it under a new name to ingest it)"
        )
    );
    assert!(
        refused[1].starts_with(&format!(
            "bomb.json.gz: over 400 bytes decompressed, {limit}"
        )),
        "{refused:?}"
    );
}

#[test]
fn max_new_columns_caps_evolution_the_same_whatever_the_batch_cuts() {
    let files = [
        r#"{"id": "a", "ts": "2025-01-01T00:00:00Z", "c1": 1, "c2": "x"}"#,
        r#"{"id": "b", "ts": "2025-01-01T00:00:00Z", "c3": true, "c1": 2}"#,
        r#"{"id": "c", "ts": "2025-01-01T00:00:00Z", "c4": 4.5, "c2": "y"}"#,
    ];
    let mut bronzes = Vec::new();
    for max_files in [1, 3] {
        let tmp = tempfile::tempdir().unwrap();
        let source = format!("stability_ms = 1\nmax_files_per_batch = {max_files}");
        let config = "[schema]\nfields = { id = \"string\", ts = \"timestamp\" }\n\
                      event_time = \"ts\"\nmax_new_columns = 2\n";
        let lake = Lake::new(tmp.path(), &source, config);
        for (i, text) in files.iter().enumerate() {
            std::fs::write(lake.landing().join(format!("f{i}.json")), text).unwrap();
        }
        lake.run_once();
        let bronze = lake
            .read("bronze")
            .select(["id", "c1", "c2", "_rescued_data"])
            .unwrap()
            .sort(["id"], Default::default())
            .unwrap();
        let names: Vec<String> = lake
            .read("bronze")
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(!names.contains(&"c3".to_string()) && !names.contains(&"c4".to_string()));
        bronzes.push(bronze);
    }
    let bronze = &bronzes[0];
    assert_eq!(
        strings(bronze, "c1"),
        [Some("1".into()), Some("2".into()), None]
    );
    assert_eq!(
        strings(bronze, "c2"),
        [Some("x".into()), None, Some("y".into())]
    );
    assert_eq!(
        strings(bronze, "_rescued_data"),
        [
            None,
            Some(r#"{"c3":"true"}"#.into()),
            Some(r#"{"c4":"4.5"}"#.into())
        ]
    );
    assert!(bronzes[0].equals_missing(&bronzes[1]), "{bronzes:?}");
}

/// `isolake-pipeline` as a user without root's power to read anything (so that a mode of 000
/// means unreadable even when the tests run as root), or `None` with the reason.
fn unprivileged(lake: &Lake, args: &[&str]) -> Option<Command> {
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let mut command = if root {
        let setpriv = Path::new("/usr/bin/setpriv");
        if !setpriv.exists() {
            isolake_tests::skip(
                "unreadable_entries_are_reported_once_and_skipped_without_commits",
                "running as root and /usr/bin/setpriv (util-linux) is missing",
            );
            return None;
        }
        let mut c = Command::new(setpriv);
        c.args(["--bounding-set=-dac_override,-dac_read_search", "--"]);
        c.arg(binary("isolake-pipeline"));
        c
    } else {
        Command::new(binary("isolake-pipeline"))
    };
    command
        .args(args)
        .arg("--config")
        .arg(lake.dir.join("isolake.toml"));
    Some(command)
}

#[test]
fn unreadable_entries_are_reported_once_and_skipped_without_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", FIELDS);
    let config = lake.dir.join("isolake.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("trigger_interval = \"50ms\"\n{text}")).unwrap();
    std::fs::write(lake.landing().join("ok.json"), line("a", 1.0)).unwrap();
    let locked = lake.landing().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("inside.json"), line("hidden", 1.0)).unwrap();
    let secret = lake.landing().join("secret.json");
    std::fs::write(&secret, line("secret", 1.0)).unwrap();
    for path in [&locked, &secret] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let addr = format!("127.0.0.1:{}", free_port());
    let Some(mut command) = unprivileged(&lake, &["run", "--continuous", "--metrics-addr", &addr])
    else {
        return;
    };
    let child = isolake_tests::ChildGuard::spawn(&mut command);
    let url = format!("http://{addr}/metrics");
    let client = reqwest::blocking::Client::new();
    eventually_with(Duration::from_secs(60), "the unreadable gauge at 2", || {
        let text = client
            .get(&url)
            .send()
            .ok()
            .and_then(|r| r.text().ok())
            .unwrap_or_default();
        match metric(&text, "isolake_unreadable_entries{pipeline=\"fraud\"}") {
            Some(2.0)
                if metric(&text, "isolake_batches_total{pipeline=\"fraud\"}") == Some(1.0) =>
            {
                Ok(())
            }
            _ => Err(text),
        }
    });
    let versions = || lake.commits("bronze");
    let before = versions();
    // Twenty listings later: still one batch, no new commit, each entry reported once.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(versions(), before);
    child.sigterm().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for path in [&locked, &secret] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    assert_eq!(sorted_strings(&lake.read("bronze"), "id"), ["a"]);
    let unreadable = with_status(&lake, "file_unreadable");
    assert_eq!(unreadable.len(), 2, "{unreadable:?}");
    assert!(unreadable[0].starts_with("locked: "), "{unreadable:?}");
    assert!(unreadable[1].starts_with("secret.json: "), "{unreadable:?}");
}

#[test]
fn file_names_that_are_not_utf8_keep_their_bytes_and_never_collide() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 1", FIELDS);
    for (byte, id) in [(0xffu8, "ff"), (0xfe, "fe")] {
        let name = [b"a".as_slice(), &[byte], b".json"].concat();
        let path = lake.landing().join(std::ffi::OsStr::from_bytes(&name));
        std::fs::write(path, line(id, 1.0)).unwrap();
    }
    lake.run_once();
    let bronze = lake
        .read("bronze")
        .sort(["id"], Default::default())
        .unwrap();
    assert_eq!(
        strings(&bronze, "id"),
        [Some("fe".into()), Some("ff".into())]
    );
    assert_eq!(
        strings(&bronze, "_source_file"),
        [Some("a\\xFE.json".into()), Some("a\\xFF.json".into())]
    );
    // Both recorded as seen under their own names: a second run reads nothing again.
    lake.run_once();
    assert_eq!(lake.read("bronze").height(), 2);
    assert!(with_status(&lake, "changed_after_ingestion").is_empty());
}

#[test]
fn validate_refuses_a_double_as_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let config = r#"
[schema]
fields = { id = "double", account = "double", ts = "timestamp", amount = "double" }
event_time = "ts"
key = "id"

[[detectors]]
name = "big"
kind = "threshold"
expr = "amount > 800"
key = "account"
"#;
    let lake = Lake::new(tmp.path(), "", config);
    let out = lake.command(&["validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("schema.key"), "{stderr}");
    assert!(stderr.contains("detectors[0].key"), "{stderr}");
    assert!(
        stderr.contains("\"account\" is a double, which cannot be a key"),
        "{stderr}"
    );
}

#[test]
fn keys_no_column_can_have_are_rescued_and_numbers_keep_their_digits() {
    let tmp = tempfile::tempdir().unwrap();
    let config = "[schema]\nfields = { id = \"string\", ts = \"timestamp\" }\nevent_time = \"ts\"\nkey = \"id\"\n";
    let lake = Lake::new(
        tmp.path(),
        "stability_ms = 1\nmax_files_per_batch = 1",
        config,
    );
    let lines = [
        r#"{"id": "a", "ts": "2025-01-01T00:00:00Z", "ID": 1, "_Source_File": "x"}"#,
        r#"{"id": "b", "ts": "2025-01-01T00:00:00Z", "x\u0000y": 2, "note": "n"}"#,
        r#"{"id": 12345678901234567890123, "ts": "2025-01-01T00:00:00Z"}"#,
        r#"{"id": 12345678901234567890124, "ts": "2025-01-01T00:00:00Z", "amount_text": 1.10}"#,
    ];
    std::fs::write(lake.landing().join("1.json"), lines.join("\n")).unwrap();
    // A later file adds a key that differs from `note` only in case.
    std::fs::write(
        lake.landing().join("2.json"),
        r#"{"id": "c", "ts": "2025-01-01T00:00:00Z", "Note": "m"}"#,
    )
    .unwrap();
    lake.run_once();
    let bronze = lake
        .read("bronze")
        .sort(["_source_file", "_source_line"], Default::default())
        .unwrap();
    assert_eq!(
        strings(&bronze, "id"),
        [
            Some("a".into()),
            Some("b".into()),
            Some("12345678901234567890123".into()),
            Some("12345678901234567890124".into()),
            Some("c".into())
        ]
    );
    assert_eq!(
        strings(&bronze, "_rescued_data"),
        [
            Some(r#"{"ID":"1","_Source_File":"x"}"#.into()),
            Some(r#"{"x\u0000y":"2"}"#.into()),
            None,
            None,
            Some(r#"{"Note":"m"}"#.into()),
        ]
    );
    assert_eq!(strings(&bronze, "note")[1].as_deref(), Some("n"));
    assert_eq!(strings(&bronze, "amount_text")[3].as_deref(), Some("1.10"));
    assert_eq!(lake.read("silver").height(), 5);
}
