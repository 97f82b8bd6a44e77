//! `isolake-score`: scores a Delta table or data files with any model version.
//!
//! Exit codes: 0 ok, 2 bad input or configuration, 3 registry unreachable or refused
//! (including an artifact that fails its checksum), 1 anything else.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use isolake_data::input::InputError;
use isolake_data::polars::prelude::*;
use isolake_models::{Error as ModelError, Registry, registry::DEFAULT_LOCAL};
use isolake_score::{Error, IfExists, Input, OutputFormat, ScoreSummary, Scorer, Sink, input};

/// Score transactions with an isolation forest from a registry (or an artifact file).
///
/// Adds anomaly_score (0..1, higher = more anomalous), is_anomaly, model_name,
/// model_version and, with --explain, top_features to every input row. Rows that cannot be
/// scored (null or non-numeric features) get null scores and are counted in the summary.
#[derive(Debug, Parser)]
#[command(
    name = "isolake-score",
    version,
    disable_version_flag = true,
    after_help = "Examples:\n  \
        isolake-score --model models:/fraud@production --input lake/silver --output scored.parquet\n  \
        isolake-score --model models:/fraud/3 --input landing/ --output scored.csv --explain 3 \\\n      \
        --if-exists overwrite\n  \
        isolake-score --model models:/fraud@production --input lake/silver --version 12 \\\n      \
        --output lake/rescored --format delta --if-exists overwrite"
)]
struct Args {
    /// Model: models:/NAME@ALIAS, models:/NAME/VERSION, or a path to a model artifact.
    #[arg(long)]
    model: String,
    /// Registry: a local path, file:// URL or http(s):// MLflow server. Default:
    /// $MLFLOW_TRACKING_URI, else ./lake/_registry.
    #[arg(long)]
    registry: Option<String>,
    /// Input: a Delta table directory, or CSV / Parquet / NDJSON files or directories.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<String>,
    /// Delta table version to read (time travel).
    #[arg(long)]
    version: Option<u64>,
    /// Output path (a directory for delta, a file otherwise).
    #[arg(long)]
    output: PathBuf,
    /// Output format: delta, parquet, csv or ndjson (default: from the output's extension,
    /// else delta).
    #[arg(long)]
    format: Option<OutputFormat>,
    /// When the output exists: fail (files' default), append (Delta's default) or overwrite
    /// (a file atomically, a table in one commit).
    #[arg(long, value_enum, default_value_t = IfExists::Default, hide_default_value = true)]
    if_exists: IfExists,
    /// Add top_features: the K features that isolated each row.
    #[arg(long, default_value_t = 0)]
    explain: usize,
    /// Rows scored and written at a time (bounds memory).
    #[arg(long, default_value_t = isolake_score::CHUNK_ROWS)]
    chunk_rows: usize,
    /// Where fetched model artifacts are cached (default ~/.cache/isolake/models).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Print nothing on success.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("isolake-score: error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    let model = |m: &ModelError| match m {
        ModelError::RegistryUnreachable { .. }
        | ModelError::RegistryRefused { .. }
        | ModelError::RegistryChecksumMismatch { .. } => 3,
        _ => 2,
    };
    if let Some(m) = e.downcast_ref::<ModelError>() {
        return model(m);
    }
    let input = |e: &InputError| match e {
        InputError::Usage(_) | InputError::MissingFeature { .. } | InputError::Lake(_) => 2,
        _ => 1,
    };
    if let Some(e) = e.downcast_ref::<InputError>() {
        return input(e);
    }
    match e.downcast_ref::<Error>() {
        Some(Error::Model(m)) => model(m),
        Some(Error::Input(e)) => input(e),
        Some(Error::Usage(_) | Error::Data(_)) => 2,
        _ => 1,
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let input = Input::from_args(&args.input, args.version)?;
    let format = args
        .format
        .unwrap_or_else(|| OutputFormat::infer(&args.output));
    let registry_uri = args
        .registry
        .clone()
        .unwrap_or_else(|| Registry::uri_from_env_or(DEFAULT_LOCAL));
    let registry = Registry::open(&registry_uri)?;
    let (model, resolved) = registry.load_model(&args.model, args.cache_dir.as_deref())?;
    let scorer = Scorer::new(&model, resolved.name.clone(), resolved.version)
        .explain(args.explain)
        .chunk_rows(args.chunk_rows);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let opened = runtime.block_on(input::open(&input))?;
    drop(runtime);
    if opened.skipped.count > 0 && !args.quiet {
        eprintln!("isolake-score: {}", opened.skipped);
    }

    let mut sink = Sink::create(&args.output, format, args.if_exists)?;
    let mut summary = ScoreSummary::default();
    let chunk = args.chunk_rows.max(1);
    for lf in opened.frames {
        let mut offset = 0usize;
        loop {
            let df = lf
                .clone()
                .slice(offset as i64, chunk as IdxSize)
                .collect()
                .map_err(Error::from)?;
            let n = df.height();
            if n == 0 {
                break;
            }
            let (scored, s) = scorer.score(&df)?;
            sink.write(&scored)?;
            summary.add(&s);
            offset += n;
            if n < chunk {
                break;
            }
        }
    }
    sink.finish()?;
    if !args.quiet {
        eprintln!(
            "isolake-score: scored {} of {} rows with {} ({} anomalies, {} unscorable) into {}",
            summary.scored,
            summary.rows,
            resolved.uri,
            summary.anomalies,
            summary.unscorable,
            args.output.display()
        );
    }
    Ok(())
}
