//! One training run: read, fit, evaluate, log, register, promote.
//!
//! The order matters for what a failure leaves behind: the registry is contacted first
//! (a run key already used, or an unreachable server, stops the job before any work); the
//! run is created only once a model exists; the version is registered only after all its
//! artifacts are stored; the alias moves last, and only if every gate passed.

use std::time::Instant;

use isolake_data::input::{self, FeatureMatrix, Input, Skipped};
use isolake_data::polars::prelude::*;
use isolake_models::mlflow_model::ColumnType;
use isolake_models::registry::{ModelVersion, Registry};
use isolake_models::{Contamination, IsolationForest, MaxFeatures, MaxSamples, TrainingDataRef};
use linfa::ParamGuard;

use crate::error::{Error, Result};
use crate::metrics;

/// Artifact directory of the model inside the run (the version's source).
pub const MODEL_DIR: &str = "model";
/// The model artifact's file name.
pub const MODEL_FILE: &str = "model.isolake";
/// The feature spec's file name (next to the model).
pub const FEATURE_SPEC_FILE: &str = "feature_spec.json";
/// The score histogram's path in the run's artifacts.
pub const HISTOGRAM_PATH: &str = "plots/score_histogram.png";

/// Forest hyperparameters as given on the command line.
#[derive(Clone, Debug)]
pub struct Hyper {
    /// Trees.
    pub n_estimators: usize,
    /// ψ.
    pub max_samples: MaxSamples,
    /// Features per tree.
    pub max_features: MaxFeatures,
    /// Expected anomaly share (sets the threshold).
    pub contamination: Contamination,
    /// 0 = classic forest.
    pub extension_level: usize,
    /// Seed (random if `None`; the model records the one used).
    pub seed: Option<u64>,
}

/// Everything a training run needs.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// What to read.
    pub input: Input,
    /// Keep rows whose event time is within this window before now.
    pub since: Option<std::time::Duration>,
    /// The event-time column `since` filters on.
    pub event_time_column: String,
    /// Feature columns, in model order.
    pub features: Vec<String>,
    /// Hyperparameters.
    pub hyper: Hyper,
    /// Experiment name.
    pub experiment: String,
    /// Registered model name.
    pub model_name: String,
    /// Optional label column (1 = anomaly), for evaluation only.
    pub label_column: Option<String>,
    /// Alias to move to the new version if the gates pass.
    pub promote: Option<String>,
    /// Gate: largest share of training rows the model may flag.
    pub max_flag_rate: f64,
    /// Gate: smallest AUC when labels exist.
    pub min_auc: f64,
    /// Let `--promote` move an alias to a version with other features than the one it
    /// replaces (refused by default).
    pub allow_feature_change: bool,
    /// Idempotency key of a scheduled run.
    pub run_key: Option<String>,
    /// Register this artifact instead of fitting a forest (e.g. a scikit-learn forest
    /// converted by `models/python/sklearn_to_isolake.py`): it is evaluated on the input and
    /// passes the same gates as a trained one.
    pub import: Option<std::path::PathBuf>,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The version registered (or found through the run key).
    pub version: ModelVersion,
    /// `false` when the run key had already registered it: nothing was trained.
    pub created: bool,
    /// The run's id (`None` when nothing was trained).
    pub run_id: Option<String>,
    /// Headline metrics.
    pub metrics: Vec<(String, f64)>,
    /// The alias moved, and the version it pointed at before.
    pub promoted: Option<(String, Option<u64>)>,
    /// Malformed NDJSON lines the input had (skipped, counted, the first few named).
    pub skipped: Skipped,
}

/// Reports progress (a spinner on a terminal, nothing otherwise).
pub trait Progress {
    /// A new stage began.
    fn stage(&self, message: &str);
}

impl Progress for () {
    fn stage(&self, _: &str) {}
}

/// Training rows after filtering and feature extraction.
pub(crate) struct TrainingSet {
    pub(crate) matrix: FeatureMatrix,
    /// Each feature's type in the input (for the MLflow signature).
    pub(crate) feature_types: Vec<ColumnType>,
    pub(crate) labels: Option<Vec<bool>>,
    pub(crate) rows_read: usize,
    pub(crate) table_uri: Option<String>,
    pub(crate) delta_version: Option<u64>,
    /// Malformed NDJSON lines skipped while reading.
    pub(crate) skipped: Skipped,
}

/// Runs the job. On any error after the run was created, the run is marked FAILED.
pub fn run(config: &TrainConfig, registry: &Registry, progress: &dyn Progress) -> Result<Outcome> {
    validate(config)?;
    if let Some(key) = &config.run_key {
        progress.stage("checking the run key");
        if let Some(v) = registry.version_for_run_key(&config.model_name, key)? {
            return Ok(Outcome {
                version: v,
                created: false,
                run_id: None,
                metrics: vec![],
                promoted: None,
                skipped: Skipped::default(),
            });
        }
    }
    // Contact the registry before the work: an unreachable server fails fast.
    progress.stage("opening the experiment");
    let experiment_id = registry
        .backend()
        .get_or_create_experiment(&config.experiment)?;
    progress.stage("reading the training data");
    let data = read_training_set(config)?;
    let n = data.matrix.scorable_rows();
    if n < 2 {
        return Err(Error::Usage(format!(
            "only {n} usable training row(s) in {} ({} read; rows with a null, non-numeric or \
             non-finite feature are skipped): widen --since or check --features",
            config.input.describe(),
            data.rows_read
        )));
    }
    let (model, fit_seconds) = match &config.import {
        Some(path) => {
            progress.stage("loading the imported model");
            (imported(config, &data, path)?, 0.0)
        }
        None => {
            progress.stage("fitting the forest");
            fit(config, &data)?
        }
    };
    progress.stage("scoring the training rows");
    let evaluation = evaluate(&model, &data, fit_seconds)?;
    crate::record::log_and_register(
        config,
        registry,
        progress,
        &experiment_id,
        &data,
        &model,
        evaluation,
    )
}

/// Fits the forest on the training set; returns it and the seconds it took.
fn fit(config: &TrainConfig, data: &TrainingSet) -> Result<(IsolationForest, f64)> {
    let started = Instant::now();
    let params = check_params(&config.hyper)?;
    let mut model = params.fit_named(&data.matrix.view(), config.features.clone())?;
    let fit_seconds = started.elapsed().as_secs_f64();
    if let (Some(table_uri), Some(delta_version)) = (&data.table_uri, data.delta_version) {
        model.set_training_data(TrainingDataRef {
            table_uri: table_uri.clone(),
            delta_version,
        });
    }
    Ok((model, fit_seconds))
}

/// The artifact at `path`, which must score the configured features, in their order.
fn imported(
    config: &TrainConfig,
    data: &TrainingSet,
    path: &std::path::Path,
) -> Result<IsolationForest> {
    let mut model = IsolationForest::load(path)?;
    if model.feature_names() != config.features.as_slice() {
        return Err(Error::Usage(format!(
            "{} scores the features {:?}, not {:?}: pass its features to --features, in its order",
            path.display(),
            model.feature_names(),
            config.features
        )));
    }
    if model.metadata().training_data.is_none()
        && let (Some(table_uri), Some(delta_version)) = (&data.table_uri, data.delta_version)
    {
        model.set_training_data(TrainingDataRef {
            table_uri: table_uri.clone(),
            delta_version,
        });
    }
    Ok(model)
}

/// What the model does on its own training rows.
pub(crate) struct Evaluation {
    /// Anomaly scores (`-score_samples`) of the training rows.
    pub(crate) anomaly: Vec<f64>,
    pub(crate) threshold: f64,
    pub(crate) flag_rate: f64,
    pub(crate) auc: Option<f64>,
    pub(crate) metrics: Vec<(String, f64)>,
}

/// Scores the training rows: flagged share, score quantiles, AUC with labels.
fn evaluate(model: &IsolationForest, data: &TrainingSet, fit_seconds: f64) -> Result<Evaluation> {
    let n = data.matrix.scorable_rows();
    let raw = model.score_samples(&data.matrix.view())?;
    let anomaly: Vec<f64> = raw.iter().map(|s| -s).collect();
    let threshold = -model.offset();
    let flagged = raw.iter().filter(|s| **s - model.offset() < 0.0).count();
    let flag_rate = flagged as f64 / n as f64;
    let mut sorted = anomaly.clone();
    sorted.sort_by(f64::total_cmp);
    let mut metric_list: Vec<(String, f64)> = vec![
        ("rows".into(), n as f64),
        ("rows_read".into(), data.rows_read as f64),
        ("rows_skipped".into(), (data.rows_read - n) as f64),
        ("lines_malformed".into(), data.skipped.count as f64),
        ("fit_seconds".into(), fit_seconds),
        ("threshold".into(), threshold),
        ("flagged_fraction".into(), flag_rate),
    ];
    for (name, q) in [
        ("score_p01", 0.01),
        ("score_p05", 0.05),
        ("score_p25", 0.25),
        ("score_p50", 0.5),
        ("score_p75", 0.75),
        ("score_p95", 0.95),
        ("score_p99", 0.99),
    ] {
        metric_list.push((name.into(), metrics::quantile(&sorted, q)));
    }
    let auc = data.labels.as_ref().map(|labels| {
        let auc = metrics::roc_auc(&anomaly, labels);
        metric_list.push(("auc".into(), auc));
        metric_list.push((
            "average_precision".into(),
            metrics::average_precision(&anomaly, labels),
        ));
        metric_list.push((
            "label_positive_fraction".into(),
            labels.iter().filter(|l| **l).count() as f64 / n as f64,
        ));
        auc
    });
    Ok(Evaluation {
        anomaly,
        threshold,
        flag_rate,
        auc,
        metrics: metric_list,
    })
}

fn validate(config: &TrainConfig) -> Result<()> {
    if config.features.is_empty() {
        return Err(Error::Usage("--features is empty".into()));
    }
    if !(0.0..=1.0).contains(&config.max_flag_rate) {
        return Err(Error::Usage("--max-flag-rate must be in [0, 1]".into()));
    }
    if !(0.0..=1.0).contains(&config.min_auc) {
        return Err(Error::Usage("--min-auc must be in [0, 1]".into()));
    }
    if let Some(key) = &config.run_key
        && (key.is_empty() || key.contains(['\'', '\\', '`']))
    {
        return Err(Error::Usage(
            "--run-key must be non-empty, without quotes, backticks or backslashes".into(),
        ));
    }
    Ok(())
}

/// The MLflow column type of a polars type (isolake reads every feature as a double).
fn column_type(dtype: &DataType) -> ColumnType {
    match dtype {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            ColumnType::Integer
        }
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => ColumnType::Long,
        DataType::Float32 => ColumnType::Float,
        DataType::Boolean => ColumnType::Boolean,
        DataType::String => ColumnType::String,
        _ => ColumnType::Double,
    }
}

/// Reads the input, applies `--since`, extracts features and labels.
fn read_training_set(config: &TrainConfig) -> Result<TrainingSet> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    let opened = runtime.block_on(input::open(&config.input))?;
    drop(runtime);
    let mut frames = opened
        .frames
        .into_iter()
        .map(|lf| lf.collect())
        .collect::<PolarsResult<Vec<_>>>()?;
    // A file whose every line was malformed gives a frame without columns.
    frames.retain(|f| f.width() > 0);
    let mut df = match frames.len() {
        0 => return Err(Error::Usage("the input has no data".into())),
        1 => frames.into_iter().next().unwrap_or_default(),
        _ => concat(
            frames.into_iter().map(IntoLazy::lazy).collect::<Vec<_>>(),
            UnionArgs {
                to_supertypes: true,
                ..Default::default()
            },
        )?
        .collect()?,
    };
    if let Some(window) = config.since {
        df = filter_since(df, &config.event_time_column, window)?;
    }
    let rows_read = df.height();
    let matrix = FeatureMatrix::extract(&df, &config.features)?;
    // The MLflow signature names the types the training rows had, as MLflow's own
    // `infer_signature` would: a scorer's frame of the same shape then passes its checks.
    let feature_types = config
        .features
        .iter()
        .map(|f| {
            df.column(f)
                .map_or(ColumnType::Double, |c| column_type(c.dtype()))
        })
        .collect();
    let labels = match &config.label_column {
        None => None,
        Some(name) => {
            let column = df
                .column(name)
                .map_err(|_| {
                    Error::Usage(format!(
                        "--label-column {name:?} is not a column of the input"
                    ))
                })?
                .as_materialized_series()
                .cast(&DataType::Float64)?;
            let values = column.f64()?;
            Some(
                values
                    .iter()
                    .zip(&matrix.valid)
                    .filter(|(_, ok)| **ok)
                    .map(|(v, _)| v.is_some_and(|v| v > 0.5))
                    .collect(),
            )
        }
    };
    Ok(TrainingSet {
        matrix,
        feature_types,
        labels,
        rows_read,
        table_uri: opened.table_uri,
        delta_version: opened.delta_version,
        skipped: opened.skipped,
    })
}

/// Keeps rows with `column >= now - window`: a timestamp column, or RFC 3339 strings
/// (as landed NDJSON has them; UTC with `Z` compares correctly as text).
fn filter_since(df: DataFrame, column: &str, window: std::time::Duration) -> Result<DataFrame> {
    let cutoff = chrono::Utc::now()
        - chrono::Duration::from_std(window)
            .map_err(|_| Error::Usage("--since is too long".into()))?;
    let dtype = df
        .column(column)
        .map_err(|_| {
            Error::Usage(format!(
                "--since filters on {column:?}, which is not a column of the input; set \
                 --event-time-column"
            ))
        })?
        .dtype()
        .clone();
    let bound = match &dtype {
        DataType::Datetime(unit, _) => {
            let us = cutoff.timestamp_micros();
            let v = match unit {
                TimeUnit::Milliseconds => us / 1000,
                TimeUnit::Microseconds => us,
                TimeUnit::Nanoseconds => us.saturating_mul(1000),
            };
            lit(v).cast(dtype.clone())
        }
        DataType::String => lit(cutoff
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .to_string()),
        other => {
            return Err(Error::Usage(format!(
                "--since needs {column:?} to be a timestamp or RFC 3339 text, not {other}"
            )));
        }
    };
    Ok(df.lazy().filter(col(column).gt_eq(bound)).collect()?)
}

/// Checked hyperparameters (invalid values are usage errors, exit 2).
fn check_params(h: &Hyper) -> Result<isolake_models::IsolationForestValidParams> {
    Ok(IsolationForest::params()
        .n_estimators(h.n_estimators)
        .max_samples(h.max_samples)
        .max_features(h.max_features)
        .contamination(h.contamination)
        .extension_level(h.extension_level)
        .seed(h.seed)
        .check()?)
}
