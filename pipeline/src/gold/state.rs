//! Gold's state between batches: the watermark, the rows waiting for it, and every detector's
//! state, saved as a snapshot that the gold commit references.
//!
//! The snapshot files (`<lake>/_state/<pipeline>/gold-<batch>.{json,parquet}`) are written
//! before the `gold/alerts` commit of the batch, and that commit's metadata names them, in the
//! same atomic commit as the alerts. Start-up restores the snapshot named by the last
//! committed batch; a snapshot whose commit never landed is simply never named (and is
//! overwritten by the retry).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::durable::write_durably;
use crate::error::{Error, Result};

/// How many snapshots to keep besides the newest (older ones are deleted).
const KEEP: u64 = 2;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub pipeline: String,
    pub batch: u64,
    /// Latest event time seen (µs).
    pub max_seen: Option<i64>,
    /// Detector name → its state.
    pub detectors: BTreeMap<String, serde_json::Value>,
    /// The rows waiting for the watermark (a parquet file next to this one), if any.
    pub buffer: Option<String>,
}

pub fn dir(lake_dir: &Path, pipeline: &str) -> PathBuf {
    lake_dir.join("_state").join(pipeline)
}

/// Writes the snapshot of `batch` (and its buffer) atomically; returns the JSON file's name.
pub fn save(dir: &Path, mut snapshot: Snapshot, buffer: Option<&DataFrame>) -> Result<String> {
    // `name_of` relies on this name.
    let stem = format!("gold-{:012}", snapshot.batch);
    snapshot.buffer = None;
    if let Some(buffer) = buffer.filter(|b| b.height() > 0) {
        let name = format!("{stem}.parquet");
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes).finish(&mut buffer.clone())?;
        write_durably(&dir.join(&name), &bytes, false)?;
        snapshot.buffer = Some(name);
    }
    let name = format!("{stem}.json");
    // One directory sync covers both renames.
    write_durably(&dir.join(&name), &serde_json::to_vec(&snapshot)?, true)?;
    Ok(name)
}

/// The name `save` gave the snapshot of `batch`, if it is in `dir`.
pub fn name_of(dir: &Path, batch: u64) -> Option<String> {
    let name = format!("gold-{batch:012}.json");
    dir.join(&name).is_file().then_some(name)
}

/// Reads a snapshot named by a commit.
pub fn load(dir: &Path, name: &str) -> Result<(Snapshot, Option<DataFrame>)> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let snapshot: Snapshot = serde_json::from_slice(&bytes)?;
    let buffer = match &snapshot.buffer {
        Some(file) => {
            let path = dir.join(file);
            let f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            Some(ParquetReader::new(f).finish()?)
        }
        None => None,
    };
    Ok((snapshot, buffer))
}

/// Deletes snapshots older than the last few batches before `batch` (best effort).
pub fn prune(dir: &Path, batch: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let number = name
            .strip_prefix("gold-")
            .and_then(|rest| rest.split('.').next())
            .and_then(|n| n.parse::<u64>().ok());
        if number.is_some_and(|n| n + KEEP < batch) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
