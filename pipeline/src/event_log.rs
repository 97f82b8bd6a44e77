//! The event log: one row per flow per batch, a Delta table queryable like any other.
//!
//! Flows and statuses are enums; their text appears only where rows are written. One list of
//! column descriptions ([`COLUMNS`]) gives both the table's schema and the rows' frame.

use polars::prelude::*;

use crate::bronze::utc_micros;

/// Which part of the pipeline an event is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flow {
    /// The landing zone: refused, unreadable, changed or skipped files.
    #[default]
    Source,
    Bronze,
    Silver,
    Quarantine,
    Gold,
    /// The model that scores gold (loaded, switched, missing).
    Model,
    /// A `run --full-refresh` as a whole.
    FullRefresh,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Source => "source",
            Flow::Bronze => "bronze",
            Flow::Silver => "silver",
            Flow::Quarantine => "quarantine",
            Flow::Gold => "gold",
            Flow::Model => "model",
            Flow::FullRefresh => "full_refresh",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    #[default]
    Ok,
    /// Re-run at start-up for a batch a crash left behind (or by a full refresh).
    Recovered,
    Failed,
    /// Gold released every buffered row (`run --drain`).
    Drained,
    /// A detector could not evaluate some rows.
    RowErrors,
    /// A landed entry the source will not read (e.g. a symlink out of the landing zone).
    Refused,
    /// A landed file or directory that could not be read (permissions, vanished): reported
    /// once and skipped; the rest is ingested.
    FileUnreadable,
    ChangedAfterIngestion,
    /// `include_existing_files = false`: files there at the first start, recorded unread.
    SkippedExisting,
    ModelLoaded,
    ModelSwitched,
    ModelMissing,
    /// A version silver cannot be scored with (a feature it lacks): not switched to.
    ModelRejected,
    RegistryUnreachable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Recovered => "recovered",
            Status::Failed => "failed",
            Status::Drained => "drained",
            Status::RowErrors => "row_errors",
            Status::Refused => "refused",
            Status::FileUnreadable => "file_unreadable",
            Status::ChangedAfterIngestion => "changed_after_ingestion",
            Status::SkippedExisting => "skipped_existing",
            Status::ModelLoaded => "model_loaded",
            Status::ModelSwitched => "model_switched",
            Status::ModelMissing => "model_missing",
            Status::ModelRejected => "model_rejected",
            Status::RegistryUnreachable => "registry_unreachable",
        }
    }
}

/// One flow's account of one batch (or of a source event such as a refused file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowEvent {
    pub batch_id: Option<u64>,
    pub flow: Flow,
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
    pub status: Status,
    pub error: Option<String>,
}

impl FlowEvent {
    /// An event of `flow` with `status`, everything else zero.
    pub fn new(flow: Flow, status: Status) -> Self {
        Self {
            flow,
            status,
            ..Default::default()
        }
    }
}

/// How a column is filled from an event.
enum Fill {
    /// When the rows are written (µs, UTC).
    Now,
    Pipeline,
    Count(fn(&FlowEvent) -> u64),
    Maybe(fn(&FlowEvent) -> Option<u64>),
    Text(fn(&FlowEvent) -> Option<&str>),
}

/// The event log's columns, in table order (older lakes grew the last three later).
const COLUMNS: [(&str, Fill); 21] = [
    ("timestamp", Fill::Now),
    ("pipeline_id", Fill::Pipeline),
    ("batch_id", Fill::Maybe(|e| e.batch_id)),
    ("flow", Fill::Text(|e| Some(e.flow.as_str()))),
    ("files", Fill::Count(|e| e.files)),
    ("bytes", Fill::Count(|e| e.bytes)),
    ("rows_in", Fill::Count(|e| e.rows_in)),
    ("rows_out", Fill::Count(|e| e.rows_out)),
    ("expectations", Fill::Text(|e| e.expectations.as_deref())),
    ("dropped", Fill::Count(|e| e.dropped)),
    ("quarantined", Fill::Count(|e| e.quarantined)),
    ("rescued", Fill::Count(|e| e.rescued)),
    ("corrupt", Fill::Count(|e| e.corrupt)),
    ("backlog_files", Fill::Count(|e| e.backlog_files)),
    ("backlog_bytes", Fill::Count(|e| e.backlog_bytes)),
    ("duration_ms", Fill::Count(|e| e.duration_ms)),
    ("status", Fill::Text(|e| Some(e.status.as_str()))),
    ("error", Fill::Text(|e| e.error.as_deref())),
    ("late", Fill::Count(|e| e.late)),
    ("alerts", Fill::Count(|e| e.alerts)),
    ("model_version", Fill::Maybe(|e| e.model_version)),
];

fn dtype(fill: &Fill) -> DataType {
    match fill {
        Fill::Now => utc_micros(),
        Fill::Pipeline | Fill::Text(_) => DataType::String,
        Fill::Count(_) | Fill::Maybe(_) => DataType::Int64,
    }
}

pub fn schema() -> Schema {
    COLUMNS
        .iter()
        .map(|(name, fill)| Field::new((*name).into(), dtype(fill)))
        .collect()
}

/// The events as rows of [`schema`].
pub fn frame(pipeline_id: &str, events: &[FlowEvent]) -> PolarsResult<DataFrame> {
    let now = chrono::Utc::now().timestamp_micros();
    let n = events.len();
    let columns = COLUMNS
        .iter()
        .map(|(name, fill)| {
            let name = PlSmallStr::from_static(name);
            Ok(match fill {
                Fill::Now => Column::new(name, vec![now; n]).cast(&utc_micros())?,
                Fill::Pipeline => Column::new(name, vec![pipeline_id; n]),
                Fill::Count(f) => {
                    Column::new(name, events.iter().map(|e| f(e) as i64).collect::<Vec<_>>())
                }
                Fill::Maybe(f) => Column::new(
                    name,
                    events
                        .iter()
                        .map(|e| f(e).map(|v| v as i64))
                        .collect::<Vec<_>>(),
                ),
                Fill::Text(f) => Column::new(name, events.iter().map(f).collect::<Vec<_>>()),
            })
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(n, columns)
}
