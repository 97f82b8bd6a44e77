//! The one error type of `isolake-data`.

use std::path::PathBuf;

/// Everything that can go wrong in the data layer or the generator.
///
/// Messages are written for the person running the command: they say what was being done
/// and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid table location {location:?}: {reason}")]
    InvalidLocation { location: String, reason: String },

    #[error("no Delta table at {location} (create it first, or check the path)")]
    TableNotFound { location: String },

    #[error("table {location} has no version {version} (latest is {latest})")]
    VersionNotFound {
        location: String,
        version: i64,
        latest: i64,
    },

    #[error("column {column:?} has type {dtype}, which a Delta table cannot store: {hint}")]
    UnsupportedType {
        column: String,
        dtype: String,
        hint: String,
    },

    #[error(
        "the data has columns the table {location} does not ({columns}); \
         append with schema evolution enabled or drop them"
    )]
    UnexpectedColumns { location: String, columns: String },

    #[error(
        "table {location}: column {column} cannot take the values written to it without loss \
         ({types}); a write never turns a value into NULL"
    )]
    TypeMismatch {
        location: String,
        column: String,
        /// `table type ← frame type`.
        types: String,
    },

    #[error("object-store location {location} cannot be read yet; use a local path or file:// URL")]
    UnsupportedScheme { location: String },

    #[error("invalid argument {name}: {reason}")]
    InvalidArgument { name: &'static str, reason: String },

    #[error("table {location} changed while this commit was prepared: {reason}")]
    ConcurrentChange { location: String, reason: String },

    #[cfg(feature = "lake")]
    #[error("object store {location}: {source}")]
    ObjectStore {
        location: String,
        #[source]
        source: Box<deltalake::logstore::object_store::Error>,
    },

    #[error(
        "{location} does not support conditional writes (a second put-if-absent of one object \
         succeeded), so two writers could both commit one log entry and overwrite each \
         other's data. Use a store with conditional writes (AWS S3, MinIO, Cloudflare R2, \
         moto ≥ 5.2.1), or, if only one writer ever touches this lake, set \
         `unsafe_single_writer = true` in [storage]"
    )]
    NoConditionalWrites { location: String },

    #[error("{location}: this instance may no longer commit: {reason}")]
    Fenced { location: String, reason: String },

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[cfg(feature = "lake")]
    #[error("Delta Lake: {0}")]
    Delta(#[from] deltalake::DeltaTableError),

    #[cfg(feature = "lake")]
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),

    #[cfg(feature = "lake")]
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// An I/O error with the path it happened on, so the message names the file.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
