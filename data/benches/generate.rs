//! Generator throughput: 1M rows in 10 files, printed as rows per second.
//!
//! `cargo bench -p isolake-data --no-default-features --bench generate`
//! (`--no-default-features` leaves out the Delta layer, which the generator does not use, so
//! the release build takes seconds.) Target: 1M rows well under 10 s on 2 cores.

use std::time::Instant;

use isolake_data::generator::{self, GeneratorConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let config = GeneratorConfig::new(rows, 10, 42);

    let started = Instant::now();
    let dataset = generator::generate(&config)?;
    let generated = started.elapsed();
    let written =
        generator::write_dataset(&dataset, dir.path(), Some(&dir.path().join("labels.csv")))?;
    let total = started.elapsed();

    println!(
        "generate: {rows} rows in {:.2} s ({:.2} s generating, {:.2} s formatting + writing {} MB)",
        total.as_secs_f64(),
        generated.as_secs_f64(),
        (total - generated).as_secs_f64(),
        written.bytes / 1_000_000
    );
    println!(
        "generate: {:.0} rows/s (target: 1M rows well under 10 s, i.e. > 100000 rows/s)",
        rows as f64 / total.as_secs_f64()
    );
    Ok(())
}
