//! Gold's state between batches: the watermark, the rows waiting for it, and every detector's
//! state, saved as a snapshot that the gold commit references.
//!
//! The snapshot files (`<lake>/_state/<pipeline>/gold-<batch>.{json,parquet}`) are written
//! before the `gold/alerts` commit of the batch, and that commit's metadata names them, in the
//! same atomic commit as the alerts. Start-up restores the snapshot named by the last
//! committed batch; a snapshot whose commit never landed is simply never named (and is
//! overwritten by the retry).

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::durable::StateDir;
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

/// Writes the snapshot of `batch` (and its buffer) whole; returns the JSON file's name.
/// `epoch`: the writer's lease epoch (0 on local lakes). It is part of the name, so that a
/// writer that lost its lease cannot overwrite the snapshot its successor commits.
pub async fn save(
    dir: &StateDir,
    mut snapshot: Snapshot,
    buffer: Option<&DataFrame>,
    epoch: i64,
) -> Result<String> {
    // `name_of` and `prune` rely on this name.
    let stem = match epoch {
        0 => format!("gold-{:012}", snapshot.batch),
        e => format!("gold-{:012}-{e}", snapshot.batch),
    };
    snapshot.buffer = None;
    if let Some(buffer) = buffer.filter(|b| b.height() > 0) {
        let name = format!("{stem}.parquet");
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes).finish(&mut buffer.clone())?;
        dir.write(&name, bytes, false).await?;
        snapshot.buffer = Some(name);
    }
    let name = format!("{stem}.json");
    // One directory sync covers both renames.
    dir.write(&name, serde_json::to_vec(&snapshot)?, true)
        .await?;
    Ok(name)
}

/// The batch and epoch of a snapshot file's name (`gold-<batch>[-<epoch>].<ext>`).
fn batch_and_epoch(name: &str) -> Option<(u64, i64)> {
    let stem = name.strip_prefix("gold-")?.split('.').next()?;
    match stem.split_once('-') {
        Some((batch, epoch)) => Some((batch.parse().ok()?, epoch.parse().ok()?)),
        None => Some((stem.parse().ok()?, 0)),
    }
}

/// The name `save` gave the snapshot of `batch`, if it is in `dir` (of the newest epoch,
/// when writers handed over).
pub async fn name_of(dir: &StateDir, batch: u64) -> Result<Option<String>> {
    let names = dir.names().await?;
    Ok(names
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .filter_map(|n| batch_and_epoch(&n).map(|(b, e)| (b, e, n)))
        .filter(|(b, _, _)| *b == batch)
        .max_by_key(|(_, e, _)| *e)
        .map(|(_, _, n)| n))
}

/// Reads a snapshot named by a commit.
pub async fn load(dir: &StateDir, name: &str) -> Result<(Snapshot, Option<DataFrame>)> {
    let missing = |name: &str| Error::MissingState {
        location: dir.describe(name),
    };
    let bytes = dir.read(name).await?.ok_or_else(|| missing(name))?;
    let snapshot: Snapshot = serde_json::from_slice(&bytes)?;
    let buffer = match &snapshot.buffer {
        Some(file) => {
            let bytes = dir.read(file).await?.ok_or_else(|| missing(file))?;
            Some(ParquetReader::new(std::io::Cursor::new(bytes)).finish()?)
        }
        None => None,
    };
    Ok((snapshot, buffer))
}

/// Deletes snapshots older than the last few batches before `batch` (best effort).
pub async fn prune(dir: &StateDir, batch: u64) {
    let Ok(names) = dir.names().await else {
        return;
    };
    for name in names {
        if batch_and_epoch(&name).is_some_and(|(n, _)| n + KEEP < batch) {
            let _ = dir.remove(&name).await;
        }
    }
}
