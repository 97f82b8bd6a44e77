//! The two pipelines of a case: the mixed one, fed every line the way the case lands it, and
//! the reference, fed only the valid records, clean, in one file and one run.

use std::path::Path;

use isolake_tests::lake::Lake;

use crate::case::Case;
use crate::line::Fate;

/// The declared schema and expectations, the same for both pipelines.
const SCHEMA: &str = r#"
[schema]
fields = { id = "string", account = "string", ts = "timestamp", amount = "double", qty = "integer" }
event_time = "ts"
key = "id"

[[expectations]]
name = "has_id"
expr = "id IS NOT NULL"
action = "quarantine"

[[expectations]]
name = "ts_sane"
expr = "EXTRACT(YEAR FROM ts) >= 2000"
action = "quarantine"

[[expectations]]
name = "amount_sane"
expr = "amount >= 0 AND amount <= 1000000"
action = "quarantine"
"#;

/// Silver's declared columns, compared between the two pipelines.
pub const DECLARED: [&str; 5] = ["id", "account", "ts", "amount", "qty"];

/// The mixed pipeline: each group lands, then one run reads it in the group's batch cuts.
pub fn run_mixed(case: &Case, summary: &str, root: &Path) -> Lake {
    let mixed = root.join("mixed");
    for (g, group) in case.groups.iter().enumerate() {
        let (max_files, max_bytes) = case.limits[g];
        let lake = Lake::new(&mixed, &config(max_files, max_bytes), SCHEMA);
        for &f in group {
            let file = &case.files[f];
            std::fs::write(lake.landing().join(&file.name), file.bytes(&case.lines)).unwrap();
        }
        run(
            &lake,
            case.seed,
            &format!("landing group {g} {group:?} of {summary}"),
        );
    }
    Lake {
        dir: mixed,
        remote: None,
    }
}

/// The reference: only the valid records, clean, in one file and one run.
pub fn run_reference(case: &Case, root: &Path) -> Lake {
    let reference = Lake::new(&root.join("reference"), "stability_ms = 1", SCHEMA);
    let clean: String = case
        .lines
        .iter()
        .filter_map(|l| match &l.fate {
            Fate::Silver(record) => Some(format!("{}\n", record.line())),
            _ => None,
        })
        .collect();
    std::fs::write(reference.landing().join("valid.json"), clean).unwrap();
    run(&reference, case.seed, "the reference");
    reference
}

/// The `[source]` settings of one run: files read at once, and its batch cuts.
fn config(max_files: usize, max_bytes: Option<u64>) -> String {
    let mut source = format!("stability_ms = 1\nmax_files_per_batch = {max_files}");
    if let Some(bytes) = max_bytes {
        source.push_str(&format!("\nmax_bytes_per_batch = {bytes}"));
    }
    source
}

/// `run --once`, which must exit 0 (`what` says which run, for the failure message).
fn run(lake: &Lake, seed: u64, what: &str) {
    let out = lake
        .command(&["run", "--once"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    assert!(
        out.status.success(),
        "seed {seed}: run --once exited {:?} ({what}):\n{}",
        out.status,
        tail.join("\n")
    );
}
