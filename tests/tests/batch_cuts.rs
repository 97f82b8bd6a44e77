//! Results do not depend on how landed files are grouped into batches (issue 17): files that
//! land out of name order give the same alerts, and no late rows, whether one batch reads them
//! all or each gets its own.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use isolake_tests::lake::{Lake, event_sum, sorted_strings};

const CONFIG: &str = r#"
[schema]
fields = { id = "string", account = "string", ts = "timestamp", amount = "double" }
event_time = "ts"
key = "id"

[[detectors]]
name = "stl"
kind = "small_then_large"
key = "account"
amount = "amount"
"#;

/// Three files, each an hour of one account's small-then-large pair, landed in this order
/// (which is not their name order): `c` first, then `a`, then `b`.
const FILES: [(&str, &str, u32); 3] = [
    ("c.json", "k1", 0),
    ("a.json", "k2", 1),
    ("b.json", "k3", 2),
];

fn land(lake: &Lake, index: usize) {
    let (name, account, hour) = FILES[index];
    let lines: Vec<String> = [(0, 0.5), (5, 600.0)]
        .iter()
        .map(|(minute, amount)| {
            format!(
                r#"{{"id": "{account}-{minute}", "account": "{account}", "ts": "2025-01-01T{hour:02}:{minute:02}:00Z", "amount": {amount}}}"#
            )
        })
        .collect();
    let path = lake.landing().join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    // Landing times an hour apart, in landing order (the listing orders files by them).
    let landed = SystemTime::now() - Duration::from_secs(3600 * (3 - index as u64));
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(landed)
        .unwrap();
}

fn alerts_and_late(lake: &Lake) -> (Vec<String>, i64) {
    let alerts = sorted_strings(&lake.read("gold/alerts"), "key");
    (alerts, event_sum(&lake.read("event_log"), "gold", "late"))
}

#[test]
fn files_landed_out_of_name_order_give_the_same_alerts_in_one_batch_or_many() {
    let one = tempfile::tempdir().unwrap();
    let one = Lake::new(one.path(), "stability_ms = 1", CONFIG);
    (0..3).for_each(|i| land(&one, i));
    one.run_with(&["run", "--once", "--drain"]);

    let many = tempfile::tempdir().unwrap();
    let many = Lake::new(many.path(), "stability_ms = 1", CONFIG);
    for i in 0..3 {
        land(&many, i);
        many.run_once();
    }
    many.run_with(&["run", "--once", "--drain"]);

    let expected = (vec!["k1".to_string(), "k2".into(), "k3".into()], 0);
    assert_eq!(alerts_and_late(&many), expected, "one batch per file");
    assert_eq!(alerts_and_late(&one), expected, "one batch of all three");
}
