//! isolake-train and isolake-score against the local registry: train → register → alias →
//! score, promotion, run keys, gates, the checksum of cached artifacts, concurrent writers.
#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::path::{Path, PathBuf};

use isolake_models::Registry;
use isolake_models::registry::{RunData, TAG_REPLACED_BY};
use isolake_tests::registry::{labelled_table, ok, run, scores, train};

fn version_json(registry: &Path, model: &str, version: u64) -> serde_json::Value {
    let path = registry.join(format!("models/{model}/versions/{version}/version.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn score(
    registry: &str,
    model: &str,
    input: &str,
    out: &Path,
    cache: &Path,
) -> std::process::Output {
    isolake_tests::registry::score(registry, model, input, out, cache, &[])
}

#[test]
fn train_register_alias_and_score_match_the_artifact_file() {
    let dir = tempfile::tempdir().unwrap();
    let table = labelled_table(dir.path(), "silver", 4_000, 3);
    let reg = dir.path().join("reg");
    let reg_s = reg.to_str().unwrap();
    let uri = ok(&train(
        reg_s,
        &table,
        "fraud",
        &["--promote", "production"],
        &[],
    ));
    assert_eq!(uri, "models:/fraud/1");

    // The run: params, metrics (with AUC from the labels), tags naming the table + version.
    let v = version_json(&reg, "fraud", 1);
    let run_id = v["run_id"].as_str().unwrap();
    let run_dir = reg.join("runs").join(run_id);
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["status"], "FINISHED");
    assert_eq!(run["params"]["n_estimators"], "50");
    assert_eq!(run["params"]["seed"], "7");
    assert_eq!(run["metrics"]["rows"], 4000.0);
    let auc = run["metrics"]["auc"].as_f64().unwrap();
    assert!(auc > 0.5 && auc <= 1.0, "auc {auc}");
    assert!(
        run["tags"]["isolake.training_table"]
            .as_str()
            .unwrap()
            .ends_with("silver/")
    );
    assert_eq!(run["tags"]["isolake.delta_version"], "2");
    let png = std::fs::read(run_dir.join("artifacts/plots/score_histogram.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let spec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("artifacts/model/feature_spec.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec["features"].as_array().unwrap().len(), 6);

    // Score through the alias, and straight from the artifact file: the same scores.
    let cache = dir.path().join("cache");
    let via_alias = dir.path().join("alias.parquet");
    ok(&score(
        reg_s,
        "models:/fraud@production",
        &table,
        &via_alias,
        &cache,
    ));
    let artifact = run_dir.join("artifacts/model/model.isolake");
    let via_file = dir.path().join("file.parquet");
    ok(&score(
        reg_s,
        artifact.to_str().unwrap(),
        &table,
        &via_file,
        &cache,
    ));
    let a = scores(&via_alias);
    assert_eq!(a.len(), 4000);
    assert!(
        a.iter()
            .all(|(_, s)| s.is_some_and(|s| s > 0.0 && s <= 1.0))
    );
    assert_eq!(a, scores(&via_file));
    // The cache holds the artifact under its checksum.
    let sha = v["tags"]["isolake.sha256"].as_str().unwrap();
    assert!(cache.join(format!("{sha}.isolake")).is_file());
}

#[test]
fn a_second_promotion_moves_the_alias_and_version_1_still_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let table = labelled_table(dir.path(), "silver", 3_000, 4);
    let reg = dir.path().join("reg");
    let reg_s = reg.to_str().unwrap();
    assert_eq!(
        ok(&train(
            reg_s,
            &table,
            "m",
            &["--promote", "production"],
            &[]
        )),
        "models:/m/1"
    );
    assert_eq!(
        ok(&train(
            reg_s,
            &table,
            "m",
            &["--promote", "production", "--extension-level", "1"],
            &[]
        )),
        "models:/m/2"
    );
    let aliases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reg.join("models/m/aliases.json")).unwrap()).unwrap();
    assert_eq!(aliases["production"], 2);
    let replaced = version_json(&reg, "m", 1)["tags"][TAG_REPLACED_BY]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        replaced.starts_with("models:/m/2 as @production"),
        "{replaced}"
    );

    let registry = Registry::local(&reg);
    let cache = dir.path().join("cache");
    let (_, v1) = registry.load_model("models:/m/1", Some(&cache)).unwrap();
    let (m2, v2) = registry
        .load_model("models:/m@production", Some(&cache))
        .unwrap();
    assert_eq!((v1.version, v2.version), (Some(1), Some(2)));
    assert_ne!(v1.sha256, v2.sha256);
    assert_eq!(m2.metadata().hyperparameters.extension_level(), 1);
}

#[test]
fn the_same_run_key_twice_registers_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let table = labelled_table(dir.path(), "silver", 2_000, 5);
    let reg = dir.path().join("reg");
    let reg_s = reg.to_str().unwrap();
    let first = ok(&train(
        reg_s,
        &table,
        "k",
        &["--run-key", "2024-06-01"],
        &[],
    ));
    let second = train(reg_s, &table, "k", &["--run-key", "2024-06-01"], &[]);
    assert_eq!(ok(&second), first);
    let versions = std::fs::read_dir(reg.join("models/k/versions"))
        .unwrap()
        .count();
    assert_eq!(versions, 1);
    assert_eq!(std::fs::read_dir(reg.join("runs")).unwrap().count(), 1);
    assert_eq!(
        ok(&train(
            reg_s,
            &table,
            "k",
            &["--run-key", "2024-06-02"],
            &[]
        )),
        "models:/k/2"
    );
}

#[test]
fn a_corrupted_cached_artifact_is_refused_by_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let table = labelled_table(dir.path(), "silver", 2_000, 6);
    let reg = dir.path().join("reg");
    let reg_s = reg.to_str().unwrap();
    ok(&train(
        reg_s,
        &table,
        "c",
        &["--promote", "production"],
        &[],
    ));
    let cache = dir.path().join("cache");
    ok(&score(
        reg_s,
        "models:/c@production",
        &table,
        &dir.path().join("1.parquet"),
        &cache,
    ));
    let cached: PathBuf = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&cached).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&cached, bytes).unwrap();
    let out = score(
        reg_s,
        "models:/c@production",
        &table,
        &dir.path().join("2.parquet"),
        &cache,
    );
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to load it"), "{stderr}");
    assert!(stderr.contains(cached.to_str().unwrap()), "{stderr}");
    assert!(!dir.path().join("2.parquet").exists());
}

#[test]
fn a_failed_gate_exits_4_registers_the_version_and_keeps_the_alias() {
    let dir = tempfile::tempdir().unwrap();
    let table = labelled_table(dir.path(), "silver", 2_000, 8);
    let reg = dir.path().join("reg");
    let reg_s = reg.to_str().unwrap();
    ok(&train(
        reg_s,
        &table,
        "g",
        &["--promote", "production"],
        &[],
    ));
    let out = train(
        reg_s,
        &table,
        "g",
        &["--promote", "production", "--max-flag-rate", "0.0001"],
        &[],
    );
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "models:/g/2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--max-flag-rate"), "{stderr}");
    let aliases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reg.join("models/g/aliases.json")).unwrap()).unwrap();
    assert_eq!(aliases["production"], 1);

    let out = train(
        reg_s,
        &table,
        "g",
        &["--promote", "production", "--min-auc", "0.9999"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--min-auc"));
}

#[test]
fn bad_input_exits_2_and_touches_no_registry() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("reg");
    let missing = dir.path().join("nope");
    let out = train(
        reg.to_str().unwrap(),
        missing.to_str().unwrap(),
        "x",
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(!reg.exists());

    let table = labelled_table(dir.path(), "silver", 500, 9);
    let out = train(
        reg.to_str().unwrap(),
        &table,
        "x",
        &["--features", "amount,nope"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nope\""));
    let out = score(
        reg.to_str().unwrap(),
        "models:/x@production",
        &table,
        &dir.path().join("o.parquet"),
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such alias"));
}

#[test]
fn unscorable_rows_get_null_scores_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let table = labelled_table(dir.path(), "silver", 2_000, 10);
    let reg = dir.path().join("reg");
    let reg_s = reg.to_str().unwrap();
    ok(&train(
        reg_s,
        &table,
        "u",
        &["--promote", "production"],
        &[],
    ));
    // Landed NDJSON with malformed lines: wrong types, missing fields, broken JSON.
    let landing = dir.path().join("landing");
    ok(&run(
        "isolake-gen",
        &[
            "--rows",
            "3000",
            "--files",
            "1",
            "--seed",
            "3",
            "--bad-fraction",
            "0.05",
            "--quiet",
            "--out",
            landing.to_str().unwrap(),
        ],
        &[],
    ));
    // Broken JSON lines cannot be parsed at all: keep the well-formed (possibly wrongly typed)
    // objects, as an Auto Loader's rescue step would.
    let file = std::fs::read_dir(&landing)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let kept: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v.is_object()))
        .map(str::to_string)
        .collect();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, kept.join("\n") + "\n").unwrap();
    let out_path = dir.path().join("scored.parquet");
    let out = score(
        reg_s,
        "models:/u@production",
        input.to_str().unwrap(),
        &out_path,
        &dir.path().join("cache"),
    );
    ok(&out);
    let s = scores(&out_path);
    assert_eq!(s.len(), kept.len());
    let nulls = s.iter().filter(|(_, v)| v.is_none()).count();
    assert!(nulls > 0 && nulls < s.len() / 10, "{nulls} of {}", s.len());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{nulls} unscorable")), "{stderr}");
}

#[test]
fn concurrent_writers_get_distinct_consecutive_versions() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("reg");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                let registry = Registry::local(&root);
                let b = registry.backend();
                let exp = b.get_or_create_experiment("concurrent").unwrap();
                (0..5)
                    .map(|i| {
                        let run = b.create_run(&exp, &format!("t{t}-{i}"), &[]).unwrap();
                        b.log_batch(
                            &run.run_id,
                            &RunData {
                                metrics: vec![("i".into(), f64::from(i))],
                                ..RunData::default()
                            },
                        )
                        .unwrap();
                        let bytes = format!("artifact {t} {i}").into_bytes();
                        b.log_artifact(&run, "model/model.isolake", &bytes).unwrap();
                        registry
                            .register_model("shared", &run, "model", "model.isolake", &bytes, &[])
                            .unwrap()
                            .0
                            .version
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=20).collect::<Vec<u64>>());
    let experiments = std::fs::read_dir(root.join("experiments")).unwrap().count();
    assert_eq!(experiments, 1);
    // No temporary file is left behind. The lock file stays (the lock is the kernel's, on it),
    // and no writer holds it any more.
    let leftovers: Vec<_> = walk(&root)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .filter(|p| *p != root.join(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let lock = std::fs::File::open(root.join(".lock")).unwrap();
    assert!(
        lock.try_lock().is_ok(),
        "the lock is free once every writer is done"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
