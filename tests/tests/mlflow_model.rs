//! Every registered version is an MLflow model (issue 21): `mlflow.pyfunc.load_model` loads it
//! with the loader it ships (pure Python + numpy) and predicts exactly isolake-score's
//! `anomaly_score` and `is_anomaly`, for the classic and the extended forest, rows with a
//! missing feature included; a tampered `MLmodel` or loader is refused by isolake.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use isolake_tests::mlflow::{MlflowServer, mlflow2, python_json};
use isolake_tests::registry::{labelled_table, ok, score, train};
use polars::prelude::*;
use serde_json::Value;

/// Loads `model` (a model directory or a `models:/` URI, with `tracking` as the tracking
/// URI) with `mlflow.pyfunc`, predicts on the parquet file `input` and compares with
/// isolake-score's `scored` parquet file row by row.
const COMPARE: &str = r#"
import json, sys
import mlflow, numpy as np, pandas as pd
model_uri, tracking, input_path, scored_path = sys.argv[1:5]
if tracking:
    mlflow.set_tracking_uri(tracking)
model = mlflow.pyfunc.load_model(model_uri)
features = [c["name"] for c in model.metadata.get_input_schema().to_dict()]
frame = pd.read_parquet(input_path)
predicted = model.predict(frame[features])  # the types the training rows had
scored = pd.read_parquet(scored_path)
got, want = predicted["anomaly_score"].to_numpy(), scored["anomaly_score"].to_numpy(dtype="float64", na_value=np.nan)
nulls = np.isnan(want)
print(json.dumps({
    "rows": int(len(frame)),
    "null_rows": int(nulls.sum()),
    "same_nulls": bool((np.isnan(got) == nulls).all()),
    "max_abs_diff": float(np.abs(got[~nulls] - want[~nulls]).max()),
    "flags_equal": bool((predicted["is_anomaly"][~nulls].astype(bool).to_numpy()
                         == scored["is_anomaly"][~nulls].astype(bool).to_numpy()).all()),
    "flagged": int(scored["is_anomaly"][~nulls].astype(bool).sum()),
    "loader": sorted(model.metadata.flavors["python_function"].keys()),
    "types": {c["name"]: c["type"] for c in model.metadata.get_input_schema().to_dict()},
}))
"#;

/// What MLflow 3 records of version 1 of `name`: its logged model, with params, linked
/// metrics, lineage tags and artifacts.
const LOGGED: &str = r#"
import json, sys, mlflow
from mlflow import MlflowClient
tracking, name = sys.argv[1:3]
mlflow.set_tracking_uri(tracking)
client = MlflowClient()
version = client.get_model_version(name, "1")
model_id = version.tags["isolake.logged_model_id"]
model = mlflow.get_logged_model(model_id)
artifacts = mlflow.artifacts.list_artifacts(artifact_uri=model.artifact_location)
print(json.dumps({
    "model_id": model_id,
    "versions": json.loads(model.tags.get("mlflow.modelVersions", "[]")),
    "status": str(model.status),
    "source_run_id": model.source_run_id,
    "run_id": version.run_id,
    "params": model.params,
    "metrics": sorted({m.key for m in model.metrics}),
    "tags": {k: v for k, v in model.tags.items() if k.startswith("isolake.")},
    "artifacts": sorted(a.path for a in artifacts),
}))
"#;

fn compare(model: &str, tracking: &str, input: &Path, scored: &Path) -> Value {
    let args = [
        model,
        tracking,
        input.to_str().unwrap(),
        scored.to_str().unwrap(),
    ];
    python_json(COMPARE, &args)
}

/// The file called `name` under `dir` whose path contains `part` (in a server's artifacts).
fn find_file(dir: &Path, part: &str, name: &str) -> PathBuf {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == name)
                && path.to_string_lossy().contains(part)
            {
                return path;
            }
        }
    }
    panic!("no {name} under {} for {part}", dir.display())
}

/// The table's rows as parquet, with `amount` missing in every 17th row.
fn input_with_gaps(table: &str, out: &Path) -> PathBuf {
    let mut df = isolake_tests::lake::read_table(Path::new(table));
    let amount: Vec<Option<f64>> = df
        .column("amount")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 17 == 0 { None } else { v })
        .collect();
    df.with_column(Column::new("amount".into(), amount))
        .unwrap();
    let path = out.join("input.parquet");
    let mut file = std::fs::File::create(&path).unwrap();
    ParquetWriter::new(&mut file).finish(&mut df).unwrap();
    path
}

fn assert_same_scores(result: &Value, rows: usize) {
    assert_eq!(result["rows"], rows, "{result}");
    assert_eq!(result["null_rows"], rows.div_ceil(17), "{result}");
    assert_eq!(result["same_nulls"], true, "{result}");
    assert!(
        result["max_abs_diff"].as_f64().unwrap() <= 1e-12,
        "{result}"
    );
    assert_eq!(result["flags_equal"], true, "{result}");
    assert!(result["flagged"].as_u64().unwrap() > 0, "{result}");
    // The signature has the training rows' types, so their frame passes MLflow's checks.
    assert_eq!(result["types"]["quantity"], "long", "{result}");
    assert_eq!(result["types"]["amount"], "double", "{result}");
}

/// The model directory of version `version` of `name` in a local registry.
fn local_model_dir(registry: &Path, name: &str, version: u64) -> PathBuf {
    let models = registry.join("models").join(name).join("versions");
    let record = models.join(version.to_string()).join("version.json");
    let record: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    // A local version's source is relative to the registry's root.
    registry.join(record["source"].as_str().unwrap())
}

#[test]
fn pyfunc_predicts_isolake_scores_for_classic_and_extended_forests() {
    let dir = tempfile::tempdir().unwrap();
    let table = labelled_table(dir.path(), "silver", 3000, 11);
    let input = input_with_gaps(&table, dir.path());
    let registry = dir.path().join("registry");
    let registry = registry.to_str().unwrap();
    for (version, extra) in [(1, "0"), (2, "2")] {
        let args = ["--extension-level", extra];
        assert_eq!(
            ok(&train(registry, &table, "fraud", &args, &[])),
            format!("models:/fraud/{version}")
        );
        let uri = format!("models:/fraud/{version}");
        let scored = dir.path().join(format!("scored-{version}.parquet"));
        let cache = dir.path().join("cache");
        ok(&score(
            registry,
            &uri,
            input.to_str().unwrap(),
            &scored,
            &cache,
            &[],
        ));
        let model_dir = local_model_dir(Path::new(registry), "fraud", version);
        let result = compare(model_dir.to_str().unwrap(), "", &input, &scored);
        assert_same_scores(&result, 3000);
        assert_eq!(
            result["loader"],
            serde_json::json!(["code", "data", "env", "loader_module"])
        );
    }
}

#[test]
fn models_uri_on_a_real_mlflow_server_loads_with_pyfunc() {
    let server = MlflowServer::start(None);
    let dir = tempfile::tempdir().unwrap();
    let table = labelled_table(dir.path(), "silver", 3000, 12);
    let input = input_with_gaps(&table, dir.path());
    ok(&train(
        &server.url,
        &table,
        "fraud-py",
        &["--promote", "production"],
        &[],
    ));
    let scored = dir.path().join("scored.parquet");
    let cache = dir.path().join("cache");
    let uri = "models:/fraud-py@production";
    ok(&score(
        &server.url,
        uri,
        input.to_str().unwrap(),
        &scored,
        &cache,
        &[],
    ));
    assert_same_scores(&compare(uri, &server.url, &input, &scored), 3000);

    // MLflow 3: the version comes from a logged model holding the run's params, its linked
    // metrics, the lineage and the model files, so it loads by its own id too.
    let logged = python_json(LOGGED, &[server.url.as_str(), "fraud-py"]);
    assert!(
        logged["status"].as_str().unwrap().contains("READY"),
        "{logged}"
    );
    assert_eq!(logged["source_run_id"], logged["run_id"], "{logged}");
    assert_eq!(logged["params"]["n_estimators"], "50", "{logged}");
    // The logged model lists the version registered from it (MLflow's UI link).
    let versions = &logged["versions"];
    assert_eq!(
        versions,
        &serde_json::json!([{"name": "fraud-py", "version": 1}]),
        "{logged}"
    );
    let metrics = logged["metrics"].as_array().unwrap();
    for metric in ["auc", "rows", "flagged_fraction"] {
        assert!(metrics.contains(&Value::from(metric)), "{metric}: {logged}");
    }
    let training_table = logged["tags"]["isolake.training_table"].as_str().unwrap();
    assert!(training_table.ends_with("silver/"), "{logged}");
    assert_eq!(logged["tags"]["isolake.delta_version"], "2", "{logged}");
    let artifacts = logged["artifacts"].as_array().unwrap();
    for file in ["MLmodel", "model.isolake", "feature_spec.json", "code"] {
        let listed = Value::from(format!("artifacts/{file}"));
        assert!(artifacts.contains(&listed), "{file}: {logged}");
    }
    let by_id = format!("models:/{}", logged["model_id"].as_str().unwrap());
    assert_same_scores(&compare(&by_id, &server.url, &input, &scored), 3000);

    // A loader tampered with in the server's artifact store is refused too.
    let model_id = logged["model_id"].as_str().unwrap();
    let loader = find_file(server.dir.path(), model_id, "isolake_pyfunc.py");
    let mut bytes = std::fs::read(&loader).unwrap();
    bytes.extend_from_slice(b"\nimport os  # tampered\n");
    std::fs::write(&loader, bytes).unwrap();
    let tampered = dir.path().join("tampered.parquet");
    let out = score(
        &server.url,
        uri,
        input.to_str().unwrap(),
        &tampered,
        &cache,
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("refusing to load it"), "{stderr}");
}

#[test]
fn a_tampered_mlmodel_or_loader_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let table = labelled_table(dir.path(), "silver", 1000, 13);
    let registry = dir.path().join("registry");
    let registry_str = registry.to_str().unwrap();
    ok(&train(registry_str, &table, "fraud", &[], &[]));
    let model_dir = local_model_dir(&registry, "fraud", 1);
    for file in ["MLmodel", "code/isolake_pyfunc.py"] {
        let path = model_dir.join(file);
        let original = std::fs::read(&path).unwrap();
        let mut tampered = original.clone();
        tampered.extend_from_slice(b"\n# tampered\n");
        std::fs::write(&path, &tampered).unwrap();
        let out = score(
            registry_str,
            "models:/fraud/1",
            &table,
            &dir.path().join("x.parquet"),
            &dir.path().join("cache"),
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{file}: {stderr}");
        assert!(stderr.contains("refusing to load it"), "{file}: {stderr}");
        std::fs::write(&path, &original).unwrap();
        let out = score(
            registry_str,
            "models:/fraud/1",
            &table,
            &dir.path().join(format!("ok-{}.parquet", file.len())),
            &dir.path().join("cache"),
            &[],
        );
        ok(&out);
    }
}

/// An MLflow 2 server has no logged models: the version is registered from the run's
/// artifacts as before, and it scores and loads like any other.
#[test]
fn an_mlflow_2_server_registers_from_the_run_as_before() {
    let server = MlflowServer::start_with(&mlflow2(), None);
    let dir = tempfile::tempdir().unwrap();
    let table = labelled_table(dir.path(), "silver", 2000, 14);
    let input = input_with_gaps(&table, dir.path());
    let uri = ok(&train(
        &server.url,
        &table,
        "fraud-2",
        &["--promote", "production"],
        &[],
    ));
    assert_eq!(uri, "models:/fraud-2/1");
    let version: Value = reqwest::blocking::get(format!(
        "{}/api/2.0/mlflow/model-versions/get?name=fraud-2&version=1",
        server.url
    ))
    .unwrap()
    .json()
    .unwrap();
    let version = &version["model_version"];
    let run_id = version["run_id"].as_str().unwrap();
    let source = version["source"].as_str().unwrap();
    assert!(
        source.ends_with(&format!("{run_id}/artifacts/model")),
        "{version}"
    );
    let tags = version["tags"].as_array().unwrap();
    assert!(
        !tags.iter().any(|t| t["key"] == "isolake.logged_model_id"),
        "{version}"
    );
    let scored = dir.path().join("scored.parquet");
    let cache = dir.path().join("cache");
    let alias = "models:/fraud-2@production";
    ok(&score(
        &server.url,
        alias,
        input.to_str().unwrap(),
        &scored,
        &cache,
        &[],
    ));
    // Loaded by MLflow 3's pyfunc from the MLflow 2 server: the same scores.
    let result = compare(alias, &server.url, &input, &scored);
    assert_eq!(result["rows"], 2000, "{result}");
    assert!(
        result["max_abs_diff"].as_f64().unwrap() <= 1e-12,
        "{result}"
    );
    assert_eq!(result["flags_equal"], true, "{result}");
}
