//! The pipeline's one error type.

use std::path::{Path, PathBuf};

use crate::config::ConfigIssue;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{} has {} problem(s):\n{}", path.display(), issues.len(), list(issues))]
    Config {
        path: PathBuf,
        issues: Vec<ConfigIssue>,
    },

    #[error("invalid expectation expression {expr:?}: {reason}")]
    Expression { expr: String, reason: String },

    #[error(
        "expectation {name:?} (action = fail) failed on {failed} row(s) of batch {batch}; \
         first offending row: {row}. Nothing of this batch was committed: fix the data or the \
         expectation in the config, then run again to resume"
    )]
    ExpectationFailed {
        name: String,
        batch: u64,
        failed: usize,
        row: String,
    },

    #[error(
        "new column(s) {columns} in {file} and schema.evolution = \"fail_on_new_columns\": \
         declare them in [schema] fields, or choose add_new_columns / rescue / none"
    )]
    NewColumns { columns: String, file: String },

    #[error(
        "pipeline {id:?} is already running (lock {} held{holder}); stop it first, or wait \
         for it to finish",
        path.display()
    )]
    Locked {
        id: String,
        path: PathBuf,
        holder: String,
    },

    #[error("the pipeline's tables disagree: {0}")]
    Inconsistent(String),

    #[error(
        "no model to score gold with ({uri}): {source}. Train and promote one (isolake-train \
         --promote production), or set [model] on_missing_model = \"skip_scoring\""
    )]
    Model {
        uri: String,
        source: Box<isolake_models::Error>,
    },

    #[error("demo, {step}: {reason}")]
    Demo { step: String, reason: String },

    #[error("query: {reason}")]
    Query { reason: String },

    #[error("dimension {name:?}: {reason}")]
    Dimension { name: String, reason: String },

    #[error("file watcher: {0}")]
    Watch(String),

    #[error(transparent)]
    Data(#[from] isolake_data::Error),

    #[error(transparent)]
    Score(#[from] isolake_score::Error),

    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),

    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn list(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("  {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}
