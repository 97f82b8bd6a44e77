//! A new user's first hour (issue 15): defaults that promote on realistic data, landed NDJSON
//! with malformed lines read by train and score, and an explicit way to replace an output.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use isolake_tests::lake::{Lake, generate, read_table};
use isolake_tests::registry::{ok, run};

/// The lines of the files under `dir` that are not a JSON object (blank lines aside): what
/// train and score must skip and count, found independently of their reader.
fn malformed_lines(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read(entry.unwrap().path()).unwrap();
        for line in text.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = serde_json::from_slice::<serde_json::Value>(line);
            n += usize::from(!matches!(parsed, Ok(serde_json::Value::Object(_))));
        }
    }
    n
}

/// The run's logged metric `name` (the local registry keeps runs as JSON files).
fn run_metric(registry: &Path, name: &str) -> f64 {
    let runs = registry.join("runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(run.join("run.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

#[test]
fn training_with_no_tuning_flags_promotes_on_a_realistic_day() {
    let tmp = tempfile::tempdir().unwrap();
    // The demo's day (100k rows in 24 files, seed 42) and two other days.
    for (seed, rows, files) in [
        (42u64, 100_000usize, 24usize),
        (11, 20_000, 6),
        (12, 8_000, 3),
    ] {
        let dir = tmp.path().join(format!("day-{seed}"));
        let lake = Lake::new(&dir, "stability_ms = 1", "");
        generate(&lake.landing(), rows, files, seed, 0.01);
        lake.run_once();
        let registry = dir.join("registry");
        let silver = dir.join("lake/silver");
        let out = run(
            "isolake-train",
            &[
                "--input",
                silver.to_str().unwrap(),
                "--registry",
                registry.to_str().unwrap(),
                "--model-name",
                "fraud",
                "--promote",
                "production",
            ],
            &[],
        );
        assert_eq!(ok(&out), "models:/fraud/1");
        let aliases = std::fs::read_to_string(registry.join("models/fraud/aliases.json")).unwrap();
        assert!(aliases.contains("production"), "{aliases}");
        // The default alert budget: the top 1% of the training rows.
        let flagged = run_metric(&registry, "flagged_fraction");
        assert!((0.009..=0.011).contains(&flagged), "flagged {flagged}");
    }
}

#[test]
fn train_and_score_read_landed_ndjson_past_malformed_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let landing = tmp.path().join("landing");
    generate(&landing, 5_000, 3, 5, 0.05);
    let bad = malformed_lines(&landing);
    assert!(bad > 0, "the generator writes broken JSON lines");
    let registry = tmp.path().join("registry");
    let (landing_arg, registry_arg) = (landing.to_str().unwrap(), registry.to_str().unwrap());
    let trained = run(
        "isolake-train",
        &[
            "--input",
            landing_arg,
            "--registry",
            registry_arg,
            "--model-name",
            "raw",
        ],
        &[],
    );
    assert_eq!(ok(&trained), "models:/raw/1");
    let said = String::from_utf8_lossy(&trained.stderr);
    assert!(
        said.contains(&format!("{bad} malformed line(s) skipped: ")),
        "{said}"
    );
    assert!(said.contains(".json:"), "names a file and line: {said}");
    assert_eq!(run_metric(&registry, "lines_malformed"), bad as f64);

    let out = tmp.path().join("scored.csv");
    let score = |extra: &[&str]| {
        let mut args = vec![
            "--model",
            "models:/raw/1",
            "--registry",
            registry_arg,
            "--input",
            landing_arg,
            "--output",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run("isolake-score", &args, &[])
    };
    let first = score(&[]);
    ok(&first);
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(
        said.contains(&format!("{bad} malformed line(s) skipped")),
        "{said}"
    );
    let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
    let scored_lines = lines(&out);
    assert_eq!(
        scored_lines,
        5_000 - bad + 1,
        "every object line scored, plus the header"
    );

    // An existing output is refused unless the user says to replace it.
    let again = score(&[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--if-exists overwrite"));
    ok(&score(&["--if-exists", "overwrite"]));
    assert_eq!(lines(&out), scored_lines, "replaced, not appended");
    let appended = score(&["--if-exists", "append"]);
    assert_eq!(
        appended.status.code(),
        Some(2),
        "a CSV file cannot be appended to"
    );
}

#[test]
fn a_delta_output_is_appended_to_or_overwritten_as_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let landing = tmp.path().join("landing");
    generate(&landing, 3_000, 2, 9, 0.0);
    let registry = tmp.path().join("registry");
    let (landing_arg, registry_arg) = (landing.to_str().unwrap(), registry.to_str().unwrap());
    let args = [
        "--input",
        landing_arg,
        "--registry",
        registry_arg,
        "--model-name",
        "d",
    ];
    ok(&run("isolake-train", &args, &[]));
    let table = tmp.path().join("scored");
    let score = |extra: &[&str]| {
        let mut args = vec!["--model", "models:/d/1", "--registry", registry_arg];
        args.extend(["--input", landing_arg, "--format", "delta"]);
        args.extend(["--output", table.to_str().unwrap(), "--chunk-rows", "1000"]);
        args.extend_from_slice(extra);
        ok(&run("isolake-score", &args, &[]));
        read_table(&table).height()
    };
    assert_eq!(score(&[]), 3_000);
    assert_eq!(score(&[]), 6_000, "a Delta table is appended to by default");
    assert_eq!(
        score(&["--if-exists", "overwrite"]),
        3_000,
        "one replacing commit"
    );
    let refused = run(
        "isolake-score",
        &[
            "--model",
            "models:/d/1",
            "--registry",
            registry_arg,
            "--input",
            landing_arg,
            "--format",
            "delta",
            "--output",
            table.to_str().unwrap(),
            "--if-exists",
            "fail",
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn promoting_a_version_with_other_features_needs_allow_feature_change() {
    let tmp = tempfile::tempdir().unwrap();
    let landing = tmp.path().join("landing");
    generate(&landing, 3_000, 2, 21, 0.0);
    let registry = tmp.path().join("registry");
    let (landing_arg, registry_arg) = (landing.to_str().unwrap(), registry.to_str().unwrap());
    let train = |extra: &[&str]| {
        let mut args = vec!["--input", landing_arg, "--registry", registry_arg];
        args.extend(["--model-name", "f", "--promote", "production"]);
        args.extend_from_slice(extra);
        run("isolake-train", &args, &[])
    };
    let alias = || std::fs::read_to_string(registry.join("models/f/aliases.json")).unwrap();
    assert_eq!(ok(&train(&[])), "models:/f/1");
    let changed = train(&["--features", "amount,quantity"]);
    assert_eq!(
        changed.status.code(),
        Some(4),
        "a gate: registered, not promoted"
    );
    assert_eq!(
        String::from_utf8_lossy(&changed.stdout).trim(),
        "models:/f/2"
    );
    let said = String::from_utf8_lossy(&changed.stderr);
    assert!(said.contains("--allow-feature-change"), "{said}");
    assert!(said.contains("amount, quantity"), "{said}");
    assert!(alias().contains("\"production\": 1") || alias().contains("\"production\":1"));
    let allowed = train(&["--features", "amount,quantity", "--allow-feature-change"]);
    assert_eq!(ok(&allowed), "models:/f/3");
    assert!(alias().contains("3"), "{}", alias());
    // The same features as the alias's version need nothing.
    assert_eq!(
        ok(&train(&["--features", "amount,quantity"])),
        "models:/f/4"
    );
}
