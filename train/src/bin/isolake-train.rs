//! `isolake-train`: fits an isolation forest, logs the run, registers and promotes a version.
//!
//! Prints the registered model URI (`models:/NAME/VERSION`) on stdout. Exit codes: 0 ok,
//! 2 bad input or configuration, 3 registry unreachable or refused, 4 a promotion gate
//! failed (the version is registered, the alias did not move).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use isolake_data::input::Input;
use isolake_data::record::{EVENT_TIME, NUMERIC_FEATURES};
use isolake_models::registry::DEFAULT_LOCAL;
use isolake_models::{Contamination, IsolationForest, MaxFeatures, MaxSamples, Registry};
use isolake_train::{Error, Hyper, Progress, TrainConfig};

/// Fit an isolation forest on a Delta table or files, log the run, register a model version
/// and optionally promote it behind gates.
#[derive(Debug, Parser)]
#[command(
    name = "isolake-train",
    version,
    disable_version_flag = true,
    after_help = "Examples:\n  \
        isolake-train --input lake/silver --model-name fraud --promote production\n  \
        isolake-train --input lake/silver --since 7d --alert-rate 0.005 --model-name fraud \\\n      \
        --promote production --run-key 2026-12-01\n  \
        isolake-train --input landing/ --features amount,quantity --registry http://127.0.0.1:5000"
)]
struct Args {
    /// Input: a Delta table directory, or CSV / Parquet / NDJSON files or directories.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<String>,
    /// Delta table version to train on (default: the latest).
    #[arg(long)]
    version: Option<u64>,
    /// Only rows whose event time is within this window before now, e.g. 7d, 12h.
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// The event-time column --since filters on.
    #[arg(long, default_value = EVENT_TIME)]
    event_time_column: String,
    /// Feature columns, comma-separated (default: the canonical record's numeric fields).
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// Trees in the forest.
    #[arg(long, default_value_t = 100)]
    n_estimators: usize,
    /// Rows per tree: auto (min(256, n)), a count, or a fraction in (0, 1].
    #[arg(long, default_value = "auto", value_parser = parse_max_samples)]
    max_samples: MaxSamples,
    /// Features per tree: all, a count, or a fraction in (0, 1].
    #[arg(long, default_value = "all", value_parser = parse_max_features)]
    max_features: MaxFeatures,
    /// The alert budget: flag this share of the training rows (the threshold is the score of
    /// the top share), a fraction in (0, 0.5]. Default 0.01: the top 1%.
    #[arg(long, conflicts_with = "contamination")]
    alert_rate: Option<f64>,
    /// scikit-learn's name for the same knob: auto (its fixed 0.5 offset, which flags ~10% of
    /// ordinary data) or a fraction in (0, 0.5]. Default: --alert-rate's.
    #[arg(long, value_parser = parse_contamination)]
    contamination: Option<Contamination>,
    /// 0 = classic forest; higher = extended isolation forest (hyperplane splits).
    #[arg(long, default_value_t = 0)]
    extension_level: usize,
    /// Random seed (default: random; the model records it).
    #[arg(long)]
    seed: Option<u64>,
    /// Registry: a local path, file:// URL or http(s):// MLflow server. Default:
    /// $MLFLOW_TRACKING_URI, else ./lake/_registry.
    #[arg(long)]
    registry: Option<String>,
    /// Experiment to log the run in.
    #[arg(long, default_value = "isolake")]
    experiment: String,
    /// Registered model name.
    #[arg(long, default_value = "isolake-fraud")]
    model_name: String,
    /// Label column (1 = anomaly), used only to evaluate (AUC, average precision).
    #[arg(long)]
    label_column: Option<String>,
    /// Move this alias (e.g. production) to the new version if every gate passes.
    #[arg(long)]
    promote: Option<String>,
    /// Gate: the largest share of training rows the model may flag (above --alert-rate, so a
    /// model whose threshold lands as asked passes; ties can flag a little more).
    #[arg(long, default_value_t = 0.1)]
    max_flag_rate: f64,
    /// Let --promote move the alias to a version whose features differ from the version it
    /// points at (pipelines scoring with the alias may lack the new features).
    #[arg(long)]
    allow_feature_change: bool,
    /// Gate: the smallest AUC, when --label-column is given.
    #[arg(long, default_value_t = 0.5)]
    min_auc: f64,
    /// Idempotency key of a scheduled run: a key that already registered a version
    /// registers nothing and prints that version.
    #[arg(long)]
    run_key: Option<String>,
    /// Register this model artifact instead of fitting one, e.g. a scikit-learn
    /// IsolationForest converted by models/python/sklearn_to_isolake.py. It is scored on
    /// --input (metrics, threshold, gates) like a trained model; --features defaults to its own.
    #[arg(long, value_name = "ARTIFACT")]
    import: Option<std::path::PathBuf>,
    /// Print nothing but the model URI.
    #[arg(long, short)]
    quiet: bool,
}

/// The default alert budget: the top 1% of training rows, well inside the default
/// `--max-flag-rate` gate, so a model trained with no tuning flags promotes.
const DEFAULT_ALERT_RATE: f64 = 0.01;

fn parse_max_samples(s: &str) -> Result<MaxSamples, String> {
    if s == "auto" {
        return Ok(MaxSamples::Auto);
    }
    number(s).map(|n| match n {
        Number::Count(c) => MaxSamples::Count(c),
        Number::Fraction(f) => MaxSamples::Fraction(f),
    })
}

fn parse_max_features(s: &str) -> Result<MaxFeatures, String> {
    if s == "all" {
        return Ok(MaxFeatures::All);
    }
    number(s).map(|n| match n {
        Number::Count(c) => MaxFeatures::Count(c),
        Number::Fraction(f) => MaxFeatures::Fraction(f),
    })
}

fn parse_contamination(s: &str) -> Result<Contamination, String> {
    if s == "auto" {
        return Ok(Contamination::Auto);
    }
    s.parse::<f64>()
        .map(Contamination::Fraction)
        .map_err(|_| format!("{s:?} is neither auto nor a fraction"))
}

enum Number {
    Count(usize),
    Fraction(f64),
}

/// A whole number is a count; a number with a point is a fraction.
fn number(s: &str) -> Result<Number, String> {
    if let Ok(c) = s.parse::<usize>() {
        return Ok(Number::Count(c));
    }
    s.parse::<f64>()
        .map(Number::Fraction)
        .map_err(|_| format!("{s:?} is not a count or a fraction"))
}

/// A spinner on a terminal; nothing otherwise.
struct Spinner(Option<indicatif::ProgressBar>);

impl Progress for Spinner {
    fn stage(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_string());
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let spinner = Spinner((!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }));
    let result = run(&args, &spinner);
    if let Some(bar) = &spinner.0 {
        bar.finish_and_clear();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("isolake-train: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: &Args, progress: &Spinner) -> Result<(), Error> {
    let input = Input::from_args(&args.input, args.version)?;
    let features = match (&args.features, &args.import) {
        (Some(features), _) => features.clone(),
        (None, Some(path)) => IsolationForest::load(path)?.feature_names().to_vec(),
        (None, None) => NUMERIC_FEATURES.iter().map(|f| f.to_string()).collect(),
    };
    let config = TrainConfig {
        input,
        since: args.since,
        event_time_column: args.event_time_column.clone(),
        features,
        hyper: Hyper {
            n_estimators: args.n_estimators,
            max_samples: args.max_samples,
            max_features: args.max_features,
            contamination: args.contamination.unwrap_or(Contamination::Fraction(
                args.alert_rate.unwrap_or(DEFAULT_ALERT_RATE),
            )),
            extension_level: args.extension_level,
            seed: args.seed,
        },
        experiment: args.experiment.clone(),
        model_name: args.model_name.clone(),
        label_column: args.label_column.clone(),
        promote: args.promote.clone(),
        max_flag_rate: args.max_flag_rate,
        min_auc: args.min_auc,
        allow_feature_change: args.allow_feature_change,
        run_key: args.run_key.clone(),
        import: args.import.clone(),
    };
    let registry_uri = args
        .registry
        .clone()
        .unwrap_or_else(|| Registry::uri_from_env_or(DEFAULT_LOCAL));
    let registry = Registry::open(&registry_uri)?;
    let outcome = match isolake_train::run(&config, &registry, progress) {
        Err(e @ Error::Gate { .. }) => {
            // The version is registered: print it like a success, then fail with exit 4.
            if let Error::Gate { version_uri, .. } = &e {
                println!("{version_uri}");
            }
            return Err(e);
        }
        other => other?,
    };
    if outcome.skipped.count > 0 && !args.quiet {
        eprintln!("isolake-train: {}", outcome.skipped);
    }
    println!("{}", outcome.version.uri());
    if !args.quiet {
        if !outcome.created {
            eprintln!(
                "isolake-train: run key {:?} already registered {}: nothing trained",
                args.run_key.as_deref().unwrap_or(""),
                outcome.version.uri()
            );
        } else {
            let m = |k: &str| {
                outcome
                    .metrics
                    .iter()
                    .find(|(n, _)| n == k)
                    .map_or(f64::NAN, |(_, v)| *v)
            };
            eprintln!(
                "isolake-train: registered {} in {} (run {}): {} rows, fit {:.3} s, flagged {:.4}{}",
                outcome.version.uri(),
                registry.describe(),
                outcome.run_id.as_deref().unwrap_or("-"),
                m("rows"),
                m("fit_seconds"),
                m("flagged_fraction"),
                if args.label_column.is_some() {
                    format!(", AUC {:.4}", m("auc"))
                } else {
                    String::new()
                }
            );
            if let Some((alias, previous)) = &outcome.promoted {
                eprintln!(
                    "isolake-train: @{alias} now points at version {} (was {})",
                    outcome.version.version,
                    previous.map_or_else(|| "unset".into(), |p| p.to_string())
                );
            }
        }
    }
    Ok(())
}
