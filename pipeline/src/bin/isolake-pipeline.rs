//! `isolake-pipeline`: run the lakehouse pipeline (a thin binary over the library).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use isolake_pipeline::demo::{self, DemoOptions};
use isolake_pipeline::{Config, Error, Pipeline, Runner, Shutdown};

/// Anomalous-transaction lakehouse: landed JSON → bronze → silver → gold Delta tables.
#[derive(Debug, Parser)]
#[command(name = "isolake-pipeline", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a labelled day of transactions and load it into a bronze-like Delta table
    /// (today's partial demo: silver, training and gold are not implemented yet).
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
    /// 4 an expectation with action = fail failed (nothing of that batch was committed).
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
    },
    /// Check a pipeline config: every problem is reported with its key and line.
    Validate {
        #[arg(long, default_value = "isolake.toml")]
        config: PathBuf,
    },
    /// Query the lake with SQL (not implemented yet).
    Query,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,buoyant_kernel=off,delta_kernel=off")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Demo {
            dir,
            rows,
            files,
            seed,
        } => {
            match demo::run(&DemoOptions {
                dir,
                rows,
                files,
                seed,
            })
            .await
            {
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
        } => run(&config, continuous).await,
        Command::Validate { config } => match Config::load(&config) {
            Ok(config) => match isolake_pipeline::silver::expectations::compile_all(
                &config.expectations,
                &isolake_pipeline::silver::schema(&config),
            ) {
                Ok(_) => {
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
            },
            Err(e) => fail(&e),
        },
        Command::Query => {
            eprintln!("isolake-pipeline: this command is not implemented yet");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: &std::path::Path, continuous: bool) -> ExitCode {
    let config = match Config::load(config) {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    let shutdown = Shutdown::default();
    if let Err(e) = shutdown.on_signals() {
        return fail(&e);
    }
    let pipeline = match Pipeline::open(config).await {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let mut runner = Runner::new(pipeline, shutdown);
    let result = if continuous {
        runner.run_continuous().await
    } else {
        runner.run_once().await
    };
    match result {
        Ok(summary) => {
            println!(
                "{} batch(es), {} file(s): {} bronze row(s), {} silver row(s), {} quarantined",
                summary.batches.len(),
                summary.files(),
                summary.bronze_rows(),
                summary.silver_rows(),
                summary.quarantined()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// Prints the error and maps it to the documented exit code.
fn fail(error: &Error) -> ExitCode {
    eprintln!("isolake-pipeline: error: {error}");
    ExitCode::from(match error {
        Error::Config { .. } | Error::Expression { .. } => 2,
        Error::Locked { .. } => 3,
        Error::ExpectationFailed { .. } | Error::NewColumns { .. } => 4,
        _ => 1,
    })
}
