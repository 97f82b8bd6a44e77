//! `isolake-gen`: seeded synthetic card transactions with labelled anomalies, as NDJSON files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use isolake_data::Error;
use isolake_data::generator::{self, GeneratorConfig, Kind};

/// Generate seeded, deterministic card transactions with labelled anomalies as NDJSON files.
///
/// Each file is written under a hidden temporary name and renamed into place, so a watcher
/// never sees half a file. The same arguments and seed always give byte-identical files.
#[derive(Debug, Parser)]
#[command(
    name = "isolake-gen",
    version,
    after_help = "Examples:\n  \
        isolake-gen --rows 100000 --files 24 --out landing --labels labels.csv --bad-fraction 0.01\n  \
        isolake-gen --rows 1000000 --files 100 --seed 42 --out /tmp/landing --quiet\n  \
        isolake-gen --rate 200 --duration 60s --out landing"
)]
struct Args {
    /// Number of lines to write in total (bad lines included).
    #[arg(long, default_value_t = 10_000)]
    rows: usize,
    /// Number of files to cut the time-ordered rows into.
    #[arg(long, default_value_t = 10)]
    files: usize,
    /// Random seed: same seed, same bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory to write the files into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Where to write `transaction_id,label,kind` for every row.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Share of lines made malformed (broken JSON, wrong types, missing fields, negative
    /// amounts, null event_time), labelled `bad_record`.
    #[arg(long, default_value_t = 0.0)]
    bad_fraction: f64,
    /// Write continuously at this many rows per second (one file per second), event times
    /// following the wall clock. Needs --duration, or uses --rows.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to write for with --rate, e.g. 30s, 5m.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// First event time (RFC 3339); default 2024-01-01T00:00:00Z, or now with --rate.
    #[arg(long)]
    start: Option<chrono::DateTime<chrono::Utc>>,
    /// Time span the events cover, e.g. 1d, 6h.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1d")]
    span: Duration,
    /// Number of card accounts (default rows / 20).
    #[arg(long)]
    accounts: Option<usize>,
    /// File name prefix: files are <prefix>-<seed>-<index>.json.
    #[arg(long, default_value = "txns")]
    prefix: String,
    /// Print nothing on success.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("isolake-gen: error: {e}");
            match e {
                Error::InvalidArgument { .. } => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(args: &Args) -> Result<(), Error> {
    let mut config = GeneratorConfig::new(args.rows, args.files, args.seed);
    config.bad_fraction = args.bad_fraction;
    config.accounts = args.accounts;
    config.file_prefix = args.prefix.clone();
    config.span_ms = args.span.as_millis() as i64;
    if let Some(start) = args.start {
        config.start_ms = start.timestamp_millis();
    }
    let mut pace = None;
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(Error::InvalidArgument {
                name: "rate",
                reason: "must be a positive number of rows per second".into(),
            });
        }
        let seconds = match args.duration {
            Some(d) => d.as_secs_f64(),
            None => args.rows as f64 / rate,
        }
        .max(1.0);
        config.rows = (rate * seconds).round().max(1.0) as usize;
        config.files = (seconds.round() as usize).clamp(1, config.rows);
        config.span_ms = (seconds * 1000.0) as i64;
        if args.start.is_none() {
            config.start_ms = chrono::Utc::now().timestamp_millis();
        }
        pace = Some(Duration::from_secs_f64(seconds / config.files as f64));
    } else if args.duration.is_some() {
        return Err(Error::InvalidArgument {
            name: "duration",
            reason: "only applies with --rate".into(),
        });
    }

    let dataset = generator::generate(&config)?;
    let written = generator::write_files_paced(&dataset, &args.out, args.labels.as_deref(), pace)?;
    if !args.quiet {
        let count = |kind: Kind| dataset.events.iter().filter(|e| e.kind == kind).count();
        println!(
            "wrote {} rows in {} files ({} bytes) to {}",
            written.rows,
            written.files.len(),
            written.bytes,
            args.out.display()
        );
        println!(
            "  outlier {}  small_then_large {}  quantity_spike {}  near_miss {}  bad_record {}",
            count(Kind::Outlier),
            count(Kind::SmallThenLarge),
            count(Kind::QuantitySpike),
            count(Kind::NearMiss),
            count(Kind::BadRecord)
        );
        if let Some(labels) = &args.labels {
            println!("  labels: {}", labels.display());
        }
    }
    Ok(())
}
