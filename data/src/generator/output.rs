//! Formatting events as NDJSON lines and landing files atomically.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::population::{CATEGORIES, CHANNELS};
use super::{BadKind, Dataset, Event};
use crate::error::{Error, Result};

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct WrittenFiles {
    pub files: Vec<PathBuf>,
    pub rows: usize,
    pub bytes: u64,
}

#[derive(Serialize)]
struct Line<'a> {
    transaction_id: &'a str,
    account_id: String,
    user_id: String,
    product_id: String,
    event_time: String,
    amount: f64,
    quantity: i64,
    unit_cost: f64,
    merchant_category: &'static str,
    channel: &'static str,
    country: &'static str,
    distance_from_home_km: f64,
    seconds_since_last_txn: f64,
    account_age_days: i64,
}

impl Dataset {
    /// The NDJSON line (without newline) of event `index`, broken if it is a bad record.
    pub fn line(&self, index: usize) -> Result<String> {
        let e = &self.events[index];
        let id = self.transaction_id(index);
        let line = self.record(e, &id);
        Ok(match e.bad {
            None => serde_json::to_string(&line)?,
            Some(BadKind::BrokenJson) => {
                let text = serde_json::to_string(&line)?;
                // Cut inside the object: never valid JSON, always names the transaction.
                text[..(text.len() * 2 / 3)].to_string()
            }
            Some(bad) => {
                let mut value = serde_json::to_value(&line)?;
                if let Value::Object(map) = &mut value {
                    match bad {
                        BadKind::WrongType if index.is_multiple_of(2) => {
                            map.insert("amount".into(), Value::String(format!("{}EUR", e.amount)));
                        }
                        BadKind::WrongType => {
                            map.insert("quantity".into(), Value::String("several".into()));
                        }
                        BadKind::MissingField => {
                            map.remove("account_id");
                            map.remove("amount");
                        }
                        BadKind::NegativeAmount => {
                            map.insert("amount".into(), serde_json::json!(-e.amount));
                        }
                        BadKind::NullEventTime => {
                            map.insert("event_time".into(), Value::Null);
                        }
                        BadKind::BrokenJson => {}
                    }
                }
                serde_json::to_string(&value)?
            }
        })
    }

    fn record<'a>(&self, e: &Event, id: &'a str) -> Line<'a> {
        let account = &self.population.accounts[e.account as usize];
        Line {
            transaction_id: id,
            account_id: format!("a{:06}", e.account),
            user_id: format!("u{:07}", e.user),
            product_id: format!("p{:04}", e.product),
            event_time: format_time(e.time_ms),
            amount: e.amount,
            quantity: e.quantity,
            unit_cost: e.unit_cost,
            merchant_category: CATEGORIES[e.category as usize].0,
            channel: CHANNELS[e.channel as usize],
            country: e.country,
            distance_from_home_km: e.distance_km,
            seconds_since_last_txn: e.seconds_since_last,
            account_age_days: account.age_days,
        }
    }

    /// The name of file `k`.
    pub fn file_name(&self, k: usize) -> String {
        format!(
            "{}-{}-{:05}.json",
            self.config.file_prefix, self.config.seed, k
        )
    }

    fn file_bytes(&self, range: std::ops::Range<usize>) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(range.len() * 360);
        for i in range {
            buf.extend_from_slice(self.line(i)?.as_bytes());
            buf.push(b'\n');
        }
        Ok(buf)
    }

    /// `labels.csv`: `transaction_id,label,kind` for every row, in file order.
    pub fn labels_csv(&self) -> String {
        let mut out = String::with_capacity(self.events.len() * 32);
        out.push_str("transaction_id,label,kind\n");
        for (i, e) in self.events.iter().enumerate() {
            out.push_str(&format!(
                "{},{},{}\n",
                self.transaction_id(i),
                e.kind.label(),
                e.kind.name()
            ));
        }
        out
    }
}

/// RFC 3339, UTC, milliseconds: `2024-01-01T00:04:08.278Z`.
pub fn format_time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Writes every file of the data set into `out_dir` (each under a hidden temporary name, then
/// renamed into place, so a watcher never sees half a file) and the labels if asked.
pub fn write_dataset(ds: &Dataset, out_dir: &Path, labels: Option<&Path>) -> Result<WrittenFiles> {
    write_files_paced(ds, out_dir, labels, None)
}

/// Like [`write_dataset`], but with `pace` set, file `k` is landed `(k + 1) × pace` after the
/// call: a live feed at a steady rate.
pub fn write_files_paced(
    ds: &Dataset,
    out_dir: &Path,
    labels: Option<&Path>,
    pace: Option<Duration>,
) -> Result<WrittenFiles> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    if let Some(labels) = labels {
        // Labels first: a consumer that sees a data file can already evaluate it.
        write_atomically(labels, ds.labels_csv().as_bytes())?;
    }
    let started = Instant::now();
    let mut written = WrittenFiles::default();
    let ranges = ds.file_ranges();
    // Formatting dominates; files are formatted in parallel, a few at a time so memory stays
    // bounded by a handful of files, and landed in order.
    let group = if pace.is_some() {
        1
    } else {
        rayon::current_num_threads().max(1) * 2
    };
    for (g, chunk) in ranges.chunks(group).enumerate() {
        let contents: Vec<Vec<u8>> = chunk
            .par_iter()
            .map(|range| ds.file_bytes(range.clone()))
            .collect::<Result<_>>()?;
        for (i, (range, bytes)) in chunk.iter().zip(contents).enumerate() {
            let k = g * group + i;
            if let Some(pace) = pace {
                let due = pace * (k as u32 + 1);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            let path = out_dir.join(ds.file_name(k));
            write_atomically(&path, &bytes)?;
            written.rows += range.len();
            written.bytes += bytes.len() as u64;
            written.files.push(path);
        }
    }
    Ok(written)
}

/// Writes `bytes` to `path` via a hidden `.name.tmp` sibling and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
