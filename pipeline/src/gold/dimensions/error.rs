//! Why a dimension cannot be loaded or joined.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DimensionError {
    #[error("dimension file {}: expected a .csv, .json, .jsonl or .ndjson file", path.display())]
    UnknownFormat { path: PathBuf },
    #[error("dimension file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: polars::prelude::PolarsError,
    },
    #[error("dimension {name:?}: {reason}")]
    BadRows { name: String, reason: String },
    #[error(transparent)]
    Data(#[from] isolake_data::Error),
    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),
}
