//! Prometheus metrics of a running pipeline (`run --metrics-addr 127.0.0.1:9464`): rows and
//! files per layer, batches, batch durations, backlog, alerts per detector, the model version
//! and the last error, served as text on `/metrics` by a small std-thread HTTP responder (no
//! web framework: one GET, one response, connection closed; a thread per connection, so
//! scrapes are served concurrently).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::pipeline::BatchSummary;

/// Upper bounds (seconds) of the batch-duration histogram's buckets.
const BUCKETS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Debug, Default)]
pub struct Metrics {
    rows: BTreeMap<&'static str, u64>,
    files: u64,
    bytes: u64,
    batches: u64,
    duration_buckets: [u64; BUCKETS.len()],
    duration_sum: f64,
    backlog_files: u64,
    backlog_bytes: u64,
    alerts: BTreeMap<String, u64>,
    model_version: Option<u64>,
    errors: u64,
    last_error_unix: Option<f64>,
    /// Auto compactions per table: (committed, failed).
    compactions: BTreeMap<String, (u64, u64)>,
    /// Landing-zone entries the last look could not read (skipped).
    unreadable: u64,
}

/// Metrics shared between the runner and the HTTP thread.
pub type Shared = Arc<Mutex<Metrics>>;

impl Metrics {
    /// Counts one committed batch.
    pub fn record_batch(&mut self, s: &BatchSummary, took: Duration, backlog: (u64, u64)) {
        for (layer, n) in [
            ("bronze", s.bronze_rows),
            ("silver", s.silver_rows),
            ("quarantine", s.quarantined),
            ("gold", s.gold_rows),
        ] {
            *self.rows.entry(layer).or_default() += n as u64;
        }
        self.files += s.files as u64;
        self.bytes += s.bytes;
        self.batches += 1;
        let seconds = took.as_secs_f64();
        self.duration_sum += seconds;
        for (bucket, bound) in self.duration_buckets.iter_mut().zip(BUCKETS) {
            *bucket += u64::from(seconds <= bound);
        }
        (self.backlog_files, self.backlog_bytes) = backlog;
        for (detector, n) in &s.alerts_by_detector {
            *self.alerts.entry(detector.clone()).or_default() += n;
        }
        if s.model_version.is_some() {
            self.model_version = s.model_version;
        }
    }

    /// How many entries of the landing zone the last look could not read.
    pub fn set_unreadable(&mut self, entries: usize) {
        self.unreadable = entries as u64;
    }

    /// Counts one auto compaction of `table` that committed (`ok`) or gave up.
    pub fn record_compaction(&mut self, table: &str, ok: bool) {
        let entry = self.compactions.entry(table.to_string()).or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }

    /// Notes a failed batch.
    pub fn record_error(&mut self) {
        self.errors += 1;
        self.last_error_unix = Some(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, pipeline: &str) -> String {
        let p = pipeline.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = String::new();
        self.render_counts(&p, &mut out);
        self.render_durations(&p, &mut out);
        self.render_gold(&p, &mut out);
        out
    }

    /// Rows per layer, files, bytes, batches, errors and the backlog.
    fn render_counts(&self, p: &str, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP isolake_rows_total Rows committed, per layer.\n# TYPE isolake_rows_total counter"
        );
        for (layer, n) in &self.rows {
            let _ = writeln!(
                out,
                "isolake_rows_total{{pipeline=\"{p}\",layer=\"{layer}\"}} {n}"
            );
        }
        for (name, help, value, kind) in [
            (
                "isolake_files_total",
                "Landed files ingested.",
                self.files,
                "counter",
            ),
            (
                "isolake_bytes_total",
                "Landed bytes ingested.",
                self.bytes,
                "counter",
            ),
            (
                "isolake_batches_total",
                "Micro-batches committed.",
                self.batches,
                "counter",
            ),
            (
                "isolake_errors_total",
                "Batches that failed.",
                self.errors,
                "counter",
            ),
            (
                "isolake_backlog_files",
                "Files waiting after the last batch.",
                self.backlog_files,
                "gauge",
            ),
            (
                "isolake_backlog_bytes",
                "Bytes waiting after the last batch.",
                self.backlog_bytes,
                "gauge",
            ),
            (
                "isolake_unreadable_entries",
                "Files and directories of the landing zone that cannot be read (skipped).",
                self.unreadable,
                "gauge",
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{pipeline=\"{p}\"}} {value}"
            );
        }
    }

    fn render_durations(&self, p: &str, out: &mut String) {
        let name = "isolake_batch_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to process and commit a micro-batch.\n# TYPE {name} histogram"
        );
        for (bound, n) in BUCKETS.iter().zip(self.duration_buckets) {
            let _ = writeln!(out, "{name}_bucket{{pipeline=\"{p}\",le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{pipeline=\"{p}\",le=\"+Inf\"}} {b}\n{name}_sum{{pipeline=\"{p}\"}} {s}\n\
             {name}_count{{pipeline=\"{p}\"}} {b}",
            b = self.batches,
            s = self.duration_sum
        );
    }

    /// Alerts per detector, the model version, compactions and the last error.
    fn render_gold(&self, p: &str, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP isolake_alerts_total Alerts raised, per detector.\n# TYPE isolake_alerts_total counter"
        );
        for (detector, n) in &self.alerts {
            let d = detector.replace('"', "\\\"");
            let _ = writeln!(
                out,
                "isolake_alerts_total{{pipeline=\"{p}\",detector=\"{d}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP isolake_model_version The model version scoring gold (0: none yet).\n\
             # TYPE isolake_model_version gauge\nisolake_model_version{{pipeline=\"{p}\"}} {}",
            self.model_version.unwrap_or(0)
        );
        for (name, help, pick) in [
            (
                "isolake_compactions_total",
                "Auto compactions committed, per table.",
                0,
            ),
            (
                "isolake_compaction_failures_total",
                "Auto compactions that gave up (retried next round), per table.",
                1,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (table, counts) in &self.compactions {
                let n = if pick == 0 { counts.0 } else { counts.1 };
                let _ = writeln!(out, "{name}{{pipeline=\"{p}\",table=\"{table}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP isolake_last_error_timestamp_seconds When a batch last failed (0: never).\n\
             # TYPE isolake_last_error_timestamp_seconds gauge\n\
             isolake_last_error_timestamp_seconds{{pipeline=\"{p}\"}} {}",
            self.last_error_unix.unwrap_or(0.0)
        );
    }
}

/// Serves `metrics` on `addr` from a background thread; returns the bound address.
pub fn serve(addr: &str, metrics: Shared, pipeline: String) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr).map_err(|source| Error::Metrics {
        addr: addr.to_string(),
        source,
    })?;
    let bound = listener.local_addr().map_err(|source| Error::Metrics {
        addr: addr.to_string(),
        source,
    })?;
    std::thread::Builder::new()
        .name("isolake-metrics".into())
        .spawn(move || {
            // One thread per connection: a slow or stalled client (it has 2 s to send its
            // request) never holds up another scrape.
            for stream in listener.incoming().flatten() {
                let (metrics, pipeline) = (metrics.clone(), pipeline.clone());
                let _ = std::thread::Builder::new()
                    .name("isolake-metrics-client".into())
                    .spawn(move || respond(stream, &metrics, &pipeline));
            }
        })
        .map_err(|source| Error::Metrics {
            addr: addr.to_string(),
            source,
        })?;
    Ok(bound)
}

fn respond(mut stream: TcpStream, metrics: &Shared, pipeline: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) =
        if line.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
            let body = match metrics.lock() {
                Ok(m) => m.render(pipeline),
                Err(poisoned) => poisoned.into_inner().render(pipeline),
            };
            ("200 OK", body)
        } else {
            ("404 Not Found", "see /metrics\n".to_string())
        };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}
