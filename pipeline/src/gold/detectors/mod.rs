//! Rule detectors next to the model: one trait, several instances from `[[detectors]]`.
//!
//! A detector sees rows in two ways. Per-row rules look at every row of a batch as it comes
//! (late rows included). Sequence rules see only rows the watermark released, in event-time
//! order (ties in arrival order), so what they find does not depend on how the input was
//! split into files or batches. Their state is saved with each gold commit and restored at
//! start-up (see `gold::state`).

pub mod match_recognize;
pub mod small_then_large;
pub mod threshold;

use polars::prelude::*;

use super::alerts::Alert;
use crate::bronze::{SOURCE_FILE, SOURCE_LINE};
use crate::error::Result;

/// What detectors need to know about the record.
#[derive(Debug, Clone)]
pub struct Context {
    /// The event-time column (a UTC datetime in silver).
    pub event_time: String,
    /// The column naming a row in alerts (the dedup key); `None`: `file:line`.
    pub id_column: Option<String>,
}

/// What sequence rules know about rows still to come.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Rows still to come have an event time at or after this (µs).
    pub watermark: Option<i64>,
    /// The input has ended (`run --drain`): nothing more will come.
    pub ended: bool,
}

pub trait Detector: Send {
    fn name(&self) -> &str;
    /// Every row of a batch, in arrival order (per-row rules).
    fn on_rows(&mut self, _rows: &DataFrame, _ctx: &Context, _out: &mut Vec<Alert>) -> Result<()> {
        Ok(())
    }
    /// Rows released by the watermark, in event-time order (sequence rules).
    fn on_ordered(
        &mut self,
        _rows: &DataFrame,
        _ctx: &Context,
        _progress: Progress,
        _out: &mut Vec<Alert>,
    ) -> Result<()> {
        Ok(())
    }
    /// Rows the detector could not evaluate since the last call (for the event log).
    fn take_errors(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// The schema of the detector's own table (`gold/<name>`), if it writes one.
    fn output_schema(&self) -> Option<Schema> {
        None
    }
    /// The rows for its own table made since the last call.
    fn take_output(&mut self) -> Result<Option<DataFrame>> {
        Ok(None)
    }
    /// The detector's state, to be restored by [`restore`](Self::restore).
    fn save(&self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
    fn restore(&mut self, _state: serde_json::Value) -> Result<()> {
        Ok(())
    }
}

/// Row names for alerts: the id column's value as text (a key may be of any scalar type, e.g.
/// integer ids), or `file:line`.
pub enum RowIds<'a> {
    Column(StringChunked),
    Lineage(&'a StringChunked, &'a Int64Chunked),
}

impl<'a> RowIds<'a> {
    pub fn new(rows: &'a DataFrame, ctx: &Context) -> Result<Self> {
        Ok(match &ctx.id_column {
            Some(c) => RowIds::Column(as_strings(rows, c)?),
            None => RowIds::Lineage(
                rows.column(SOURCE_FILE)?.str()?,
                rows.column(SOURCE_LINE)?.i64()?,
            ),
        })
    }

    pub fn get(&self, i: usize) -> String {
        match self {
            RowIds::Column(c) => c.get(i).unwrap_or("").to_string(),
            RowIds::Lineage(f, l) => {
                format!("{}:{}", f.get(i).unwrap_or(""), l.get(i).unwrap_or(0))
            }
        }
    }
}

/// A datetime column's values in microseconds since the epoch.
pub fn micros(rows: &DataFrame, column: &str) -> Result<Int64Chunked> {
    let c = rows
        .column(column)?
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))?;
    Ok(c.datetime()?.physical().clone())
}

/// A column as text, whatever its type (keys may be strings or numbers).
pub fn as_strings(rows: &DataFrame, column: &str) -> Result<StringChunked> {
    Ok(rows.column(column)?.cast(&DataType::String)?.str()?.clone())
}

/// `2025-07-10 14:00:04.000` for a microsecond timestamp: digits beyond milliseconds are
/// cut, not rounded (as Flink prints a TIMESTAMP(3)).
pub fn show_time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| micros.to_string())
}
