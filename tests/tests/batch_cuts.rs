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

/// Generated day of transactions in 12 files, landed in 6 groups whose order is not the name
/// order; each file gets its own landing time, in landing order, and is renamed into place.
struct Landing {
    files: Vec<std::path::PathBuf>,
    groups: Vec<std::ops::Range<usize>>,
    stage: std::path::PathBuf,
}

impl Landing {
    fn new(dir: &std::path::Path) -> Self {
        let source = dir.join("generated");
        isolake_tests::lake::generate(&source, 6_000, 12, 17, 0.0);
        let mut files: Vec<_> = std::fs::read_dir(&source)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        // Landing order: the halves of the day swapped, so name order is not landing order.
        files.rotate_left(6);
        let groups = vec![0..1, 1..4, 4..5, 5..7, 7..10, 10..12];
        let stage = dir.join("stage");
        std::fs::create_dir_all(&stage).unwrap();
        Self {
            files,
            groups,
            stage,
        }
    }

    /// Lands group `g` into `lake` (each file staged, given its landing time, renamed in);
    /// returns the lines landed so far.
    fn land(&self, lake: &Lake, g: usize) -> usize {
        for i in self.groups[g].clone() {
            let file = &self.files[i];
            let name = file.file_name().unwrap();
            let staged = self.stage.join(name);
            std::fs::copy(file, &staged).unwrap();
            let landed = SystemTime::now() - Duration::from_secs(60 * (20 - i as u64));
            std::fs::File::options()
                .write(true)
                .open(&staged)
                .unwrap()
                .set_modified(landed)
                .unwrap();
            std::fs::rename(&staged, lake.landing().join(name)).unwrap();
        }
        isolake_tests::lake::count_lines(&lake.landing())
    }
}

/// Silver's ids, the alerts and the rows counted late.
fn outcome(lake: &Lake) -> (Vec<String>, Vec<String>, i64) {
    (
        sorted_strings(&lake.read("silver"), "transaction_id"),
        sorted_strings(&lake.read("gold/alerts"), "alert_id"),
        event_sum(&lake.read("event_log"), "gold", "late"),
    )
}

const GENERATED: &str = "trigger_interval = \"50ms\"\n";

fn generated_lake(dir: &std::path::Path, max_files: usize) -> Lake {
    let lake = Lake::new(
        dir,
        &format!("stability_ms = 1\nmax_files_per_batch = {max_files}"),
        "[[detectors]]\nname = \"stl\"\nkind = \"small_then_large\"\nwindow = \"60s\"\n",
    );
    let config = lake.dir.join("isolake.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{GENERATED}{text}")).unwrap();
    lake
}

fn bronze_rows(lake: &Lake) -> usize {
    let log = lake.dir.join("lake/bronze/_delta_log");
    if log.is_dir() {
        lake.read("bronze").height()
    } else {
        0
    }
}

#[test]
fn one_run_continuous_restarts_kills_and_triggered_runs_give_one_result() {
    let tmp = tempfile::tempdir().unwrap();
    let landing = Landing::new(tmp.path());
    let groups = landing.groups.len();

    // (i) Everything landed, one triggered run.
    let single = generated_lake(&tmp.path().join("single"), 1000);
    for g in 0..groups {
        landing.land(&single, g);
    }
    single.run_with(&["run", "--once", "--drain"]);
    let expected = outcome(&single);
    assert!(!expected.1.is_empty(), "the day has small-then-large pairs");

    // (iv) A triggered run after each group, batches of one or two files.
    let triggered = generated_lake(&tmp.path().join("triggered"), 2);
    for g in 0..groups {
        landing.land(&triggered, g);
        triggered.run_once();
    }
    triggered.run_with(&["run", "--once", "--drain"]);
    assert_eq!(outcome(&triggered), expected, "triggered runs");

    // (ii) Continuous, stopped with SIGTERM after every second group and started again.
    let stopped = generated_lake(&tmp.path().join("stopped"), 1000);
    let mut child = None;
    for g in 0..groups {
        let run = child.get_or_insert_with(|| stopped.spawn(&["run", "--continuous"]));
        let lines = landing.land(&stopped, g);
        isolake_tests::eventually(Duration::from_secs(60), "bronze to hold the group", || {
            assert!(
                run.try_wait().unwrap().is_none(),
                "the run exited by itself"
            );
            (bronze_rows(&stopped) == lines).then_some(())
        });
        if g % 2 == 1 {
            let run = child.take().unwrap();
            run.sigterm().unwrap();
            assert!(run.wait_with_output().unwrap().status.success());
        }
    }
    drop(child);
    stopped.run_with(&["run", "--once", "--drain"]);
    assert_eq!(
        outcome(&stopped),
        expected,
        "continuous with SIGTERM restarts"
    );

    // (iii) Continuous, SIGKILLed right after its first bronze commit of each group.
    let killed = generated_lake(&tmp.path().join("killed"), 1000);
    for g in 0..groups {
        landing.land(&killed, g);
        killed.kill_after_commits(&["run", "--continuous"], "bronze", 1);
    }
    killed.run_with(&["run", "--once", "--drain"]);
    assert_eq!(outcome(&killed), expected, "continuous with kill -9");
}
