//! Continuous mode: new files without restart, half-written files, clean shutdown.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::time::Duration;

use isolake_tests::eventually;
use isolake_tests::lake::{Lake, generate, non_null, strings};

/// Waits until silver holds `rows` rows.
fn wait_for_silver(lake: &Lake, rows: usize) {
    let what = format!("silver to reach {rows} rows");
    eventually(Duration::from_secs(60), &what, || {
        let silver_exists = lake.dir.join("lake/silver/_delta_log").exists();
        (silver_exists && lake.read("silver").height() >= rows).then_some(())
    });
}

#[test]
fn continuous_mode_picks_up_files_waits_for_complete_ones_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::new(tmp.path(), "stability_ms = 700", "");
    let staging = tmp.path().join("staging");
    generate(&staging, 1_000, 2, 21, 0.0);
    let mut child = lake.spawn(&["run", "--continuous"]);

    // 1. A file renamed into place is picked up without restart.
    let first = std::fs::read_dir(&staging)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::rename(&first, lake.landing().join("first.json")).unwrap();
    wait_for_silver(&lake, 500);

    // 2. A file written slowly in pieces (gaps shorter than stability_ms) is read once, whole.
    let second = std::fs::read_dir(&staging)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&second).unwrap();
    let mut file = std::fs::File::create(lake.landing().join("slow.json")).unwrap();
    for piece in bytes.chunks(bytes.len() / 5 + 1) {
        file.write_all(piece).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(file);
    wait_for_silver(&lake, 1_000);
    let bronze = lake.read("bronze");
    assert_eq!(bronze.height(), 1_000);
    assert_eq!(non_null(&bronze, "_corrupt_record"), 0);
    let events = lake.read("event_log");
    assert!(
        strings(&events, "status")
            .iter()
            .all(|s| s.as_deref() != Some("changed_after_ingestion")),
        "slow.json was read before it was complete"
    );

    // 3. SIGTERM: finish, commit, exit 0.
    let status = child.sigterm().unwrap();
    assert!(status.success());
    let what = "the continuous run to exit on SIGTERM (not ignore it)";
    let status = eventually(Duration::from_secs(20), what, || child.try_wait().unwrap());
    assert!(status.success(), "continuous run exited with {status:?}");
}
