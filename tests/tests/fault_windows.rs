//! Interruptions in the windows the ordinary kill tests do not reach (issue 17): a full
//! refresh killed at random moments is finished by the next plain start, and its result equals
//! an uninterrupted refresh's.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use isolake_tests::lake::{Lake, generate, sorted_strings};

const STL: &str = isolake_tests::lake::SMALL_THEN_LARGE;

/// A stricter expectation, added before the refreshes: they must apply it to every batch.
fn tighten(lake: &Lake) {
    let config = lake.dir.join("isolake.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[[expectations]]\nname = \"smaller\"\nexpr = \"amount <= 700\"\naction = \"drop\"\n",
    );
    std::fs::write(&config, text).unwrap();
}

/// What a refresh rebuilds: silver's, quarantine's and scored ids, and the alerts.
fn derived(lake: &Lake) -> [Vec<String>; 4] {
    [
        sorted_strings(&lake.read("silver"), "transaction_id"),
        sorted_strings(&lake.read("quarantine"), "transaction_id"),
        sorted_strings(&lake.read("gold/scored_transactions"), "transaction_id"),
        sorted_strings(&lake.read("gold/alerts"), "alert_id"),
    ]
}

#[test]
fn a_full_refresh_killed_anywhere_is_finished_by_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = "stability_ms = 1\nmax_files_per_batch = 1";
    let clean = Lake::new(&tmp.path().join("clean"), limits, STL);
    let crashed = Lake::new(&tmp.path().join("crashed"), limits, STL);
    for lake in [&clean, &crashed] {
        generate(&lake.landing(), 4_000, 20, 9, 0.01);
        lake.run_with(&["run", "--once", "--drain"]);
        tighten(lake);
    }
    let before = derived(&crashed);
    clean.run_with(&["run", "--once", "--full-refresh", "--drain"]);
    let expected = derived(&clean);
    assert_ne!(expected, before, "the refresh changes the derived tables");

    // Gold's tables are emptied first, silver last: kills land after each of them.
    let tables = [
        "gold/alerts",
        "gold/scored_transactions",
        "quarantine",
        "silver",
    ];
    let mut killed = BTreeSet::new();
    for round in 0..12 {
        let table = tables[round % tables.len()];
        let args = ["run", "--once", "--full-refresh"];
        if crashed.kill_after_commits(&args, table, 1 + round % 3) {
            killed.insert((table, 1 + round % 3));
        }
        // A plain start, as after any crash: it must finish the refresh.
        crashed.run_once();
        assert_eq!(
            derived(&crashed),
            expected,
            "round {round}, killed after {table}"
        );
    }
    assert!(killed.len() >= 10, "kills landed at {killed:?}");
    crashed.run_with(&["run", "--once", "--drain"]);
    assert_eq!(derived(&crashed), expected);
    assert!(
        !crashed
            .dir
            .join("lake/_state/fraud/full_refresh.json")
            .exists(),
        "the refresh is recorded as finished"
    );
}

/// The gold state a restart needs is found after log cleanup removed the alerts commit that
/// names it (the table reads from its checkpoint, the snapshot from its batch number).
#[test]
fn gold_state_is_found_after_the_alerts_log_is_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = "stability_ms = 1\nmax_files_per_batch = 1";
    let clean = Lake::new(&tmp.path().join("clean"), limits, STL);
    let cleaned = Lake::new(&tmp.path().join("cleaned"), limits, STL);
    let staged = tmp.path().join("staged");
    generate(&staged, 3_000, 6, 21, 0.0);
    let mut files: Vec<_> = std::fs::read_dir(&staged)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let land = |lake: &Lake, part: &[std::path::PathBuf]| {
        for f in part {
            std::fs::copy(f, lake.landing().join(f.file_name().unwrap())).unwrap();
        }
    };
    land(&clean, &files);
    clean.run_with(&["run", "--once", "--drain"]);

    land(&cleaned, &files[..3]);
    cleaned.run_once();
    // A later commit without the batch's progress (a compaction), a checkpoint, and log
    // cleanup: the commits before the checkpoint are gone, the one naming the state with them.
    cleaned.run_with(&["optimize", "alerts", "--zorder-by", "detector"]);
    let alerts = cleaned.dir.join("lake/gold/alerts");
    let location = alerts.to_string_lossy().into_owned();
    let checkpointed = isolake_tests::lake::block_on(async move {
        let mut table = isolake_data::lake::LakeTable::open(&location)
            .await
            .unwrap();
        table.checkpoint().await.unwrap();
        table.version()
    });
    for version in 0..checkpointed {
        let commit = alerts.join(format!("_delta_log/{version:020}.json"));
        std::fs::remove_file(commit).unwrap();
    }
    land(&cleaned, &files[3..]);
    cleaned.run_with(&["run", "--once", "--drain"]);
    assert_eq!(derived(&cleaned), derived(&clean));
}
