//! The event log: one row per flow per batch, a Delta table queryable like any other.

use polars::prelude::*;

use crate::bronze::utc_micros;
use crate::error::Result;

/// One flow's account of one batch (or of a source event such as a refused file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowEvent {
    pub batch_id: Option<u64>,
    /// `source`, `bronze`, `silver`, `quarantine`, `gold`, `model`.
    pub flow: String,
    pub files: u64,
    pub bytes: u64,
    pub rows_in: u64,
    pub rows_out: u64,
    /// Per-expectation passed/failed counts, as JSON.
    pub expectations: Option<String>,
    pub dropped: u64,
    pub quarantined: u64,
    pub rescued: u64,
    pub corrupt: u64,
    pub backlog_files: u64,
    pub backlog_bytes: u64,
    pub duration_ms: u64,
    /// Gold: rows that came later than the watermark (scored, but skipped by sequence rules).
    pub late: u64,
    /// Gold: alerts raised in this batch.
    pub alerts: u64,
    /// Gold: the model version that scored the batch.
    pub model_version: Option<u64>,
    /// `ok`, `recovered`, `failed`, `refused`, `changed_after_ingestion`, ...
    pub status: String,
    pub error: Option<String>,
}

pub fn schema() -> Schema {
    let mut schema = Schema::default();
    for (name, dtype) in [
        ("timestamp", utc_micros()),
        ("pipeline_id", DataType::String),
        ("batch_id", DataType::Int64),
        ("flow", DataType::String),
        ("files", DataType::Int64),
        ("bytes", DataType::Int64),
        ("rows_in", DataType::Int64),
        ("rows_out", DataType::Int64),
        ("expectations", DataType::String),
        ("dropped", DataType::Int64),
        ("quarantined", DataType::Int64),
        ("rescued", DataType::Int64),
        ("corrupt", DataType::Int64),
        ("backlog_files", DataType::Int64),
        ("backlog_bytes", DataType::Int64),
        ("duration_ms", DataType::Int64),
        ("status", DataType::String),
        ("error", DataType::String),
        ("late", DataType::Int64),
        ("alerts", DataType::Int64),
        ("model_version", DataType::Int64),
    ] {
        schema.with_column(name.into(), dtype);
    }
    schema
}

/// The events as rows of [`schema`].
pub fn frame(pipeline_id: &str, events: &[FlowEvent]) -> Result<DataFrame> {
    let now = chrono::Utc::now().timestamp_micros();
    let n = events.len();
    let int =
        |f: fn(&FlowEvent) -> u64| -> Vec<i64> { events.iter().map(|e| f(e) as i64).collect() };
    let columns = vec![
        Column::new("timestamp".into(), vec![now; n]).cast(&utc_micros())?,
        Column::new("pipeline_id".into(), vec![pipeline_id; n]),
        Column::new(
            "batch_id".into(),
            events
                .iter()
                .map(|e| e.batch_id.map(|b| b as i64))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "flow".into(),
            events.iter().map(|e| e.flow.as_str()).collect::<Vec<_>>(),
        ),
        Column::new("files".into(), int(|e| e.files)),
        Column::new("bytes".into(), int(|e| e.bytes)),
        Column::new("rows_in".into(), int(|e| e.rows_in)),
        Column::new("rows_out".into(), int(|e| e.rows_out)),
        Column::new(
            "expectations".into(),
            events
                .iter()
                .map(|e| e.expectations.as_deref())
                .collect::<Vec<_>>(),
        ),
        Column::new("dropped".into(), int(|e| e.dropped)),
        Column::new("quarantined".into(), int(|e| e.quarantined)),
        Column::new("rescued".into(), int(|e| e.rescued)),
        Column::new("corrupt".into(), int(|e| e.corrupt)),
        Column::new("backlog_files".into(), int(|e| e.backlog_files)),
        Column::new("backlog_bytes".into(), int(|e| e.backlog_bytes)),
        Column::new("duration_ms".into(), int(|e| e.duration_ms)),
        Column::new(
            "status".into(),
            events.iter().map(|e| e.status.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "error".into(),
            events
                .iter()
                .map(|e| e.error.as_deref())
                .collect::<Vec<_>>(),
        ),
        Column::new("late".into(), int(|e| e.late)),
        Column::new("alerts".into(), int(|e| e.alerts)),
        Column::new(
            "model_version".into(),
            events
                .iter()
                .map(|e| e.model_version.map(|v| v as i64))
                .collect::<Vec<_>>(),
        ),
    ];
    Ok(DataFrame::new(n, columns)?)
}
