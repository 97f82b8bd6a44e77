//! A fitted scikit-learn IsolationForest comes into isolake (issue 21): converted by
//! `models/python/sklearn_to_isolake.py`, registered with `isolake-train --import`, it scores
//! exactly as scikit-learn's `score_samples` (≤ 1e-12), flags exactly what `predict` flags, and
//! runs in the pipeline like any other version.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use isolake_tests::lake::{Lake, generate};
use isolake_tests::mlflow::{MlflowServer, mlflow_python, python_json};
use isolake_tests::registry::{labelled_table, ok, run, score};
use polars::prelude::*;
use serde_json::Value;

fn repo() -> PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    PathBuf::from(dir).join("..")
}

/// Fits scikit-learn on the `features` of the parquet file `train` (rows as float64) with
/// `params` (JSON keyword arguments) and saves it with joblib at `out`.
const FIT: &str = r#"
import json, sys, joblib, pandas as pd
from sklearn.ensemble import IsolationForest
train, features, params, out = sys.argv[1], sys.argv[2].split(","), json.loads(sys.argv[3]), sys.argv[4]
x = pd.read_parquet(train)[features].to_numpy(dtype="float64")
joblib.dump(IsolationForest(**params).fit(x), out)
print(json.dumps({"rows": len(x)}))
"#;

/// Compares isolake's `anomaly_score` / `is_anomaly` columns of the parquet file `scored` with
/// the saved forest's `score_samples` and `predict` on the same rows.
const COMPARE: &str = r#"
import json, sys, joblib, numpy as np, pandas as pd
forest, scored, features = joblib.load(sys.argv[1]), pd.read_parquet(sys.argv[2]), sys.argv[3].split(",")
x = scored[features].to_numpy(dtype="float64")
want = -forest.score_samples(x)
got = scored["anomaly_score"].to_numpy(dtype="float64")
flags = scored["is_anomaly"].astype(bool).to_numpy()
print(json.dumps({
    "rows": int(len(x)),
    "max_abs_diff": float(np.abs(got - want).max()),
    "predict_agrees": bool((flags == (forest.predict(x) == -1)).all()),
    "decision_agrees": bool((flags == (forest.decision_function(x) < 0)).all()),
    "flagged": int(flags.sum()),
}))
"#;

/// `isolake-train --import artifact` on `input` into `registry` as `name`, promoted to
/// production; returns the version's URI.
fn import(registry: &str, artifact: &Path, input: &str, name: &str) -> String {
    let args = [
        "--import",
        artifact.to_str().unwrap(),
        "--input",
        input,
        "--registry",
        registry,
        "--model-name",
        name,
        "--promote",
        "production",
        "--max-flag-rate",
        "0.5",
        "--quiet",
    ];
    ok(&run("isolake-train", &args, &[]))
}

/// Scores `data` with `model` from `registry` and asserts the scores are the saved
/// scikit-learn `forest`'s on the same rows.
fn assert_scores_like_sklearn(
    registry: &str,
    model: &str,
    data: &Path,
    forest: &Path,
    features: &[&str],
    dir: &Path,
) {
    let scored = dir.join("scored.parquet");
    let input = data.to_str().unwrap();
    ok(&score(
        registry,
        model,
        input,
        &scored,
        &dir.join("cache"),
        &[],
    ));
    let rows = isolake_tests::lake::read_parquet_rows(data);
    let args = [
        forest.to_str().unwrap(),
        scored.to_str().unwrap(),
        &features.join(","),
    ];
    assert_matches_sklearn(&python_json(COMPARE, &args), rows);
}

/// Fits, saves and converts; returns the joblib file and the artifact.
fn fit_and_convert(
    dir: &Path,
    train: &Path,
    features: &[&str],
    params: &str,
) -> (PathBuf, PathBuf) {
    let forest = dir.join("forest.joblib");
    let args = [
        train.to_str().unwrap(),
        &features.join(","),
        params,
        forest.to_str().unwrap(),
    ];
    python_json(FIT, &args);
    let artifact = dir.join("model.isolake");
    convert(forest.to_str().unwrap(), features, &artifact, &[]);
    (forest, artifact)
}

/// Runs the converter on `model` (a file or an MLflow URI), writing `artifact`; `env` for
/// its process (the tracking URI).
fn convert(model: &str, features: &[&str], artifact: &Path, env: &[(&str, &str)]) {
    let out = Command::new(mlflow_python())
        .arg(repo().join("models/python/sklearn_to_isolake.py"))
        .args(["--model", model, "--features", &features.join(",")])
        .args(["--out", artifact.to_str().unwrap()])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_matches_sklearn(result: &Value, rows: usize) {
    assert_eq!(result["rows"], rows, "{result}");
    assert!(
        result["max_abs_diff"].as_f64().unwrap() <= 1e-12,
        "{result}"
    );
    assert_eq!(result["predict_agrees"], true, "{result}");
    assert_eq!(result["decision_agrees"], true, "{result}");
    assert!(result["flagged"].as_u64().unwrap() > 0, "{result}");
}

/// `data/samples/<name>.csv` as parquet (the label column dropped); returns it and the features.
fn sample_as_parquet(name: &str, dir: &Path) -> (PathBuf, Vec<String>) {
    let csv = repo().join(format!("data/samples/{name}.csv"));
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(csv))
        .unwrap()
        .finish()
        .unwrap()
        .drop("label")
        .unwrap();
    let features: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let cast: Vec<Column> = df
        .columns()
        .iter()
        .map(|c| c.cast(&DataType::Float64).unwrap())
        .collect();
    df = DataFrame::new_infer_height(cast).unwrap();
    let path = dir.join(format!("{name}.parquet"));
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    (path, features)
}

#[test]
fn converted_forests_score_like_scikit_learn_on_the_sample_sets() {
    let params = [
        (
            "cardio",
            r#"{"n_estimators": 100, "random_state": 3, "contamination": 0.1}"#,
        ),
        (
            "breastw",
            r#"{"n_estimators": 60, "random_state": 4, "max_features": 0.5, "max_samples": 0.4}"#,
        ),
    ];
    for (name, params) in params {
        let dir = tempfile::tempdir().unwrap();
        let (data, features) = sample_as_parquet(name, dir.path());
        let features: Vec<&str> = features.iter().map(String::as_str).collect();
        let (forest, artifact) = fit_and_convert(dir.path(), &data, &features, params);
        let registry = dir.path().join("registry");
        let registry = registry.to_str().unwrap();
        let uri = import(registry, &artifact, data.to_str().unwrap(), name);
        assert_eq!(uri, format!("models:/{name}/1"));
        let model = format!("models:/{name}@production");
        assert_scores_like_sklearn(registry, &model, &data, &forest, &features, dir.path());
    }
}

#[test]
fn an_import_whose_features_differ_from_the_flag_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = sample_as_parquet("breastw", dir.path());
    let features: Vec<&str> = features.iter().map(String::as_str).collect();
    let (_, artifact) = fit_and_convert(dir.path(), &data, &features, r#"{"random_state": 1}"#);
    let registry = dir.path().join("registry");
    let import = [
        "--import",
        artifact.to_str().unwrap(),
        "--input",
        data.to_str().unwrap(),
        "--registry",
        registry.to_str().unwrap(),
        "--features",
        &features[1..].join(","),
    ];
    let out = run("isolake-train", &import, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pass its features to --features"),
        "{stderr}"
    );
    assert!(!registry.join("models").exists(), "nothing registered");
}

#[test]
fn a_converted_forest_runs_in_the_pipeline_like_any_other_version() {
    let dir = tempfile::tempdir().unwrap();
    let table = labelled_table(dir.path(), "history", 3000, 21);
    let features = isolake_data::record::NUMERIC_FEATURES;
    let history = dir.path().join("history.parquet");
    let mut df = isolake_tests::lake::read_table(Path::new(&table));
    ParquetWriter::new(std::fs::File::create(&history).unwrap())
        .finish(&mut df)
        .unwrap();
    let params = r#"{"n_estimators": 80, "random_state": 5, "contamination": 0.02}"#;
    let (forest, artifact) = fit_and_convert(dir.path(), &history, &features, params);
    let registry = dir.path().join("registry");
    let registry = registry.to_str().unwrap();
    import(registry, &artifact, &table, "converted");

    let model =
        format!("[model]\nuri = \"models:/converted@production\"\nregistry = \"{registry}\"\n");
    let lake = Lake::new(&dir.path().join("pipeline"), "stability_ms = 1", &model);
    generate(&lake.landing(), 2000, 4, 22, 0.0);
    lake.run_once();
    let mut scored = lake.read("gold/scored_transactions");
    assert_eq!(scored.height(), lake.read("silver").height());
    let path = dir.path().join("pipeline-scored.parquet");
    let mut columns: Vec<&str> = features.to_vec();
    columns.extend(["anomaly_score", "is_anomaly"]);
    scored = scored.select(columns).unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut scored)
        .unwrap();
    let result = python_json(
        COMPARE,
        &[
            forest.to_str().unwrap(),
            path.to_str().unwrap(),
            &features.join(","),
        ],
    );
    assert_matches_sklearn(&result, scored.height());
}

/// Fits scikit-learn on the parquet file `train`, logs it with `mlflow.sklearn` as version 1
/// of `name` on the tracking server, and saves it with joblib at `out` for the comparison.
const LOG_SKLEARN: &str = r#"
import json, sys, joblib, mlflow, mlflow.sklearn, pandas as pd
from sklearn.ensemble import IsolationForest
train, tracking, name, out = sys.argv[1:5]
mlflow.set_tracking_uri(tracking)
x = pd.read_parquet(train).to_numpy(dtype="float64")
forest = IsolationForest(n_estimators=40, random_state=9, contamination=0.05).fit(x)
with mlflow.start_run():
    # MLflow 3 saves with skops, which loads a tree model only with its types trusted.
    mlflow.sklearn.log_model(forest, name="forest", registered_model_name=name,
                             skops_trusted_types=["sklearn.tree._tree.Tree"])
joblib.dump(forest, out)
print(json.dumps({"rows": len(x)}))
"#;

#[test]
fn a_forest_logged_with_mlflow_sklearn_converts_from_its_model_uri() {
    let server = MlflowServer::start(None);
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = sample_as_parquet("breastw", dir.path());
    let forest = dir.path().join("forest.joblib");
    let args = [
        data.to_str().unwrap(),
        &server.url,
        "sk",
        forest.to_str().unwrap(),
    ];
    python_json(LOG_SKLEARN, &args);
    let artifact = dir.path().join("model.isolake");
    let env = [("MLFLOW_TRACKING_URI", server.url.as_str())];
    let names: Vec<&str> = features.iter().map(String::as_str).collect();
    convert("models:/sk/1", &names, &artifact, &env);
    // Registered in the same MLflow server, next to the scikit-learn version it came from.
    let registry = server.url.as_str();
    let uri = import(registry, &artifact, data.to_str().unwrap(), "breastw");
    assert_eq!(uri, "models:/breastw/1");
    let features: Vec<&str> = features.iter().map(String::as_str).collect();
    let model = "models:/breastw@production";
    assert_scores_like_sklearn(registry, model, &data, &forest, &features, dir.path());
}
