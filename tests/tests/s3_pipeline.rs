//! The pipeline with its lake on a real S3-compatible server (moto on 127.0.0.1): exactly
//! once across SIGKILLs, the lease with a standby that takes over, and fencing of a paused
//! holder. Each kill is placed by watching the lake, not by timing.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use isolake_data::lake::objects::ObjectDir;
use isolake_tests::lake::{Lake, SMALL_THEN_LARGE, count_lines, generate, sorted_strings};
use isolake_tests::s3::MotoServer;
use isolake_tests::{ChildGuard, eventually_with};

/// The storage options of this process are global (`s3_store::configure`), and each test
/// has a server of its own: the tests of this file run one at a time.
static ONE_SERVER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // A test that failed leaves the lock poisoned; the next one may still run.
    ONE_SERVER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// (transaction ids of silver, bronze rows, quarantine rows, alert keys) of a lake.
fn outcome(lake: &Lake) -> (Vec<String>, usize, usize) {
    let silver = lake.read("silver");
    (
        sorted_strings(&silver, "transaction_id"),
        lake.read("bronze").height(),
        lake.read("quarantine").height(),
    )
}

/// Every line once: no (file, line) twice in bronze, no transaction twice in silver.
fn assert_once(lake: &Lake, lines: usize) {
    let bronze = lake.read("bronze");
    assert_eq!(bronze.height(), lines, "every input line once in bronze");
    let files = bronze
        .column("_source_file")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    let numbers = bronze
        .column("_source_line")
        .unwrap()
        .i64()
        .unwrap()
        .clone();
    let places: HashSet<(String, i64)> = (files.iter().zip(numbers.iter()))
        .map(|(f, l)| (f.unwrap().to_string(), l.unwrap()))
        .collect();
    assert_eq!(places.len(), lines, "no (file, line) twice in bronze");
    let ids = sorted_strings(&lake.read("silver"), "transaction_id");
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no transaction twice in silver");
}

/// SIGKILL 12 runs, each right after it committed to bronze, silver or the event log (the
/// first to third commit of it), with the lake and the landing zone on S3; the end state
/// equals a crash-free run's on local disk, and Python's deltalake reads the same silver
/// rows through the server.
#[test]
fn crashes_on_an_s3_lake_lose_and_duplicate_nothing_and_python_reads_the_rows() {
    let _serial = one_at_a_time();
    let moto = MotoServer::start("lake");
    let tmp = tempfile::tempdir().unwrap();
    let limits = "stability_ms = 1\nmax_files_per_batch = 2";
    // The generator's names grow: listing after the last key read is safe.
    let remote = format!("{limits}\nlist_after_last_seen = true");
    let dir = tmp.path().join("crashed");
    let crashed = Lake::on_s3_landing(&dir, &moto, "fraud", Some("landing"), &remote, "");
    let clean = Lake::new(&tmp.path().join("clean"), limits, "");
    let staged = tmp.path().join("staged");
    generate(&staged, 3_000, 48, 11, 0.02);
    generate(&clean.landing(), 3_000, 48, 11, 0.02);
    isolake_tests::s3::upload(&staged, &format!("s3://{}/landing/", moto.bucket));
    let lines = count_lines(&staged);
    clean.run_once();

    let tables = ["bronze", "silver", "event_log"];
    let mut landed: HashSet<&str> = HashSet::new();
    let mut killed = 0;
    for round in 0..12 {
        let table = tables[round % tables.len()];
        if crashed.kill_after_commits(&["run", "--once"], table, 1 + round % 3) {
            killed += 1;
            landed.insert(table);
        }
    }
    assert!(killed >= 9, "only {killed} of 12 runs were killed mid-way");
    assert_eq!(landed.len(), 3, "kills landed after commits of {landed:?}");
    // The last kill left the lease unreleased: this run waits out its 2 s TTL, then takes it.
    crashed.run_once();

    assert_once(&crashed, lines);
    assert_eq!(outcome(&crashed), outcome(&clean));
    let silver = crashed.table_location("silver");
    let env: std::collections::HashMap<_, _> = moto.env().into_iter().collect();
    let read = isolake_tests::run_python(
        r#"
import json, os, sys
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1], storage_options=json.loads(sys.argv[2]))
print(json.dumps(sorted(t.to_pyarrow_table(columns=["transaction_id"]).to_pydict()["transaction_id"])), flush=True)
os._exit(0)  # pyarrow's AWS SDK can abort the interpreter's shutdown
"#,
        &[&silver, &serde_json::to_string(&env).unwrap()],
    );
    let python: Vec<String> = serde_json::from_value(read).unwrap();
    assert_eq!(
        python,
        outcome(&clean).0,
        "Python's deltalake reads isolake's silver"
    );
}

/// The lease object of pipeline `fraud`: (epoch, holder pid, released).
fn lease(lake: &Lake) -> Option<(i64, u32, bool)> {
    let url = url::Url::parse(&format!("{}/_locks/", lake.remote.as_ref()?)).ok()?;
    let got = isolake_tests::lake::block_on(async {
        ObjectDir::open(&url).ok()?.get("fraud.lease").await.ok()?
    })?;
    let record: serde_json::Value = serde_json::from_slice(&got.bytes).ok()?;
    let pid = record["holder"]
        .as_str()?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()?;
    Some((
        record["epoch"].as_i64()?,
        pid,
        record["released"].as_bool()?,
    ))
}

/// Starts `args` in the background with stderr to `<dir>/<log>` (a long run would fill a
/// pipe nobody reads).
fn spawn_logged(lake: &Lake, args: &[&str], log: &str) -> ChildGuard {
    let file = std::fs::File::create(lake.dir.join(log)).unwrap();
    ChildGuard::spawn(
        lake.command(args)
            .stdout(std::process::Stdio::null())
            .stderr(file),
    )
}

/// Waits until the lease is held (not released) by `pid`; returns its epoch.
fn held_by(lake: &Lake, pid: u32, within: Duration) -> i64 {
    eventually_with(within, "the instance to hold the lease", || {
        match lease(lake) {
            Some((epoch, holder, false)) if holder == pid => Ok(epoch),
            other => Err(format!("lease: {other:?}")),
        }
    })
}

/// Moves the generated files from `staged` into the landing zone one at a time (name order),
/// one every `every`, on a thread of its own, until all are in.
fn land_over_time(staged: &Path, landing: &Path, every: Duration) -> std::thread::JoinHandle<()> {
    let mut files: Vec<_> = std::fs::read_dir(staged)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let landing = landing.to_path_buf();
    std::thread::spawn(move || {
        for file in files {
            std::fs::rename(&file, landing.join(file.file_name().unwrap())).unwrap();
            std::thread::sleep(every);
        }
    })
}

/// Kills the active instance 10 times while files keep landing; each time the standby takes
/// over within the lease TTL (2 s plus a poll) and a new standby is started. Nothing is lost
/// or duplicated, and the alerts equal a crash-free run's.
#[test]
fn a_standby_takes_over_from_killed_instances_and_the_result_is_the_crash_free_one() {
    let _serial = one_at_a_time();
    let moto = MotoServer::start("lake");
    let tmp = tempfile::tempdir().unwrap();
    let limits = "stability_ms = 1\nmax_files_per_batch = 2";
    let lake = Lake::on_s3(
        &tmp.path().join("ha"),
        &moto,
        "fraud",
        limits,
        SMALL_THEN_LARGE,
    );
    let clean = Lake::new(&tmp.path().join("clean"), limits, SMALL_THEN_LARGE);
    let staged = tmp.path().join("staged");
    generate(&staged, 6_000, 120, 5, 0.01);
    generate(&clean.landing(), 6_000, 120, 5, 0.01);
    let lines = count_lines(&clean.landing());
    clean.run_with(&["run", "--once", "--drain"]);

    let run = ["run", "--continuous", "--standby"];
    let mut spawned = 0;
    let mut spawn = || {
        spawned += 1;
        spawn_logged(&lake, &run, &format!("instance-{spawned}.log"))
    };
    let mut active = spawn();
    let mut epoch = held_by(&lake, active.id(), Duration::from_secs(30));
    let mut standby = spawn();
    let lander = land_over_time(&staged, &lake.landing(), Duration::from_millis(60));
    let mut takeovers = Vec::new();
    for kill in 0..10 {
        // Let the active instance commit something first, so the kill lands mid-stream.
        let target = lake.commits("bronze") + 1 + kill % 3;
        eventually_with(
            Duration::from_secs(60),
            "the active instance to commit",
            || match lake.commits("bronze") >= target || lander.is_finished() {
                true => Ok(()),
                false => Err(format!("bronze at {}", lake.commits("bronze"))),
            },
        );
        active.kill().unwrap();
        let killed_at = Instant::now();
        assert_eq!(active.wait().unwrap().signal(), Some(9));
        let next = held_by(&lake, standby.id(), Duration::from_secs(30));
        takeovers.push(killed_at.elapsed());
        assert!(next > epoch, "the standby's epoch {next} is above {epoch}");
        epoch = next;
        active = standby;
        standby = spawn();
    }
    lander.join().unwrap();
    println!("takeover after kill -9 (lease TTL 2 s): {takeovers:?}");
    let slowest = takeovers.iter().max().unwrap();
    assert!(
        *slowest < Duration::from_secs(10),
        "a takeover took {slowest:?}"
    );
    // Everything has landed: stop both, then drain like the crash-free run did.
    standby.kill().unwrap();
    active.kill().unwrap();
    lake.run_with(&["run", "--once", "--drain"]);

    assert_once(&lake, lines);
    assert_eq!(outcome(&lake), outcome(&clean));
    let alerts = |l: &Lake| sorted_strings(&l.read("gold/alerts"), "alert_id");
    assert!(!alerts(&clean).is_empty(), "the input raises alerts");
    assert_eq!(
        alerts(&lake),
        alerts(&clean),
        "alerts equal the crash-free run's"
    );
}

/// A holder paused (SIGSTOP) past its lease, replaced by a standby, then resumed while the
/// standby is paused: it commits nothing more (every table's log is unchanged) and exits
/// with code 3, saying it may no longer commit.
#[test]
fn a_paused_holder_that_lost_its_lease_commits_nothing_when_resumed() {
    let _serial = one_at_a_time();
    let moto = MotoServer::start("lake");
    let tmp = tempfile::tempdir().unwrap();
    let lake = Lake::on_s3(
        &tmp.path().join("fence"),
        &moto,
        "fraud",
        "stability_ms = 1",
        "",
    );
    let staged = tmp.path().join("staged");
    generate(&staged, 400, 4, 3, 0.0);
    let mut files: Vec<_> = std::fs::read_dir(&staged)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let land = |file: &Path| {
        std::fs::rename(file, lake.landing().join(file.file_name().unwrap())).unwrap();
    };
    let signal = |child: &ChildGuard, signal: &str| {
        assert!(child.signal(signal).unwrap().success(), "kill {signal}");
    };
    let bronze_at_least = |n: usize| {
        eventually_with(Duration::from_secs(60), "bronze to commit", || {
            match lake.commits("bronze") >= n {
                true => Ok(()),
                false => Err(format!("bronze at {}", lake.commits("bronze"))),
            }
        })
    };
    let run = ["run", "--continuous", "--standby"];
    let mut first = spawn_logged(&lake, &run, "first.log");
    held_by(&lake, first.id(), Duration::from_secs(30));
    land(&files[0]);
    bronze_at_least(2);
    signal(&first, "-STOP");
    let mut second = spawn_logged(&lake, &run, "second.log");
    held_by(&lake, second.id(), Duration::from_secs(30));
    land(&files[1]);
    bronze_at_least(3);
    signal(&second, "-STOP");

    let tables = ["bronze", "silver", "quarantine", "event_log"];
    let before: Vec<usize> = tables.iter().map(|t| lake.commits(t)).collect();
    signal(&first, "-CONT");
    land(&files[2]);
    let status = loop {
        if let Some(status) = first.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let after: Vec<usize> = tables.iter().map(|t| lake.commits(t)).collect();
    assert_eq!(
        status.code(),
        Some(3),
        "the fenced holder exits with 3: {status:?}"
    );
    assert_eq!(
        after, before,
        "the fenced holder committed nothing to {tables:?}"
    );
    let stderr = std::fs::read_to_string(lake.dir.join("first.log")).unwrap();
    assert!(stderr.contains("may no longer commit"), "{stderr}");

    // The standby, resumed, goes on: the third file and a fourth, each once.
    signal(&second, "-CONT");
    land(&files[3]);
    let lines = count_lines(&lake.landing());
    eventually_with(
        Duration::from_secs(60),
        "the standby to read every file",
        || match lake.read("bronze").height() {
            rows if rows == lines => Ok(()),
            rows => Err(format!("bronze has {rows} of {lines} rows")),
        },
    );
    second.kill().unwrap();
    lake.run_once();
    assert_once(&lake, count_lines(&lake.landing()));
}

/// `clean_source = "move"` on an S3 landing zone: the objects a committed batch read go to
/// `_archived/`, others stay, and nothing is read twice.
#[test]
fn read_objects_are_archived_on_s3_and_others_stay() {
    let _serial = one_at_a_time();
    let moto = MotoServer::start("lake");
    let tmp = tempfile::tempdir().unwrap();
    let source = "clean_source = \"move\"\nclean_source_retention = \"0s\"";
    let dir = tmp.path().join("clean");
    let lake = Lake::on_s3_landing(&dir, &moto, "fraud", Some("landing"), source, "");
    let staged = tmp.path().join("staged");
    generate(&staged, 200, 2, 9, 0.0);
    std::fs::write(staged.join("notes.txt"), "not a pattern's file\n").unwrap();
    let landing = format!("s3://{}/landing/", moto.bucket);
    isolake_tests::s3::upload(&staged, &landing);
    lake.run_once();
    lake.run_once();
    let listed = isolake_tests::lake::block_on(async {
        let dir = ObjectDir::open(&url::Url::parse(&landing).unwrap()).unwrap();
        dir.list_after("", None).await.unwrap()
    });
    let names: Vec<String> = listed.into_iter().map(|o| o.name).collect();
    let mut expected: Vec<String> = std::fs::read_dir(&staged)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .map(|n| match n.ends_with(".json") {
            true => format!("_archived/{n}"),
            false => n,
        })
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(lake.read("bronze").height(), 200, "each line once");
    // `query` reads the S3 tables too (an aggregate over fetched files).
    let sql = "SELECT count(*) AS n FROM bronze";
    let out = lake.run_with(&["query", "--format", "csv", sql]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n200\n");
}

/// Two writers on one S3 lake: `optimize` compacts the tables again and again while a
/// continuous pipeline appends to them. Both commit with put-if-absent and rebase onto each
/// other; nothing is lost or duplicated, and the result is the crash-free one.
#[test]
fn optimize_racing_a_running_pipeline_on_s3_loses_nothing() {
    let _serial = one_at_a_time();
    let moto = MotoServer::start("lake");
    let tmp = tempfile::tempdir().unwrap();
    let limits = "stability_ms = 1\nmax_files_per_batch = 1";
    let lake = Lake::on_s3(&tmp.path().join("race"), &moto, "fraud", limits, "");
    let clean = Lake::new(&tmp.path().join("clean"), limits, "");
    let staged = tmp.path().join("staged");
    generate(&staged, 2_000, 40, 13, 0.02);
    generate(&clean.landing(), 2_000, 40, 13, 0.02);
    let lines = count_lines(&clean.landing());
    clean.run_once();

    let file = std::fs::File::create(lake.dir.join("pipeline.log")).unwrap();
    let mut pipeline = ChildGuard::spawn(
        lake.command(&["run", "--continuous"])
            .env("RUST_LOG", "info,buoyant_kernel=off,delta_kernel=off")
            .stdout(std::process::Stdio::null())
            .stderr(file),
    );
    held_by(&lake, pipeline.id(), Duration::from_secs(30));
    let lander = land_over_time(&staged, &lake.landing(), Duration::from_millis(50));
    let mut compactions = 0;
    while !lander.is_finished() || compactions < 3 {
        let out = lake.command(&["optimize"]).output().unwrap();
        // A compaction that met the pipeline's commit changes nothing and says so; it never
        // breaks a table.
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || said.contains("changed"),
            "optimize: {said}"
        );
        compactions += 1;
    }
    lander.join().unwrap();
    eventually_with(
        Duration::from_secs(60),
        "the pipeline to read every file",
        || {
            let log = std::fs::read_to_string(lake.dir.join("pipeline.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(12).collect::<Vec<_>>().join("\n");
            match lake.read("bronze").height() {
                rows if rows == lines => Ok(()),
                rows => Err(format!(
                    "bronze has {rows} of {lines} rows; the pipeline's log:\n{tail}"
                )),
            }
        },
    );
    pipeline.sigterm().unwrap();
    assert!(
        pipeline.wait().unwrap().success(),
        "the pipeline stops cleanly"
    );
    println!("{compactions} optimize runs raced the pipeline");
    assert_once(&lake, lines);
    assert_eq!(outcome(&lake), outcome(&clean));
}
