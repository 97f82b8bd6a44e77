//! Why `init` could not propose a config: nothing to sample, nothing usable in the sample, an
//! output it must not overwrite, or a failure reading or writing.
//!
//! Imports nothing of the crate, so that `error::Error` wraps it without an import circle.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("init: invalid --id {id:?}: use letters, digits, '-', '_' or '.'")]
    InvalidId { id: String },

    #[error("init: landing directory {}: {source}", path.display())]
    Landing {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "init: no landed file in {} matches {patterns} (hidden, `_` and temporary names are \
         skipped): land some NDJSON files first",
        landing.display()
    )]
    NoFiles { landing: PathBuf, patterns: String },

    #[error(
        "init: none of the {lines} line(s) sampled from {files} file(s) is a JSON object: \
         init expects NDJSON, one object per line"
    )]
    NothingParseable { files: usize, lines: usize },

    #[error(
        "init: no field looks like an event time (RFC 3339 or date-time text, or epoch \
         milliseconds in an integer field named like a time: timestamp, ts, *_time, *_at); \
         fields seen: {fields}. A pipeline needs one: write schema.event_time by hand"
    )]
    NoEventTime { fields: String },

    #[error("init: {} exists: pass --force to replace it", path.display())]
    OutputExists { path: PathBuf },

    #[error("init: {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The proposal failed the compile step `validate` runs: a bug of init, never written.
    #[error(
        "init: the proposed config does not validate (a bug of init; nothing was written):\n  {}",
        issues.join("\n  ")
    )]
    Rejected { issues: Vec<String> },
}

impl InitError {
    /// A problem with what the user asked or landed (exit 2), not a failure of init.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, InitError::Io { .. } | InitError::Rejected { .. })
    }
}
