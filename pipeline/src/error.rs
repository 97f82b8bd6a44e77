//! The crate's error: each concern's own error enum, wrapped, and the exit code each maps to
//! (the binary's documented codes).
//!
//! The wrapped enums live in files that import nothing of the crate (`config`,
//! `silver::refused`, `lock`, `query::error`, `gold::dimensions::error`, `init::error`), so
//! the errors never form an import circle with the code that raises them.

use std::path::{Path, PathBuf};

pub use crate::config::ConfigError;
pub use crate::gold::dimensions::error::DimensionError;
pub use crate::init::error::InitError;
pub use crate::lock::LockError;
pub use crate::query::error::QueryError;
pub use crate::silver::refused::Refused;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "{location} is missing: a commit names this state file. Restore it from a backup, or \
         rebuild gold with `run --full-refresh`"
    )]
    MissingState { location: String },

    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The batch breaks a declared rule; nothing of it was committed.
    #[error(transparent)]
    Refused(#[from] Refused),

    #[error(transparent)]
    SchemaChange(#[from] crate::schema_change::error::NotAdditive),

    #[error(transparent)]
    Lock(#[from] LockError),

    #[error("the pipeline's tables disagree: {0}")]
    Inconsistent(#[from] Inconsistency),

    #[error(
        "no model to score gold with ({uri}): {source}. Train and promote one (isolake-train \
         --promote production), or set [model] on_missing_model = \"skip_scoring\""
    )]
    NoModel {
        uri: String,
        source: Box<isolake_models::Error>,
    },

    /// Boxed: a query's error is large and rare, and every `Result` carries the largest.
    #[error(
        "no model to score gold with: {reason} ({uri}). Promote a version trained on silver's \
         columns, or set [model] on_missing_model = \"skip_scoring\""
    )]
    ModelRejected { uri: String, reason: String },

    #[error(transparent)]
    Query(Box<QueryError>),

    #[error(transparent)]
    Dimension(Box<DimensionError>),

    /// `init` could not propose a config.
    #[error(transparent)]
    Init(#[from] InitError),

    #[error("no table {name:?} (tables: {tables})")]
    NoSuchTable { name: String, tables: String },

    /// One lake holds one pipeline: silver, quarantine and gold hold no pipeline id column,
    /// and a second id's batch numbers would overlap the first's.
    #[error(
        "the lake {lake} belongs to pipeline {owner:?}, not {id:?}: give this pipeline a lake \
         of its own (or set id = {owner:?} to run the pipeline that owns it)"
    )]
    LakeOwned {
        lake: String,
        owner: String,
        id: String,
    },

    #[error(
        "a retention of {hours} h is below the safe default of {safe} h: readers and time \
         travel older than that would break. Pass --force to do it anyway"
    )]
    UnsafeRetention { hours: u64, safe: u64 },

    #[error("file watcher on {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },

    #[error("cannot handle SIGINT/SIGTERM: {0}")]
    Signals(std::io::Error),

    #[error("metrics address {addr}: {source}")]
    Metrics {
        addr: String,
        source: std::io::Error,
    },

    #[error(transparent)]
    Data(#[from] isolake_data::Error),

    #[error(transparent)]
    Score(#[from] isolake_score::Error),

    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),

    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Tables (or state) that do not agree with each other: something outside the pipeline
/// changed them. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Inconsistency {
    #[error(
        "silver is at batch {silver} and quarantine at {quarantine}, but bronze only at \
         {bronze}; were the tables replaced? Run with --full-refresh"
    )]
    AheadOfBronze {
        silver: u64,
        quarantine: u64,
        bronze: u64,
    },
    #[error(
        "bronze already holds batch {batch} of pipeline {pipeline:?}: another process wrote to \
         it (the pipeline lock should prevent this)"
    )]
    BatchTaken { pipeline: String, batch: u64 },
    #[error(
        "gold/alerts is at batch {batch} but its commit names no detector state; run with \
         --full-refresh to rebuild gold"
    )]
    NoDetectorState { batch: u64 },
    #[error("detector {detector:?}: unreadable state: {reason}")]
    DetectorState { detector: String, reason: String },
}

impl From<QueryError> for Error {
    fn from(e: QueryError) -> Self {
        Error::Query(Box::new(e))
    }
}

impl From<DimensionError> for Error {
    fn from(e: DimensionError) -> Self {
        Error::Dimension(Box::new(e))
    }
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The binary's exit code: 2 invalid config or input, 3 locked (or the lease lost), 4 refused batch, 5 no
    /// model, 1 anything else (an unreadable config file among them).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(ConfigError::Read { .. }) => 1,
            Error::Config(_)
            | Error::Dimension(_)
            | Error::NoSuchTable { .. }
            | Error::LakeOwned { .. }
            | Error::SchemaChange(_)
            | Error::UnsafeRetention { .. } => 2,
            Error::Query(e) if e.is_user_error() => 2,
            Error::Init(e) if e.is_user_error() => 2,
            Error::Lock(LockError::Held { .. }) => 3,
            // Lost the lease to a standby: nothing more was committed.
            Error::Data(isolake_data::Error::Fenced { .. }) => 3,
            Error::Refused(_) => 4,
            Error::NoModel { .. } | Error::ModelRejected { .. } => 5,
            _ => 1,
        }
    }
}
