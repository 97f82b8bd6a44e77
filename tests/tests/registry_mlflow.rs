//! isolake-train and isolake-score against a real MLflow server (the pinned version that
//! `.ci/run` installs): runs, artifacts, registered versions and aliases, checked through
//! MLflow's own REST API; basic auth; a server that is down.
#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::path::Path;
use std::sync::OnceLock;

use isolake_tests::free_port;
use isolake_tests::mlflow::MlflowServer;
use isolake_tests::registry::{labelled_table, ok, scores, train};
use serde_json::Value;

/// One server for the tests of this binary (each uses its own model and experiment).
fn server() -> &'static MlflowServer {
    static SERVER: OnceLock<MlflowServer> = OnceLock::new();
    SERVER.get_or_init(|| MlflowServer::start(None))
}

/// One labelled table for the tests of this binary.
fn table() -> &'static str {
    static TABLE: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    &TABLE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let t = labelled_table(dir.path(), "silver", 3_000, 21);
            (dir, t)
        })
        .1
}

fn get(url: &str, endpoint: &str, query: &[(&str, &str)]) -> Value {
    let r = reqwest::blocking::Client::new()
        .get(format!("{url}/api/2.0/mlflow/{endpoint}"))
        .query(query)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{endpoint}: {}", r.status());
    r.json().unwrap()
}

fn pairs(list: &Value) -> std::collections::BTreeMap<String, Value> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|p| (p["key"].as_str().unwrap().to_string(), p["value"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn score(
    registry: &str,
    model: &str,
    out: &Path,
    cache: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    isolake_tests::registry::score(registry, model, table(), out, cache, env)
}

#[test]
fn train_register_alias_score_and_the_run_through_mlflows_rest_api() {
    let url = &server().url;
    let dir = tempfile::tempdir().unwrap();
    let uri = ok(&train(
        url,
        table(),
        "fraud-a",
        &["--promote", "production"],
        &[],
    ));
    assert_eq!(uri, "models:/fraud-a/1");

    let alias = get(
        url,
        "registered-models/alias",
        &[("name", "fraud-a"), ("alias", "production")],
    );
    let version = &alias["model_version"];
    assert_eq!(version["version"], "1");
    let run_id = version["run_id"].as_str().unwrap();
    let tags = pairs(&version["tags"]);
    assert_eq!(tags["isolake.sha256"].as_str().unwrap().len(), 64);
    // MLflow 3: registered from the run's logged model, whose files are the version's.
    let logged_model = tags["isolake.logged_model_id"].as_str().unwrap();
    assert!(
        version["source"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/models/{logged_model}/artifacts")),
        "{version}"
    );

    let run = get(url, "runs/get", &[("run_id", run_id)])["run"].clone();
    assert_eq!(run["info"]["status"], "FINISHED");
    let params = pairs(&run["data"]["params"]);
    assert_eq!(params["n_estimators"], "50");
    assert_eq!(params["seed"], "7");
    assert_eq!(params["contamination"], "Fraction(0.02)");
    let metrics = pairs(&run["data"]["metrics"]);
    assert_eq!(metrics["rows"], 3000.0);
    let auc = metrics["auc"].as_f64().unwrap();
    assert!(auc > 0.5 && auc <= 1.0, "{auc}");
    assert!(metrics["flagged_fraction"].as_f64().unwrap() <= 0.1);
    assert!(metrics.contains_key("score_p99") && metrics.contains_key("fit_seconds"));
    let run_tags = pairs(&run["data"]["tags"]);
    assert!(
        run_tags["isolake.training_table"]
            .as_str()
            .unwrap()
            .ends_with("silver/")
    );
    assert_eq!(run_tags["isolake.delta_version"], "2");
    let listed = |path: &str| -> Vec<String> {
        get(url, "artifacts/list", &[("run_id", run_id), ("path", path)])["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect()
    };
    // The artifact, its feature spec, and the MLflow model around it (issue 21).
    assert_eq!(
        listed("model"),
        [
            "model/MLmodel",
            "model/code",
            "model/feature_spec.json",
            "model/input_example.json",
            "model/model.isolake",
            "model/python_env.yaml",
            "model/requirements.txt"
        ]
    );
    assert_eq!(listed("model/code"), ["model/code/isolake_pyfunc.py"]);
    assert_eq!(listed("plots"), ["plots/score_histogram.png"]);

    // Scoring through the alias gives the same scores as the artifact file downloaded from
    // MLflow's artifact proxy.
    let cache = dir.path().join("cache");
    let via_alias = dir.path().join("alias.parquet");
    ok(&score(
        url,
        "models:/fraud-a@production",
        &via_alias,
        &cache,
        &[],
    ));
    let artifact = reqwest::blocking::get(format!(
        "{url}/api/2.0/mlflow-artifacts/artifacts/{}/model.isolake",
        version["source"]
            .as_str()
            .unwrap()
            .trim_start_matches("mlflow-artifacts:/")
    ))
    .unwrap()
    .bytes()
    .unwrap();
    let file = dir.path().join("downloaded.isolake");
    std::fs::write(&file, &artifact).unwrap();
    let via_file = dir.path().join("file.parquet");
    ok(&score(url, file.to_str().unwrap(), &via_file, &cache, &[]));
    let a = scores(&via_alias);
    assert_eq!(a.len(), 3000);
    assert_eq!(a, scores(&via_file));

    // A corrupted cache entry is refused by checksum.
    let cached = cache.join(format!(
        "{}.isolake",
        tags["isolake.sha256"].as_str().unwrap()
    ));
    let mut bytes = std::fs::read(&cached).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(&cached, bytes).unwrap();
    let out = score(
        url,
        "models:/fraud-a@production",
        &dir.path().join("x.parquet"),
        &cache,
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to load it"));
}

#[test]
fn a_second_promotion_moves_the_alias_and_version_1_still_resolves() {
    let url = &server().url;
    ok(&train(
        url,
        table(),
        "fraud-b",
        &["--promote", "production"],
        &[],
    ));
    let second = ok(&train(
        url,
        table(),
        "fraud-b",
        &["--promote", "production", "--extension-level", "1"],
        &[],
    ));
    assert_eq!(second, "models:/fraud-b/2");
    let alias = get(
        url,
        "registered-models/alias",
        &[("name", "fraud-b"), ("alias", "production")],
    );
    assert_eq!(alias["model_version"]["version"], "2");
    let v1 = get(
        url,
        "model-versions/get",
        &[("name", "fraud-b"), ("version", "1")],
    );
    let replaced = pairs(&v1["model_version"]["tags"])["isolake.replaced_by"].clone();
    assert!(
        replaced
            .as_str()
            .unwrap()
            .starts_with("models:/fraud-b/2 as @production"),
        "{replaced}"
    );

    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let registry = isolake_models::Registry::open_with(url, None).unwrap();
    let (m1, r1) = registry
        .load_model("models:/fraud-b/1", Some(&cache))
        .unwrap();
    let (m2, r2) = registry
        .load_model("models:/fraud-b@production", Some(&cache))
        .unwrap();
    assert_eq!((r1.version, r2.version), (Some(1), Some(2)));
    assert_eq!(m1.metadata().hyperparameters.extension_level(), 0);
    assert_eq!(m2.metadata().hyperparameters.extension_level(), 1);
    // Deleting an alias: it no longer resolves.
    registry
        .backend()
        .delete_alias("fraud-b", "production")
        .unwrap();
    assert!(
        registry
            .backend()
            .get_alias("fraud-b", "production")
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_same_run_key_twice_registers_one_version() {
    let url = &server().url;
    let first = ok(&train(
        url,
        table(),
        "fraud-c",
        &["--run-key", "nightly-2024-06-01"],
        &[],
    ));
    let second = ok(&train(
        url,
        table(),
        "fraud-c",
        &["--run-key", "nightly-2024-06-01"],
        &[],
    ));
    assert_eq!(first, second);
    let found = get(
        url,
        "model-versions/search",
        &[("filter", "name='fraud-c'")],
    );
    assert_eq!(found["model_versions"].as_array().unwrap().len(), 1);
}

#[test]
fn basic_auth_right_credentials_work_and_wrong_ones_exit_3_without_the_password() {
    let password = "right-password-0123456789";
    let auth = MlflowServer::start(Some(password));
    let url = auth.url.as_str();
    let good = [
        ("MLFLOW_TRACKING_USERNAME", "admin"),
        ("MLFLOW_TRACKING_PASSWORD", password),
    ];
    let out = train(
        url,
        table(),
        "fraud-auth",
        &["--promote", "production"],
        &good,
    );
    assert_eq!(ok(&out), "models:/fraud-auth/1");
    let dir = tempfile::tempdir().unwrap();
    ok(&score(
        url,
        "models:/fraud-auth@production",
        &dir.path().join("s.parquet"),
        &dir.path().join("c"),
        &good,
    ));

    let wrong_password = "wrong-password-9876543210";
    let wrong = [
        ("MLFLOW_TRACKING_USERNAME", "admin"),
        ("MLFLOW_TRACKING_PASSWORD", wrong_password),
    ];
    for out in [
        train(url, table(), "fraud-auth", &[], &wrong),
        score(
            url,
            "models:/fraud-auth@production",
            &dir.path().join("t.parquet"),
            &dir.path().join("c2"),
            &wrong,
        ),
        // Credentials in the URL are used, and hidden as well.
        train(
            &url.replace("http://", &format!("http://admin:{wrong_password}@")),
            table(),
            "fraud-auth",
            &[],
            &[],
        ),
    ] {
        assert_eq!(out.status.code(), Some(3));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains("authentication failed"), "{all}");
        assert!(
            !all.contains(wrong_password) && !all.contains(password),
            "{all}"
        );
    }
    // No credentials at all: told to set them.
    let out = train(url, table(), "fraud-auth", &[], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MLFLOW_TRACKING_USERNAME"));
    // Debug output of a registry never shows the password either.
    let registry = isolake_models::Registry::open_with(
        url,
        Some(isolake_models::registry::Credentials {
            username: "admin".into(),
            password: password.into(),
        }),
    )
    .unwrap();
    assert!(!format!("{registry:?}").contains(password));
}

#[test]
fn a_server_that_is_down_exits_3_and_registers_nothing_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = std::process::Command::new(isolake_tests::binary("isolake-train"))
        .args([
            "--input",
            table(),
            "--registry",
            &url,
            "--model-name",
            "down",
            "--promote",
            "production",
        ])
        .current_dir(dir.path())
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unreachable") && stderr.contains("cannot connect"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    // Nothing fell back to a local registry.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // The same through MLFLOW_TRACKING_URI.
    let out = std::process::Command::new(isolake_tests::binary("isolake-score"))
        .args([
            "--model",
            "models:/down@production",
            "--input",
            table(),
            "--output",
            "o.parquet",
        ])
        .current_dir(dir.path())
        .env("MLFLOW_TRACKING_URI", &url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
