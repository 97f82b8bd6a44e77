//! Gold's model: scores from the registry's alias, hot swap at a batch boundary during a
//! continuous run, scoring on with the cached version while the registry is down (a real
//! MLflow server, stopped mid-run), and the two `on_missing_model` modes.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use isolake_tests::lake::{Lake, generate, sorted_strings, strings};
use isolake_tests::mlflow::MlflowServer;
use isolake_tests::registry::{labelled_table, ok, train};
use isolake_tests::{ChildGuard, eventually};
use polars::prelude::*;

fn model_config(registry: &str, extra: &str) -> String {
    format!(
        "[model]\nuri = \"models:/fraud@production\"\nregistry = \"{registry}\"\n\
         model_refresh = \"500ms\"\n{extra}\n\
         [[detectors]]\nname = \"stl\"\nkind = \"small_then_large\"\nwindow = \"60s\"\n"
    )
}

/// Trains a model on a fresh labelled table (`seed` makes it differ) and points
/// `production` at it; returns the registered version's URI.
fn train_and_promote(dir: &Path, registry: &str, seed: u64) -> String {
    let table = labelled_table(dir, &format!("train-{seed}"), 3_000, seed);
    ok(&train(
        registry,
        &table,
        "fraud",
        &["--promote", "production"],
        &[],
    ))
}

/// Waits until gold has scored `rows` rows (or panics after `limit`, or at once if the run
/// exits: it must not).
fn wait_for_scored(lake: &Lake, rows: usize, child: &mut ChildGuard, limit: Duration) -> DataFrame {
    let what = format!("gold to reach {rows} rows");
    eventually(limit, &what, || {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the continuous run exited early: {status:?}");
        }
        let path = lake.dir.join("lake/gold/scored_transactions");
        if !path.join("_delta_log").is_dir() {
            return None;
        }
        let scored = lake.read("gold/scored_transactions");
        (scored.height() >= rows).then_some(scored)
    })
}

/// SIGTERM, which must end the run cleanly.
fn stop(child: ChildGuard) {
    child.sigterm().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "SIGTERM must end the run cleanly: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (rows scored by `version`, rows scored by another version or not at all) among rows
/// whose source file starts with `prefix`.
fn versions_of(scored: &DataFrame, prefix: &str) -> (usize, HashSet<Option<String>>) {
    let files = strings(scored, "_source_file");
    let versions = strings(scored, "model_version");
    let mut n = 0;
    let mut seen = HashSet::new();
    for (f, v) in files.iter().zip(versions) {
        if f.as_deref().is_some_and(|f| f.contains(prefix)) {
            n += 1;
            seen.insert(v);
        }
    }
    (n, seen)
}

fn event_statuses(lake: &Lake, flow: &str) -> Vec<String> {
    let events = lake
        .read("event_log")
        .lazy()
        .filter(col("flow").eq(lit(flow)))
        .collect()
        .unwrap();
    strings(&events, "status").into_iter().flatten().collect()
}

#[test]
fn a_promoted_version_takes_over_at_the_next_batch_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    let registry = registry.to_str().unwrap();
    let v1 = train_and_promote(tmp.path(), registry, 1);
    assert!(v1.contains("models:/fraud/1"), "{v1}");
    let lake = Lake::new(
        &tmp.path().join("lake"),
        "stability_ms = 1",
        &model_config(registry, ""),
    );
    let mut child = lake.spawn(&["run", "--continuous"]);
    generate(&lake.landing(), 2_000, 2, 101, 0.0);
    let scored = wait_for_scored(&lake, 2_000, &mut child, Duration::from_secs(90));
    assert_eq!(
        versions_of(&scored, "-101-").1,
        HashSet::from([Some("1".into())])
    );
    assert!(
        scored.column("anomaly_score").unwrap().null_count() == 0,
        "every row scored"
    );

    let v2 = train_and_promote(tmp.path(), registry, 2);
    assert!(v2.contains("models:/fraud/2"), "{v2}");
    std::thread::sleep(Duration::from_millis(1_200)); // > model_refresh
    generate(&lake.landing(), 2_000, 2, 102, 0.0);
    let scored = wait_for_scored(&lake, 4_000, &mut child, Duration::from_secs(90));
    stop(child);

    let (n, versions) = versions_of(&scored, "-102-");
    assert_eq!(n, 2_000);
    assert_eq!(
        versions,
        HashSet::from([Some("2".into())]),
        "after the promotion"
    );
    assert_eq!(
        sorted_strings(&scored, "transaction_id"),
        sorted_strings(&lake.read("silver"), "transaction_id"),
        "no row lost or scored twice"
    );
    let statuses = event_statuses(&lake, "model");
    assert!(
        statuses.contains(&"model_loaded".to_string()),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&"model_switched".to_string()),
        "{statuses:?}"
    );
}

#[test]
fn scoring_continues_with_the_cached_version_while_mlflow_is_down() {
    let server = MlflowServer::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let v1 = train_and_promote(tmp.path(), &server.url, 3);
    assert!(v1.contains("models:/fraud/1"), "{v1}");
    let lake = Lake::new(
        &tmp.path().join("lake"),
        "stability_ms = 1",
        &model_config(&server.url, ""),
    );
    let mut child = ChildGuard::spawn(
        lake.command(&["run", "--continuous"])
            .env("ISOLAKE_MODEL_CACHE", tmp.path().join("cache"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    generate(&lake.landing(), 1_000, 1, 201, 0.0);
    wait_for_scored(&lake, 1_000, &mut child, Duration::from_secs(90));

    drop(server); // the registry is gone
    std::thread::sleep(Duration::from_millis(1_500));
    generate(&lake.landing(), 1_000, 1, 202, 0.0);
    let scored = wait_for_scored(&lake, 2_000, &mut child, Duration::from_secs(90));
    stop(child);

    let (n, versions) = versions_of(&scored, "-202-");
    assert_eq!(n, 1_000);
    assert_eq!(
        versions,
        HashSet::from([Some("1".into())]),
        "the cached version"
    );
    assert_eq!(scored.column("anomaly_score").unwrap().null_count(), 0);
    let statuses = event_statuses(&lake, "model");
    assert!(
        statuses.contains(&"registry_unreachable".to_string()),
        "{statuses:?}"
    );
}

#[test]
fn without_a_model_rules_still_run_or_the_run_fails_as_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let empty_registry = tmp.path().join("registry");
    let registry = empty_registry.to_str().unwrap();
    let lake = Lake::new(
        &tmp.path().join("skip"),
        "stability_ms = 1",
        &model_config(registry, ""),
    );
    generate(&lake.landing(), 3_000, 3, 7, 0.0);
    lake.run_with(&["run", "--once", "--drain"]);
    let scored = lake.read("gold/scored_transactions");
    assert_eq!(scored.height(), lake.read("silver").height());
    assert_eq!(
        scored.column("anomaly_score").unwrap().null_count(),
        scored.height(),
        "no model: null scores"
    );
    assert!(lake.read("gold/alerts").height() > 0, "rules still ran");
    assert!(event_statuses(&lake, "model").contains(&"model_missing".to_string()));

    let failing = Lake::new(
        &tmp.path().join("fail"),
        "stability_ms = 1",
        &model_config(registry, "on_missing_model = \"fail\""),
    );
    generate(&failing.landing(), 500, 1, 7, 0.0);
    let out = failing.command(&["run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("isolake-train"),
        "the error says what to do: {stderr}"
    );
    assert_eq!(failing.read("gold/scored_transactions").height(), 0);
}

#[test]
fn a_version_silver_cannot_score_with_is_refused_and_ingestion_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    let registry = registry.to_str().unwrap();
    let v1 = train_and_promote(tmp.path(), registry, 1);
    assert!(v1.contains("models:/fraud/1"), "{v1}");
    let lake = Lake::new(
        &tmp.path().join("lake"),
        "stability_ms = 1",
        &model_config(registry, ""),
    );
    let mut child = lake.spawn(&["run", "--continuous"]);
    generate(&lake.landing(), 2_000, 2, 101, 0.0);
    wait_for_scored(&lake, 2_000, &mut child, Duration::from_secs(90));
    // Version 2 needs `label`, which the training table has and silver does not.
    let table = labelled_table(tmp.path(), "train-label", 3_000, 2);
    let extra = [
        "--promote",
        "production",
        "--features",
        "amount,label",
        "--allow-feature-change",
    ];
    let v2 = ok(&train(registry, &table, "fraud", &extra, &[]));
    assert!(v2.contains("models:/fraud/2"), "{v2}");
    std::thread::sleep(Duration::from_millis(1_200)); // > model_refresh
    generate(&lake.landing(), 2_000, 2, 102, 0.0);
    let scored = wait_for_scored(&lake, 4_000, &mut child, Duration::from_secs(90));
    stop(child);
    assert_eq!(
        versions_of(&scored, "-102-").1,
        HashSet::from([Some("1".into())]),
        "the current version scores on"
    );
    let rejected = event_statuses(&lake, "model")
        .into_iter()
        .filter(|s| s == "model_rejected")
        .count();
    assert_eq!(rejected, 1, "said once, not at every refresh");

    // A new run finds no usable version: rules and ingestion go on, scores are null...
    generate(&lake.landing(), 1_000, 1, 103, 0.0);
    lake.run_once();
    let scored = lake.read("gold/scored_transactions");
    assert_eq!(scored.height(), 5_000);
    assert_eq!(versions_of(&scored, "-103-").1, HashSet::from([None]));
    // ...or, with on_missing_model = "fail", the run stops with exit 5 naming the feature.
    let failing = Lake::new(
        &tmp.path().join("failing"),
        "stability_ms = 1",
        &model_config(registry, "on_missing_model = \"fail\""),
    );
    generate(&failing.landing(), 500, 1, 104, 0.0);
    let out = failing.command(&["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("label") && stderr.contains("models:/fraud/2"),
        "{stderr}"
    );
}

/// The model alerts of `lake`: (alert id, model version, reason), sorted.
fn model_alerts(lake: &Lake) -> Vec<(String, String, String)> {
    let alerts = lake
        .read("gold/alerts")
        .lazy()
        .filter(col("detector").eq(lit("model")))
        .collect()
        .unwrap();
    let cell = |c: &str| strings(&alerts, c);
    let mut out: Vec<_> = cell("alert_id")
        .into_iter()
        .zip(cell("model_version"))
        .zip(cell("reason"))
        .map(|((a, v), r)| (a.unwrap(), v.unwrap_or_default(), r.unwrap()))
        .collect();
    out.sort();
    out
}

/// A crash between a batch's scores and its alerts, then the alias moves: recovery alerts from
/// the committed scores (version 1), as the crash-free run did, and does not rescore.
#[test]
fn recovery_alerts_from_committed_scores_whatever_the_registry_says_by_then() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    let registry = registry.to_str().unwrap();
    train_and_promote(tmp.path(), registry, 1);
    let data = tmp.path().join("data");
    generate(&data, 2_000, 1, 31, 0.0);
    let land = |lake: &Lake| {
        for entry in std::fs::read_dir(&data).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, lake.landing().join(path.file_name().unwrap())).unwrap();
        }
    };
    let clean = Lake::new(
        &tmp.path().join("clean"),
        "stability_ms = 1",
        &model_config(registry, ""),
    );
    land(&clean);
    clean.run_with(&["run", "--once", "--drain"]);
    let expected = model_alerts(&clean);
    assert!(!expected.is_empty() && expected.iter().all(|(_, v, _)| v == "1"));

    // The registry gone at the restart (its directory moved away), then the alias moved.
    let crashed = crash_between_scores_and_alerts(tmp.path(), "gone", registry, &land);
    let away = tmp.path().join("registry-away");
    std::fs::rename(registry, &away).unwrap();
    crashed.run_with(&["run", "--once", "--drain"]);
    std::fs::rename(&away, registry).unwrap();
    assert_eq!(model_alerts(&crashed), expected, "registry gone");

    let crashed = crash_between_scores_and_alerts(tmp.path(), "moved", registry, &land);
    train_and_promote(tmp.path(), registry, 2);
    crashed.run_with(&["run", "--once", "--drain"]);
    assert_eq!(model_alerts(&crashed), expected, "alias moved");
    assert_eq!(
        sorted_strings(&crashed.read("gold/scored_transactions"), "model_version"),
        sorted_strings(&clean.read("gold/scored_transactions"), "model_version"),
        "the batch was not rescored"
    );
}

/// A lake whose run was SIGKILLed after its scores commit and before its alerts commit
/// (observed: the alerts table holds only its creation); retried on fresh lakes until so.
fn crash_between_scores_and_alerts(
    dir: &Path,
    name: &str,
    registry: &str,
    land: &dyn Fn(&Lake),
) -> Lake {
    for attempt in 0..30 {
        let lake = Lake::new(
            &dir.join(format!("{name}-{attempt}")),
            "stability_ms = 1",
            &model_config(registry, ""),
        );
        land(&lake);
        let killed = lake.kill_after_commits(&["run", "--once"], "gold/scored_transactions", 2);
        if killed && lake.commits("gold/alerts") == 1 {
            return lake;
        }
    }
    panic!("no kill landed between the scores and the alerts commits in 30 tries");
}

/// Rule alerts of `lake` (everything but the model's), by id.
fn rule_alerts(lake: &Lake) -> Vec<String> {
    let alerts = lake
        .read("gold/alerts")
        .lazy()
        .filter(col("detector").neq(lit("model")))
        .collect()
        .unwrap();
    sorted_strings(&alerts, "alert_id")
}

/// `run --continuous` with auto compaction every 2 batches and a promotion midway, SIGKILLed
/// 20 times right after a commit (bronze, silver, scores, alerts in turn) while files land
/// between the kills: bronze holds every line once, silver and the rule alerts equal a
/// crash-free run's, every silver row is scored once, and each model alert names the version
/// that scored its row.
#[test]
fn continuous_runs_with_compaction_and_a_promotion_survive_sigkills() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    let registry = registry.to_str().unwrap();
    train_and_promote(tmp.path(), registry, 1);
    let data = tmp.path().join("data");
    generate(&data, 4_000, 40, 41, 0.01);
    let mut files: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let config = format!(
        "[maintenance]\nauto_compact_every = 2\n{}",
        model_config(registry, "")
    );
    let clean = Lake::new(&tmp.path().join("clean"), "stability_ms = 1", &config);
    let crashed = Lake::new(&tmp.path().join("crashed"), "stability_ms = 1", &config);
    for f in &files {
        std::fs::copy(f, clean.landing().join(f.file_name().unwrap())).unwrap();
    }
    clean.run_with(&["run", "--once", "--drain"]);

    let tables = [
        "bronze",
        "silver",
        "gold/scored_transactions",
        "gold/alerts",
    ];
    let mut killed = 0;
    for (round, pair) in files.chunks(2).enumerate() {
        for f in pair {
            std::fs::copy(f, crashed.landing().join(f.file_name().unwrap())).unwrap();
        }
        if round == 10 {
            train_and_promote(tmp.path(), registry, 2);
        }
        let table = tables[round % tables.len()];
        killed += usize::from(crashed.kill_after_commits(&["run", "--continuous"], table, 1));
    }
    assert!(killed >= 15, "only {killed} kills");
    crashed.run_with(&["run", "--once", "--drain"]);

    let lines = isolake_tests::lake::count_lines(&crashed.landing());
    assert_eq!(
        crashed.read("bronze").height(),
        lines,
        "every line once in bronze"
    );
    let silver = sorted_strings(&crashed.read("silver"), "transaction_id");
    assert_eq!(
        silver,
        sorted_strings(&clean.read("silver"), "transaction_id")
    );
    assert_eq!(rule_alerts(&crashed), rule_alerts(&clean));
    let scored = crashed.read("gold/scored_transactions");
    assert_eq!(
        sorted_strings(&scored, "transaction_id"),
        silver,
        "scored once each"
    );
    let version_of: HashMap<String, String> = strings(&scored, "transaction_id")
        .into_iter()
        .zip(strings(&scored, "model_version"))
        .map(|(id, v)| (id.unwrap(), v.unwrap_or_default()))
        .collect();
    let alerts = crashed
        .read("gold/alerts")
        .lazy()
        .filter(col("detector").eq(lit("model")))
        .collect()
        .unwrap();
    let ids = alerts
        .column("transaction_ids")
        .unwrap()
        .list()
        .unwrap()
        .clone();
    let versions = strings(&alerts, "model_version");
    assert!(!versions.is_empty());
    for (i, version) in versions.iter().enumerate() {
        let row = ids.get_as_series(i).unwrap();
        let id = row.str().unwrap().get(0).unwrap().to_string();
        assert_eq!(
            version.as_deref(),
            Some(version_of[&id].as_str()),
            "alert of {id}"
        );
    }
}
