//! The Auto Loader: which landed files to read, when they are complete, and what was read.
//!
//! ```text
//! admission  which listed files the next batches take (new, complete, not changed)
//! clean      clean_source: move or delete files read long enough ago
//! listing    walk the landing dir: patterns, hidden/temporary names, symlink checks
//! stability  a file is picked only once complete (renamed in, or unchanged for a while)
//! progress   the files each committed batch read, recorded in bronze's Delta log
//! seen       the index of every file read: a checkpoint plus the log after it
//! json_line  one NDJSON line → borrowed fields (no map per line)
//! reader     bytes → lines → typed cells, never dropping a line (corrupt/rescued columns)
//! ```

pub mod admission;
pub mod clean;
mod json_line;
pub mod listing;
pub mod progress;
pub mod reader;
pub mod seen;
pub mod stability;

use serde::{Deserialize, Serialize};

/// A landed file as a batch read it: its identity for exactly-once purposes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceFile {
    /// Path relative to the landing directory, with `/` separators.
    pub path: String,
    pub size: u64,
    /// Modification time, milliseconds since the Unix epoch.
    pub mtime_ms: i64,
}
