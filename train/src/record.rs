//! Recording a training run in the registry: params, metrics, tags and artifacts, the
//! registered version, and the promotion behind its gates.

use isolake_data::input::Input;
use isolake_models::IsolationForest;
use isolake_models::mlflow_model::{MlflowModel, TAG_MLFLOW_MODEL_SHA256};
use isolake_models::registry::{
    ModelVersion, Registry, RunData, RunInfo, RunStatus, TAG_LOGGED_MODEL, TAG_RUN_KEY,
};
use serde_json::json;

use crate::error::{Error, Result};
use crate::histogram;
use crate::job::{
    Evaluation, FEATURE_SPEC_FILE, HISTOGRAM_PATH, MODEL_DIR, MODEL_FILE, Outcome, Progress,
    TrainConfig, TrainingSet,
};

/// Logs the run (params, metrics, artifacts), registers the version, promotes it if asked
/// and the gates pass, and ends the run with the right status.
pub(crate) fn log_and_register(
    config: &TrainConfig,
    registry: &Registry,
    progress: &dyn Progress,
    experiment_id: &str,
    data: &TrainingSet,
    model: &IsolationForest,
    evaluation: Evaluation,
) -> Result<Outcome> {
    let artifact = model.to_artifact_bytes()?;
    let mlflow = MlflowModel::new(model, MODEL_FILE, &data.feature_types, &data.matrix.values);
    let spec = feature_spec(config, model, evaluation.threshold);
    let png = histogram::render(&evaluation.anomaly, evaluation.threshold);
    progress.stage("logging the run");
    let mut tags = run_tags(config, data);
    tags.push(("isolake.model_fingerprint".into(), model.fingerprint()));
    let run_name = format!(
        "{}-{}",
        config.model_name,
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    let run = registry
        .backend()
        .create_run(experiment_id, &run_name, &tags)?;
    let result = (|| {
        let backend = registry.backend();
        let params = run_params(config, model);
        // Training table URI, Delta version, fingerprint...: the model's lineage.
        let mut version_tags = tags.clone();
        version_tags.retain(|(k, _)| k.starts_with("isolake."));
        let logged =
            backend.create_logged_model(&run, &config.model_name, &params, &version_tags)?;
        backend.log_batch(
            &run.run_id,
            &RunData {
                params,
                metrics: evaluation.metrics.clone(),
                tags: vec![],
                model_id: logged.as_ref().map(|m| m.id.clone()),
            },
        )?;
        progress.stage("uploading the artifacts");
        let files = model_files(&artifact, &spec, &mlflow);
        log_artifacts(registry, &run, &files, &png)?;
        version_tags.push((TAG_MLFLOW_MODEL_SHA256.into(), mlflow.checksum()));
        if let Some(logged) = &logged {
            backend.finalize_logged_model(&run, logged, &files)?;
            version_tags.push((TAG_LOGGED_MODEL.into(), logged.id.clone()));
        }
        progress.stage("registering the version");
        let (version, created) = registry.register_model(
            &config.model_name,
            &run,
            MODEL_DIR,
            MODEL_FILE,
            &artifact,
            &version_tags,
        )?;
        let promoted = match &config.promote {
            None => None,
            Some(alias) => Some(promote(
                config,
                registry,
                progress,
                &run,
                alias,
                &version,
                &evaluation,
            )?),
        };
        Ok::<_, Error>((version, created, promoted))
    })();
    match result {
        Ok((version, created, promoted)) => {
            registry
                .backend()
                .end_run(&run.run_id, RunStatus::Finished)?;
            Ok(Outcome {
                version,
                created,
                run_id: Some(run.run_id),
                metrics: evaluation.metrics,
                promoted,
                skipped: data.skipped.clone(),
            })
        }
        Err(e) => {
            // A gate failure is a finished run whose model was not promoted.
            let status = if matches!(e, Error::Gate { .. }) {
                RunStatus::Finished
            } else {
                RunStatus::Failed
            };
            let _ = registry.backend().end_run(&run.run_id, status);
            Err(e)
        }
    }
}

/// Moves `alias` to the new version if the gates pass (the refusal is tagged on the run);
/// returns the alias and the version it pointed at before.
fn promote(
    config: &TrainConfig,
    registry: &Registry,
    progress: &dyn Progress,
    run: &RunInfo,
    alias: &str,
    version: &ModelVersion,
    evaluation: &Evaluation,
) -> Result<(String, Option<u64>)> {
    let tag = |text: String| RunData {
        tags: vec![("isolake.promotion".into(), text)],
        ..RunData::default()
    };
    let (flag_rate, auc) = (evaluation.flag_rate, evaluation.auc);
    feature_gate(config, registry, alias, version)
        .and_then(|()| gates(config, alias, &version.uri(), flag_rate, auc))
        .inspect_err(|e| {
            let _ = registry
                .backend()
                .log_batch(&run.run_id, &tag(format!("refused: {e}")));
        })?;
    progress.stage("promoting");
    let previous = registry.promote(&config.model_name, alias, version.version)?;
    let text = format!("{} now points at version {}", alias, version.version);
    registry.backend().log_batch(&run.run_id, &tag(text))?;
    Ok((alias.to_string(), previous))
}

/// A version whose features differ from the one the alias points at would be refused by
/// every pipeline scoring with that alias (their silver may lack the new features): moving
/// the alias needs `--allow-feature-change`.
fn feature_gate(
    config: &TrainConfig,
    registry: &Registry,
    alias: &str,
    version: &ModelVersion,
) -> Result<()> {
    if config.allow_feature_change {
        return Ok(());
    }
    let Some(current) = registry.backend().get_alias(&config.model_name, alias)? else {
        return Ok(());
    };
    let spec = registry
        .backend()
        .download_artifact(&current, FEATURE_SPEC_FILE)?;
    let spec: serde_json::Value = serde_json::from_slice(&spec).unwrap_or_default();
    let before: Vec<&str> = spec["features"]
        .as_array()
        .map(|fs| fs.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default();
    if before
        == config
            .features
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    {
        return Ok(());
    }
    Err(Error::Gate {
        version_uri: version.uri(),
        alias: alias.to_string(),
        reason: format!(
            "its features ({}) differ from those of {} ({}), which @{alias} points at: \
             pipelines scoring with @{alias} may lack them; pass --allow-feature-change to \
             move the alias anyway",
            config.features.join(", "),
            current.uri(),
            before.join(", ")
        ),
    })
}

fn gates(
    config: &TrainConfig,
    alias: &str,
    version_uri: &str,
    flag_rate: f64,
    auc: Option<f64>,
) -> Result<()> {
    let fail = |reason: String| {
        Err(Error::Gate {
            version_uri: version_uri.to_string(),
            alias: alias.to_string(),
            reason,
        })
    };
    if flag_rate > config.max_flag_rate {
        return fail(format!(
            "the model flags {:.4} of the training rows, over --max-flag-rate {}",
            flag_rate, config.max_flag_rate
        ));
    }
    if let Some(auc) = auc {
        if auc.is_nan() {
            return fail(
                "AUC is undefined: the label column has a single class; drop --label-column \
                 or train on data with both classes"
                    .into(),
            );
        }
        if auc < config.min_auc {
            return fail(format!(
                "AUC {auc:.4} is below --min-auc {}",
                config.min_auc
            ));
        }
    }
    Ok(())
}

fn run_tags(config: &TrainConfig, data: &TrainingSet) -> Vec<(String, String)> {
    let mut tags = vec![
        ("mlflow.source.name".into(), "isolake-train".into()),
        ("mlflow.source.type".into(), "JOB".into()),
        ("isolake.input".into(), config.input.describe()),
        ("isolake.version".into(), env!("CARGO_PKG_VERSION").into()),
    ];
    if let Some(uri) = &data.table_uri {
        tags.push(("isolake.training_table".into(), uri.clone()));
    }
    if let Some(v) = data.delta_version {
        tags.push(("isolake.delta_version".into(), v.to_string()));
    }
    if let Some(key) = &config.run_key {
        tags.push((TAG_RUN_KEY.into(), key.clone()));
    }
    if let Some(path) = &config.import {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        tags.push(("isolake.imported_from".into(), name.into_owned()));
    }
    if let Some(commit) = git_commit() {
        tags.push(("mlflow.source.git.commit".into(), commit));
    }
    tags
}

/// The git commit of the working directory, if it is a git checkout and git is installed.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && commit.len() == 40).then_some(commit)
}

fn run_params(config: &TrainConfig, model: &IsolationForest) -> Vec<(String, String)> {
    let h = model.metadata().hyperparameters.clone();
    let mut params = vec![
        ("n_estimators".into(), h.n_estimators().to_string()),
        ("max_samples".into(), format!("{:?}", h.max_samples())),
        ("max_features".into(), format!("{:?}", h.max_features())),
        ("contamination".into(), format!("{:?}", h.contamination())),
        ("extension_level".into(), h.extension_level().to_string()),
        (
            "seed".into(),
            h.seed().map_or_else(|| "none".into(), |s| s.to_string()),
        ),
        (
            "samples_per_tree".into(),
            model.samples_per_tree().to_string(),
        ),
        ("features".into(), config.features.join(",")),
        ("input".into(), config.input.describe()),
        ("max_flag_rate".into(), config.max_flag_rate.to_string()),
        ("min_auc".into(), config.min_auc.to_string()),
    ];
    if let Input::Delta {
        version: Some(v), ..
    } = &config.input
    {
        params.push(("input_version".into(), v.to_string()));
    }
    if let Some(since) = config.since {
        params.push((
            "since".into(),
            humantime::format_duration(since).to_string(),
        ));
    }
    if let Some(label) = &config.label_column {
        params.push(("label_column".into(), label.clone()));
    }
    if let Some(alias) = &config.promote {
        params.push(("promote".into(), alias.clone()));
    }
    params
}

/// The feature spec: what a scorer must feed the model.
fn feature_spec(config: &TrainConfig, model: &IsolationForest, threshold: f64) -> Vec<u8> {
    let spec = json!({
        "features": config.features.iter().map(|f| json!({"name": f, "dtype": "float64"})).collect::<Vec<_>>(),
        "score": "anomaly_score = -score_samples, in (0, 1], higher = more anomalous",
        "threshold": threshold,
        "offset": model.offset(),
        "model_file": MODEL_FILE,
        "fingerprint": model.fingerprint(),
        "training_data": model.metadata().training_data.as_ref().map(|t| json!({"table_uri": t.table_uri, "delta_version": t.delta_version})),
    });
    let mut bytes = serde_json::to_vec_pretty(&spec).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The files of the model directory (`model/`), by their path in it: the artifact, its
/// feature spec and the MLflow model around them.
fn model_files(artifact: &[u8], spec: &[u8], mlflow: &MlflowModel) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        (MODEL_FILE.to_string(), artifact.to_vec()),
        (FEATURE_SPEC_FILE.to_string(), spec.to_vec()),
    ];
    files.extend(
        mlflow
            .files()
            .iter()
            .map(|(f, b)| (f.to_string(), b.clone())),
    );
    files
}

fn log_artifacts(
    registry: &Registry,
    run: &RunInfo,
    model_files: &[(String, Vec<u8>)],
    png: &[u8],
) -> Result<()> {
    let b = registry.backend();
    for (file, bytes) in model_files {
        b.log_artifact(run, &format!("{MODEL_DIR}/{file}"), bytes)?;
    }
    b.log_artifact(run, HISTOGRAM_PATH, png)?;
    Ok(())
}
