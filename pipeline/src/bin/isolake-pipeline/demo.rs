//! `isolake-pipeline demo`: what a new user runs first, on the embedded defaults (a local
//! directory lake, the local registry).
//!
//! It generates a labelled day of transactions into a landing directory, runs the pipeline
//! triggered (bronze, silver, quarantine; gold has no model yet, so scores stay null while
//! the rules run), trains and promotes a model on silver, rebuilds silver and gold from bronze
//! with it (`--full-refresh`), then reports what a fraud analyst wants to see: rows per layer,
//! quarantined rows by reason, the top alerts with their reasons, and — because the data is
//! labelled — how many anomalies of each kind the detectors caught.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use isolake_data::generator::{self, GeneratorConfig};
use isolake_data::input::Input;
use isolake_data::lake::scan_table;
use isolake_data::record::{EVENT_TIME, NUMERIC_FEATURES};
use isolake_models::{Contamination, MaxFeatures, MaxSamples, Registry};
use isolake_pipeline::pipeline::{OpenOptions, Pipeline};
use isolake_pipeline::runner::{Runner, Shutdown};
use isolake_pipeline::{Config, Plan, tables};
use polars::prelude::*;

/// Settings of a demo run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: PathBuf,
    pub rows: usize,
    pub files: usize,
    pub seed: u64,
}

/// Marks a directory the demo made (and may therefore empty on the next run).
const MARKER: &str = ".isolake-demo";

const CONFIG: &str = r#"# The demo's pipeline: the canonical transaction record on the embedded defaults.
id = "demo"
lake = "./lake"

[source]
landing = "./landing"
stability_ms = 1

[model]
uri = "models:/fraud@production"    # registry: ./lake/_registry (the local default)

[[detectors]]
name = "small_then_large"
kind = "small_then_large"           # Flink's fraud rule: < 1.00 then > 500.00 within 60 s
window = "60s"

[[detectors]]
name = "bulk_quantity"
kind = "threshold"
expr = "quantity >= 10"
key = "account_id"
"#;

/// Empties a previous demo's directory; refuses a directory the demo did not make.
fn prepare(dir: &Path) -> Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("demo, prepare: {}", dir.display()))?
            .next()
            .is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!(
                "demo, prepare: {} exists and is not a demo directory; choose another with --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    std::fs::write(dir.join(MARKER), "made by isolake-pipeline demo\n")
        .with_context(|| format!("{}", dir.display()))
}

async fn run_pipeline(plan: &Plan, full_refresh: bool) -> Result<()> {
    let pipeline = Pipeline::open_with(
        plan.clone(),
        OpenOptions {
            full_refresh,
            ..OpenOptions::default()
        },
    )
    .await?;
    let mut runner = Runner::new(pipeline, Shutdown::default());
    runner.run_once().await?;
    runner.pipeline.drain().await?;
    Ok(())
}

/// Trains on silver and promotes the version to `production` (the scheduled job's library).
fn train(config: &Config, seed: u64) -> Result<String> {
    let lake = Path::new(&config.lake);
    let registry =
        Registry::open(&lake.join("_registry").to_string_lossy()).context("demo, train")?;
    let train = isolake_train::TrainConfig {
        input: Input::Delta {
            location: config.table_location(tables::SILVER),
            version: None,
        },
        since: None,
        event_time_column: EVENT_TIME.to_string(),
        features: NUMERIC_FEATURES.iter().map(|f| f.to_string()).collect(),
        hyper: isolake_train::Hyper {
            n_estimators: 100,
            max_samples: MaxSamples::Auto,
            max_features: MaxFeatures::All,
            contamination: Contamination::Fraction(0.01),
            extension_level: 0,
            seed: Some(seed),
        },
        experiment: "isolake-demo".into(),
        model_name: "fraud".into(),
        label_column: None,
        promote: Some("production".into()),
        max_flag_rate: 0.05,
        min_auc: 0.5,
        allow_feature_change: false,
        run_key: None,
        import: None,
    };
    let outcome = isolake_train::run(&train, &registry, &()).context("demo, train")?;
    Ok(outcome.version.uri())
}

async fn read(config: &Config, table: &str) -> Result<DataFrame> {
    Ok(scan_table(&config.table_location(table), None)
        .await?
        .collect()?)
}

fn strings(df: &DataFrame, column: &str) -> Result<Vec<Option<String>>> {
    Ok(df
        .column(column)?
        .cast(&DataType::String)?
        .str()?
        .iter()
        .map(|s| s.map(str::to_string))
        .collect())
}

/// Runs the demo and returns the report it prints.
pub async fn run(options: &DemoOptions) -> Result<String> {
    let started = Instant::now();
    let dir = &options.dir;
    prepare(dir)?;
    let mut out = String::new();
    let plan = generate(options, &mut out)?;
    let config = &plan.config;
    run_pipeline(&plan, false).await?;
    let _ = writeln!(
        out,
        "2. ran the pipeline: bronze → silver + quarantine → gold (no model yet: rules only)"
    );
    // The job runs its own runtime: give it a thread outside ours.
    let uri = std::thread::scope(|s| {
        s.spawn(|| train(config, options.seed))
            .join()
            .unwrap_or_else(|_| bail!("demo, train: the training thread panicked"))
    })?;
    let _ = writeln!(
        out,
        "3. trained on silver and promoted {uri} to @production"
    );
    run_pipeline(&plan, true).await?;
    let _ = writeln!(
        out,
        "4. rebuilt silver and gold from bronze with the model (run --full-refresh)\n"
    );
    let silver = read(config, tables::SILVER).await?;
    let quarantine = read(config, tables::QUARANTINE).await?;
    let alerts = read(config, tables::ALERTS).await?;
    layers(config, &silver, &quarantine, &alerts, &mut out).await?;
    reasons(&quarantine, &mut out)?;
    let detectors = alerts_per_detector(&alerts, &mut out)?;
    let labels = labels(&dir.join("labels.csv"))?;
    recall(&alerts, &silver, &labels, &mut out)?;
    precision(&alerts, &detectors, &labels, &mut out)?;
    next_steps(dir, started, &mut out);
    Ok(out)
}

/// Generates the labelled day and writes the demo's config; returns its plan.
fn generate(options: &DemoOptions, out: &mut String) -> Result<Plan> {
    let dir = &options.dir;
    let labels_path = dir.join("labels.csv");
    let mut generator_config = GeneratorConfig::new(options.rows, options.files, options.seed);
    generator_config.bad_fraction = 0.01;
    let dataset = generator::generate(&generator_config).context("demo, generate")?;
    let written = generator::write_dataset(&dataset, &dir.join("landing"), Some(&labels_path))
        .context("demo, generate")?;
    std::fs::write(dir.join("isolake.toml"), CONFIG)
        .with_context(|| format!("{}", dir.display()))?;
    let plan = Plan::load(&dir.join("isolake.toml"))?;
    let _ = writeln!(
        out,
        "1. generated {} labelled transactions (1% malformed) in {} files under {}",
        written.rows,
        written.files.len(),
        dir.join("landing").display()
    );
    Ok(plan)
}

async fn layers(
    config: &Config,
    silver: &DataFrame,
    quarantine: &DataFrame,
    alerts: &DataFrame,
    out: &mut String,
) -> Result<()> {
    let _ = writeln!(out, "rows per layer");
    for (name, n) in [
        (
            tables::BRONZE,
            tables::row_count(config, tables::BRONZE).await?,
        ),
        (tables::SILVER, Some(silver.height())),
        (tables::QUARANTINE, Some(quarantine.height())),
        (
            tables::SCORED,
            tables::row_count(config, tables::SCORED).await?,
        ),
        (tables::ALERTS, Some(alerts.height())),
    ] {
        let n = n.unwrap_or(0);
        let _ = writeln!(out, "  {name:<26} {n:>8}");
    }
    Ok(())
}

fn reasons(quarantine: &DataFrame, out: &mut String) -> Result<()> {
    let reasons = quarantine
        .clone()
        .lazy()
        .select([col("_failed_expectations").explode(ExplodeOptions {
            empty_as_null: false,
            keep_nulls: false,
        })])
        .collect()?;
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    for r in strings(&reasons, "_failed_expectations")?
        .into_iter()
        .flatten()
    {
        *by_reason.entry(r).or_default() += 1;
    }
    let _ = writeln!(out, "\nquarantined rows by reason");
    for (reason, n) in &by_reason {
        let _ = writeln!(out, "  {reason:<26} {n:>8}");
    }

    Ok(())
}

/// Prints alerts per detector and the top alerts; returns each alert's detector.
fn alerts_per_detector(alerts: &DataFrame, out: &mut String) -> Result<Vec<Option<String>>> {
    let detectors = strings(alerts, "detector")?;
    let mut per_detector: BTreeMap<String, usize> = BTreeMap::new();
    for d in detectors.iter().flatten() {
        *per_detector.entry(d.clone()).or_default() += 1;
    }
    let _ = writeln!(out, "\nalerts per detector");
    for (d, n) in &per_detector {
        let _ = writeln!(out, "  {d:<26} {n:>8}");
    }

    let top = alerts
        .clone()
        .lazy()
        .filter(col("detector").eq(lit("model")))
        .sort(
            ["score"],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .limit(5)
        .collect()?;
    let _ = writeln!(out, "\ntop model alerts");
    for reason in strings(&top, "reason")?.into_iter().flatten() {
        let _ = writeln!(out, "  {reason}");
    }
    let rule = alerts
        .clone()
        .lazy()
        .filter(col("detector").eq(lit("small_then_large")))
        .limit(2)
        .collect()?;
    for reason in strings(&rule, "reason")?.into_iter().flatten() {
        let _ = writeln!(out, "  small_then_large: {reason}");
    }

    Ok(detectors)
}

/// Transaction id → anomaly kind, for the labelled anomalies (label 1) only: near misses
/// look like fraud but are not.
fn labels(path: &Path) -> Result<HashMap<String, String>> {
    let labels = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut kind_of: HashMap<String, String> = HashMap::new();
    for line in labels.lines().skip(1) {
        let mut parts = line.split(',');
        if let (Some(id), Some("1"), Some(kind)) = (parts.next(), parts.next(), parts.next()) {
            kind_of.insert(id.to_string(), kind.to_string());
        }
    }
    Ok(kind_of)
}

fn recall(
    alerts: &DataFrame,
    silver: &DataFrame,
    kind_of: &HashMap<String, String>,
    out: &mut String,
) -> Result<()> {
    let ids = alerts
        .column("transaction_ids")?
        .list()?
        .clone()
        .into_series()
        .explode(ExplodeOptions {
            empty_as_null: false,
            keep_nulls: false,
        })?;
    let mut caught: HashSet<String> = HashSet::new();
    for id in ids.str()?.iter().flatten() {
        caught.insert(id.to_string());
    }
    let in_silver: HashSet<String> = strings(silver, "transaction_id")?
        .into_iter()
        .flatten()
        .collect();
    let _ = writeln!(
        out,
        "\nrecall per anomaly kind (labelled rows in silver that some alert names)"
    );
    let mut kinds: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (id, kind) in kind_of {
        if kind == "bad_record" || !in_silver.contains(id) {
            continue;
        }
        let e = kinds.entry(kind.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(caught.contains(id));
    }
    for (kind, (n, hit)) in &kinds {
        let _ = writeln!(
            out,
            "  {kind:<18} {hit:>6} of {n:<6} {:>5.1}%",
            100.0 * *hit as f64 / (*n).max(1) as f64
        );
    }
    Ok(())
}

fn precision(
    alerts: &DataFrame,
    detectors: &[Option<String>],
    kind_of: &HashMap<String, String>,
    out: &mut String,
) -> Result<()> {
    let ids_by_alert = alerts.column("transaction_ids")?.list()?.clone();
    let _ = writeln!(
        out,
        "\nprecision per detector (alerts naming at least one labelled anomaly)"
    );
    let mut precision: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (detector, names) in detectors.iter().zip(ids_by_alert.amortized_iter()) {
        let (Some(detector), Some(names)) = (detector, names) else {
            continue;
        };
        let hit = names
            .as_ref()
            .str()?
            .iter()
            .flatten()
            .any(|id| kind_of.get(id).is_some_and(|k| k != "bad_record"));
        let e = precision.entry(detector.clone()).or_default();
        e.0 += 1;
        e.1 += usize::from(hit);
    }
    for (d, (n, hit)) in &precision {
        let _ = writeln!(
            out,
            "  {d:<18} {hit:>6} of {n:<6} {:>5.1}%",
            100.0 * *hit as f64 / (*n).max(1) as f64
        );
    }

    Ok(())
}

/// The commands a user tries next. They run as printed from any directory: absolute paths,
/// and the binaries by name (`./isolake demo` links them onto the PATH). The last one runs
/// until Ctrl-C (the current batch is committed first).
fn next_steps(dir: &Path, started: Instant, out: &mut String) {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let c = shell_quote(&dir.join("isolake.toml"));
    let report = shell_quote(&dir.join("report.html"));
    let landing = shell_quote(&dir.join("landing"));
    let _ = writeln!(
        out,
        "\ndone in {:.1} s. Next, try:\n  \
         isolake-pipeline query --config {c} \"SELECT detector, count(*) FROM alerts GROUP BY 1\"\n  \
         isolake-pipeline query --config {c} --as-of-version 1 \"SELECT count(*) FROM silver\"\n  \
         isolake-pipeline report --config {c} --output {report}\n  \
         isolake-pipeline optimize --config {c}\n  \
         isolake-gen --rate 200 --duration 20s --out {landing} & isolake-pipeline run --continuous --config {c}",
        started.elapsed().as_secs_f64(),
    );
}

/// A path as one shell word (single-quoted when it holds anything but plain characters).
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c));
    match plain {
        true => text,
        false => format!("'{}'", text.replace('\'', "'\\''")),
    }
}
