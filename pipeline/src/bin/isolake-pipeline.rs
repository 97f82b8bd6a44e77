//! `isolake-pipeline`: run the lakehouse pipeline (a thin binary over the library).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use isolake_pipeline::demo::{self, DemoOptions};

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
    /// Run the pipeline (not implemented yet).
    Run,
    /// Check a pipeline config (not implemented yet).
    Validate,
    /// Query the lake with SQL (not implemented yet).
    Query,
}

#[tokio::main]
async fn main() -> ExitCode {
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
        Command::Run | Command::Validate | Command::Query => {
            eprintln!("isolake-pipeline: this command is not implemented yet");
            ExitCode::FAILURE
        }
    }
}
