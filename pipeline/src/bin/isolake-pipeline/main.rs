//! `isolake-pipeline`: run the lakehouse pipeline (a thin binary over the library).

use std::path::PathBuf;
use std::process::ExitCode;

mod demo;
mod runtime;

use clap::{Parser, Subcommand};
use demo::DemoOptions;
use isolake_pipeline::error::QueryError;
use isolake_pipeline::gold::dimensions;
use isolake_pipeline::pipeline::OpenOptions;
use isolake_pipeline::{Error, Pipeline, Plan, Runner, Shutdown};
use isolake_pipeline::{maintenance, metrics, query, schema_change};

/// Anomalous-transaction lakehouse: landed JSON → bronze → silver → gold Delta tables.
#[derive(Debug, Parser)]
#[command(
    name = "isolake-pipeline",
    version,
    after_help = "Examples:\n  \
        isolake-pipeline demo\n  \
        isolake-pipeline init --landing ./landing && isolake-pipeline run --once\n  \
        isolake-pipeline query \"SELECT account_id, count(*) FROM alerts GROUP BY 1\""
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The demo: generate a labelled day of transactions, run the pipeline, train and promote
    /// a model, rebuild gold with it, and report layers, quarantine reasons, alerts and
    /// recall per anomaly kind (embedded defaults: local lake, local registry).
    #[command(
        after_help = "Examples:\n  isolake-pipeline demo\n  isolake-pipeline demo --dir /tmp/demo --rows 20000 --files 6 --seed 7"
    )]
    Demo {
        /// Directory for the landing files, the lake and labels.csv.
        #[arg(long, default_value = "./isolake-demo")]
        dir: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        #[arg(long, default_value_t = 24)]
        files: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Run the pipeline: landed files → bronze → silver (+ quarantine), exactly once.
    ///
    /// Exit codes: 0 ok, 1 runtime error, 2 invalid config, 3 another run holds the lock,
    /// 4 an expectation with action = fail failed (nothing of that batch was committed),
    /// 5 no model to score with and [model] on_missing_model = "fail".
    #[command(
        after_help = "Examples:\n  isolake-pipeline run --once --config isolake.toml\n  isolake-pipeline run --continuous --metrics-addr 127.0.0.1:9464\n  isolake-pipeline run --full-refresh --drain"
    )]
    Run {
        /// The pipeline's config file.
        #[arg(long, default_value = "isolake.toml")]
        config: PathBuf,
        /// Process what is there, then exit (the default).
        #[arg(long, conflicts_with = "continuous")]
        once: bool,
        /// Watch the landing directory until SIGINT/SIGTERM (the current batch is finished
        /// and committed first).
        #[arg(long)]
        continuous: bool,
        /// With --continuous: when another instance of this pipeline runs, wait for it to
        /// stop (on an object-store lake: its lease to go unrenewed for lock.lease_ttl), then
        /// take over; without it, a second instance exits with code 3.
        #[arg(long, requires = "continuous")]
        standby: bool,
        /// Empty silver, quarantine and gold first, then rebuild them from bronze (after a
        /// change of expectations, casts, model or detectors).
        #[arg(long)]
        full_refresh: bool,
        /// The input has ended: after the last batch, release every row gold holds back for
        /// the watermark (like the end of a bounded source in Flink). Later rows older than
        /// the watermark are then late.
        #[arg(long, conflicts_with = "continuous")]
        drain: bool,
        /// Serve Prometheus metrics on http://ADDR/metrics while running, e.g.
        /// 127.0.0.1:9464.
        #[arg(long)]
        metrics_addr: Option<String>,
    },
    /// Upsert a dimension table (e.g. accounts) by key from a CSV or NDJSON file: rows with a
    /// key in the file are replaced, new keys added (a MERGE, in one Delta commit).
    #[command(
        after_help = "Examples:\n  isolake-pipeline load-dimension --name accounts --file accounts.csv\n  isolake-pipeline load-dimension --name merchants --file merchants.ndjson --key merchant_id"
    )]
    LoadDimension {
        #[arg(long, default_value = "isolake.toml")]
        config: PathBuf,
        /// Dimension name: the table is <lake>/dimensions/<name>.
        #[arg(long)]
        name: String,
        /// The file to load (.csv with a header, or .json/.jsonl/.ndjson).
        #[arg(long)]
        file: PathBuf,
        /// Key column (default: the [dimensions.<name>] key, else account_id).
        #[arg(long)]
        key: Option<String>,
    },
    /// Write a self-contained HTML report (inline SVG charts, no network needed to view it).
    #[command(
        after_help = "Examples:\n  isolake-pipeline report\n  isolake-pipeline report --config isolake.toml --output /tmp/report.html"
    )]
    Report {
        #[arg(long, default_value = "isolake.toml")]
        config: PathBuf,
        #[arg(long, default_value = "report.html")]
        output: PathBuf,
    },
    /// Compact small files (one commit per table, same rows), optionally Z-ordered.
    #[command(
        after_help = "Examples:\n  isolake-pipeline optimize\n  isolake-pipeline optimize silver --zorder-by account_id,event_time"
    )]
    Optimize {
        /// One table by name (default: all).
        table: Option<String>,
        #[arg(long, default_value = "isolake.toml")]
        config: PathBuf,
        /// Cluster rows by these columns (comma-separated, up to 4) for data skipping.
        #[arg(long, value_delimiter = ',')]
        zorder_by: Vec<String>,
    },
    /// Delete data files no version within the retention needs.
    #[command(
        after_help = "Examples:\n  isolake-pipeline vacuum --dry-run\n  isolake-pipeline vacuum bronze --retain 336"
    )]
    Vacuum {
        /// One table by name (default: all).
        table: Option<String>,
        #[arg(long, default_value = "isolake.toml")]
        config: PathBuf,
        /// Retention in hours (default 168, the safe minimum without --force).
        #[arg(long, default_value_t = 168)]
        retain: u64,
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Allow a retention below 168 hours.
        #[arg(long)]
        force: bool,
    },
    /// Propose a pipeline config from the files already landed: samples them (bounded),
    /// infers each field's type, the event-time column, a key, model features and one
    /// expectation per field, and writes a commented isolake.toml that validate accepts.
    #[command(
        after_help = "Examples:\n  isolake-pipeline init --landing ./landing\n  isolake-pipeline init --landing /data/in --out pipelines/cards.toml --id cards"
    )]
    Init {
        /// The landing directory to sample.
        #[arg(long)]
        landing: PathBuf,
        /// Where to write the config (refused if it exists, unless --force).
        #[arg(long, default_value = "isolake.toml")]
        out: PathBuf,
        /// The pipeline id to write.
        #[arg(long, default_value = "fraud")]
        id: String,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// Check a pipeline config: every problem is reported with its key and line.
    #[command(
        after_help = "Examples:\n  isolake-pipeline validate\n  isolake-pipeline validate --config pipelines/cards.toml"
    )]
    Validate {
        #[arg(long, default_value = "isolake.toml")]
        config: PathBuf,
    },
    /// Query the lake with SQL (polars SQL): bronze, silver, quarantine, event_log,
    /// scored_transactions, alerts, detector and dimension tables, by name.
    ///
    /// Exit codes: 0 ok, 1 runtime error, 2 bad SQL, unknown table or invalid config.
    #[command(
        after_help = "Examples:\n  isolake-pipeline query \"SELECT detector, count(*) FROM alerts GROUP BY 1\"\n  isolake-pipeline query --as-of-version 3 \"SELECT count(*) FROM silver\"\n  isolake-pipeline query --format csv --output q.csv \"SELECT * FROM quarantine\""
    )]
    Query {
        /// The SQL text, e.g. "SELECT account_id, count(*) FROM alerts GROUP BY 1".
        sql: String,
        #[arg(long, default_value = "isolake.toml")]
        config: PathBuf,
        /// Read every table as of this Delta version (time travel).
        #[arg(long, conflicts_with = "as_of")]
        as_of_version: Option<u64>,
        /// Read every table as of this time (RFC 3339, e.g. 2026-11-22T10:00:00Z).
        #[arg(long)]
        as_of: Option<String>,
        /// table (readable, the default on a terminal), csv, json (one object per line) or
        /// parquet.
        #[arg(long, value_parser = ["table", "csv", "json", "parquet"])]
        format: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    runtime::run(start())
}

async fn start() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // deltalake logs an ERROR when auto compaction's commit (max_retries = 0) meets a
            // batch's commit; isolake rebases it itself, and a failure it cannot handle is
            // reported as isolake's own error.
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,buoyant_kernel=off,delta_kernel=off,deltalake_core::kernel::transaction=off")
            }),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log redirected to a file stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    dispatch(Cli::parse().command).await
}

async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Demo {
            dir,
            rows,
            files,
            seed,
        } => {
            let options = DemoOptions {
                dir,
                rows,
                files,
                seed,
            };
            match demo::run(&options).await {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("isolake-pipeline: error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run {
            config,
            once: _,
            continuous,
            standby,
            full_refresh,
            drain,
            metrics_addr,
        } => {
            let options = RunOptions {
                continuous,
                standby,
                full_refresh,
                drain,
                metrics_addr,
            };
            run(&config, options).await
        }
        Command::LoadDimension {
            config,
            name,
            file,
            key,
        } => load_dimension(&config, &name, &file, key).await,
        Command::Init {
            landing,
            out,
            id,
            force,
        } => init(&landing, &out, &id, force),
        Command::Validate { config } => validate(&config).await,
        Command::Report { config, output } => report(&config, &output).await,
        Command::Optimize {
            table,
            config,
            zorder_by,
        } => optimize(&config, table.as_deref(), &zorder_by).await,
        Command::Vacuum {
            table,
            config,
            retain,
            dry_run,
            force,
        } => vacuum(&config, table.as_deref(), retain, dry_run, force).await,
        Command::Query {
            sql,
            config,
            as_of_version,
            as_of,
            format,
            output,
        } => query(&config, &sql, as_of_version, as_of, format, output).await,
    }
}

/// `validate`: the same plan `run` compiles, so it accepts exactly what `run` accepts, and
/// the same check of existing tables against it (schema changes `run` would refuse).
async fn validate(path: &std::path::Path) -> ExitCode {
    let checked = match Plan::load(path) {
        Ok(plan) => schema_change::reconcile(&plan, schema_change::Mode::Check)
            .await
            .map(|notes| (plan, notes)),
        Err(e) => Err(e.into()),
    };
    match checked {
        Ok((plan, notes)) => {
            for note in notes {
                println!("schema change: {note}");
            }
            let config = &plan.config;
            println!(
                "config ok: pipeline {:?}, lake {}, landing {}, {} expectation(s)",
                config.id,
                config.lake,
                config.source.landing.display(),
                config.expectations.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `init`: writes the proposed config and says what it inferred.
fn init(landing: &std::path::Path, out: &std::path::Path, id: &str, force: bool) -> ExitCode {
    let options = isolake_pipeline::init::InitOptions {
        landing: landing.to_path_buf(),
        out: out.to_path_buf(),
        id: id.to_string(),
        force,
        ..Default::default()
    };
    match isolake_pipeline::init::run(&options) {
        Ok(summary) => {
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.into()),
    }
}

/// The compiled plan of a config file, or the exit code of its problems.
fn load(path: &std::path::Path) -> Result<Plan, ExitCode> {
    Plan::load(path).map_err(|e| fail(&e.into()))
}

async fn query(
    config: &std::path::Path,
    sql: &str,
    as_of_version: Option<u64>,
    as_of: Option<String>,
    format: Option<String>,
    output: Option<PathBuf>,
) -> ExitCode {
    use std::io::IsTerminal;
    let config = match load(config) {
        Ok(plan) => plan.config,
        Err(code) => return code,
    };
    let timestamp = match as_of.as_deref().map(chrono::DateTime::parse_from_rfc3339) {
        None => None,
        Some(Ok(t)) => Some(t.with_timezone(&chrono::Utc)),
        Some(Err(e)) => {
            return fail(&Error::from(QueryError::AsOf {
                given: as_of.unwrap_or_default(),
                reason: e.to_string(),
            }));
        }
    };
    let as_of = query::AsOf {
        version: as_of_version,
        timestamp,
    };
    let format = match format.as_deref() {
        Some("csv") => query::Format::Csv,
        Some("json") => query::Format::Json,
        Some("parquet") => query::Format::Parquet,
        Some(_) => query::Format::Table,
        None if output.is_none() && std::io::stdout().is_terminal() => query::Format::Table,
        None if output.is_some() => query::Format::Parquet,
        None => query::Format::Csv,
    };
    let mut df = match query::run(&config, sql, as_of).await {
        Ok(df) => df,
        Err(e) => return fail(&e.into()),
    };
    let written = match &output {
        Some(path) => std::fs::File::create(path)
            .map_err(|source| QueryError::Output {
                path: path.clone(),
                source,
            })
            .and_then(|mut f| query::write(&mut df, format, &mut f)),
        None => query::write(&mut df, format, &mut std::io::stdout().lock()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.into()),
    }
}

async fn report(config: &std::path::Path, output: &std::path::Path) -> ExitCode {
    let config = match load(config) {
        Ok(plan) => plan.config,
        Err(code) => return code,
    };
    let html = match isolake_pipeline::report::render(&config).await {
        Ok(html) => html,
        Err(e) => return fail(&e),
    };
    match std::fs::write(output, html) {
        Ok(()) => {
            println!("report written to {}", output.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&Error::io(output, e)),
    }
}

async fn optimize(config: &std::path::Path, table: Option<&str>, zorder_by: &[String]) -> ExitCode {
    let config = match load(config) {
        Ok(plan) => plan.config,
        Err(code) => return code,
    };
    match maintenance::optimize(&config, table, zorder_by).await {
        Ok(done) => {
            for (name, c) in done {
                match c.version {
                    Some(v) => println!(
                        "{name}: {} file(s) → {} ({} rows), version {v}",
                        c.files_before, c.files_after, c.rows
                    ),
                    None => println!("{name}: {} file(s), nothing to compact", c.files_before),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

async fn vacuum(
    config: &std::path::Path,
    table: Option<&str>,
    retain: u64,
    dry_run: bool,
    force: bool,
) -> ExitCode {
    let config = match load(config) {
        Ok(plan) => plan.config,
        Err(code) => return code,
    };
    let retain = std::time::Duration::from_secs(retain.saturating_mul(3600));
    match maintenance::vacuum(&config, table, retain, dry_run, force).await {
        Ok(done) => {
            for (name, files) in done {
                let verb = if dry_run { "would delete" } else { "deleted" };
                println!("{name}: {verb} {} file(s)", files.len());
                for f in files.iter().filter(|_| dry_run) {
                    println!("  {f}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

struct RunOptions {
    continuous: bool,
    standby: bool,
    full_refresh: bool,
    drain: bool,
    metrics_addr: Option<String>,
}

async fn load_dimension(
    config: &std::path::Path,
    name: &str,
    file: &std::path::Path,
    key: Option<String>,
) -> ExitCode {
    let config = match load(config) {
        Ok(plan) => plan.config,
        Err(code) => return code,
    };
    let key = key
        .or_else(|| {
            config
                .gold
                .dimensions
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.key.clone())
        })
        .unwrap_or_else(|| "account_id".to_string());
    let result = match dimensions::read_file(file) {
        Ok(rows) => dimensions::upsert(&config, name, &key, rows).await,
        Err(e) => Err(e),
    }
    .map_err(Error::from);
    match result {
        Ok(u) => {
            println!(
                "dimension {name:?}: {} inserted, {} updated, {} row(s) in total (version {})",
                u.inserted, u.updated, u.total, u.version
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

async fn run(config: &std::path::Path, options: RunOptions) -> ExitCode {
    let continuous = options.continuous;
    let plan = match load(config) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let shutdown = Shutdown::default();
    if let Err(e) = shutdown.on_signals() {
        return fail(&e);
    }
    let open = OpenOptions {
        full_refresh: options.full_refresh,
        standby: options.standby,
    };
    let pipeline = match Pipeline::open_with(plan, open).await {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let id = pipeline.config().id.clone();
    let mut runner = Runner::new(pipeline, shutdown);
    if let Some(addr) = &options.metrics_addr {
        let shared = metrics::Shared::default();
        match metrics::serve(addr, shared.clone(), id) {
            Ok(bound) => eprintln!("isolake-pipeline: metrics on http://{bound}/metrics"),
            Err(e) => return fail(&e),
        }
        runner.metrics = Some(shared);
    }
    let mut result = if continuous {
        runner.run_continuous().await
    } else {
        runner.run_once().await
    };
    // A drain means the input has ended: only when it was read to its end, not after
    // SIGINT/SIGTERM stopped the run part-way.
    if options.drain
        && !runner.shutdown.requested()
        && let Ok(summary) = &mut result
    {
        match runner.pipeline.drain().await {
            Ok(batch) => summary.batches.push(batch),
            Err(e) => result = Err(e),
        }
    }
    match result {
        Ok(summary) => {
            println!(
                "{} batch(es), {} file(s): {} bronze row(s), {} silver row(s), {} quarantined, \
                 {} alert(s)",
                summary.batches.len(),
                summary.files(),
                summary.bronze_rows(),
                summary.silver_rows(),
                summary.quarantined(),
                summary.alerts()
            );
            let requests = isolake_data::lake::counting_store::requests();
            if requests != Default::default() {
                // On S3 they are what costs money and time.
                println!("object-store requests: {requests}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// Prints the error and maps it to the documented exit code.
fn fail(error: &Error) -> ExitCode {
    eprintln!("isolake-pipeline: error: {error}");
    ExitCode::from(error.exit_code())
}
