//! The index of every landed file the pipeline's batches read (what Auto Loader keeps in its
//! RocksDB), rebuilt at start-up from bronze's commits.
//!
//! Bronze keeps its whole log, so reading it from version 0 at every start would cost time in
//! proportion to the lake's age. Instead a checkpoint of the index
//! (`<lake>/_state/<id>/seen_files.json`) is written every [`CHECKPOINT_EVERY`] bronze
//! commits, and start-up reads only the commits after the one it covers.
//!
//! The checkpoint is a cache of what bronze's log says, never a source of truth. It is
//! written after the commits it covers, and it names the bronze table (its id) and the
//! version it covers. One that does not match the table is ignored and the log is read from
//! the start: a bronze created again, a version bronze does not have, a file that does not
//! parse.

use std::collections::{BTreeSet, HashMap, HashSet};

use isolake_data::lake::{LakeTable, VersionInfo};
use serde::{Deserialize, Serialize};

use super::SourceFile;
use super::progress::{BatchProgress, Step};
use crate::durable::StateDir;
use crate::error::Result;

/// Bronze commits between two checkpoints (unless `maintenance.progress_checkpoint_every`
/// says otherwise): start-up reads at most this many commit files.
pub const CHECKPOINT_EVERY: u64 = 256;

/// The checkpoint's name in the pipeline's state directory.
pub const CHECKPOINT_FILE: &str = "seen_files.json";

const FORMAT: u32 = 1;

/// Every file the pipeline's committed batches read: path → the version of it last read.
#[derive(Debug, Default, Clone)]
pub struct SeenFiles {
    files: HashMap<String, SourceFile>,
    /// Each file's place in the batch that read it: catching a batch up reads its rows in the
    /// order the batch did (which rows are late depends on it).
    places: HashMap<String, usize>,
    /// When the bronze commit that read each file landed (ms since the epoch): cleaning the
    /// landing zone waits `clean_source_retention` after it.
    read_at: HashMap<String, i64>,
    /// The greatest path read (kept as files are recorded: a poll asks for it).
    last_path: Option<String>,
    /// Batches that drained gold's watermark buffer (`run --drain`): a replay must too.
    pub drains: HashSet<u64>,
    /// Other pipeline ids that committed to this bronze (one lake holds one pipeline).
    pub other_pipelines: BTreeSet<String>,
    /// Where checkpoints go and what the last one covers (`None`: none written).
    checkpoints: Option<Checkpoints>,
    /// Bronze commit files read at start-up (after the checkpoint).
    pub commits_read: u64,
}

#[derive(Debug, Clone)]
struct Checkpoints {
    dir: StateDir,
    every: u64,
    pipeline: String,
    table_id: String,
    covered: Option<u64>,
}

/// The checkpoint file's content.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    format: u32,
    pipeline: String,
    /// Bronze's table id: a table created again under the same path has another.
    table_id: String,
    /// The bronze version the index holds every commit of (inclusive).
    version: u64,
    /// Each file with its place in the batch that read it.
    files: Vec<(SourceFile, usize)>,
    drains: Vec<u64>,
    /// Each file's bronze commit time (absent in checkpoints of earlier versions).
    #[serde(default)]
    read_at: HashMap<String, i64>,
}

impl SeenFiles {
    /// Rebuilds the index of pipeline `id` from the checkpoint in `state_dir`, if it matches
    /// `bronze`, and bronze's commits after it; then writes a checkpoint if one is due (one
    /// every `every` bronze commits).
    pub async fn load(
        bronze: &LakeTable,
        id: &str,
        state_dir: &StateDir,
        every: u64,
    ) -> Result<Self> {
        let table_id = bronze.table_id().await?;
        let checkpoint = match table_id.as_deref() {
            Some(t) => read_checkpoint(state_dir, id, t, bronze.version()).await,
            None => None,
        };
        let covered = checkpoint.as_ref().map(|c| c.version);
        let mut seen = checkpoint.map(Self::from_checkpoint).unwrap_or_default();
        let from = covered.map_or(0, |v| v + 1);
        for version in from..=bronze.version() {
            if let Some(info) = bronze.version_info(version).await? {
                seen.apply(id, &info);
                seen.commits_read += 1;
            }
        }
        seen.checkpoints = table_id.map(|table_id| Checkpoints {
            dir: state_dir.clone(),
            every: every.max(1),
            pipeline: id.to_string(),
            table_id,
            covered,
        });
        seen.checkpoint_if_due(bronze.version()).await;
        Ok(seen)
    }

    fn from_checkpoint(checkpoint: Checkpoint) -> Self {
        let mut seen = Self {
            drains: checkpoint.drains.into_iter().collect(),
            ..Self::default()
        };
        for (file, place) in checkpoint.files {
            seen.places.insert(file.path.clone(), place);
            seen.files.insert(file.path.clone(), file);
        }
        seen.last_path = seen.files.keys().max().cloned();
        seen.read_at = checkpoint.read_at;
        seen
    }

    /// One bronze commit's progress, if it has any.
    fn apply(&mut self, id: &str, info: &VersionInfo) {
        let Some(progress) = BatchProgress::from_commit_info(&info.commit_info) else {
            return;
        };
        if progress.pipeline != id {
            self.other_pipelines.insert(progress.pipeline);
            return;
        }
        self.record(&progress.files);
        match (progress.flow, info.timestamp_ms) {
            // Skipped files were never read: cleaning leaves them.
            (Step::SkipExisting, _) | (_, None) => self.forget_read_at(&progress.files),
            (_, Some(at)) => {
                for file in &progress.files {
                    self.read_at.insert(file.path.clone(), at);
                }
            }
        }
        if progress.flow == Step::Drain {
            self.drains.insert(progress.batch);
        }
    }

    /// Records the files of a bronze commit that just landed.
    pub fn record(&mut self, files: &[SourceFile]) {
        let now = chrono::Utc::now().timestamp_millis();
        for f in files {
            self.read_at.insert(f.path.clone(), now);
        }
        for (place, f) in files.iter().enumerate() {
            self.files.insert(f.path.clone(), f.clone());
            self.places.insert(f.path.clone(), place);
        }
        if let Some(last) = files.iter().map(|f| &f.path).max()
            && self.last_path.as_ref().is_none_or(|l| last > l)
        {
            self.last_path = Some(last.clone());
        }
    }

    /// Writes a checkpoint covering bronze `version` when enough commits passed
    /// since the last one. Call it only once the index holds every commit up to `version`.
    /// A failed write is logged and costs only a longer start-up: the log has it all.
    pub async fn checkpoint_if_due(&mut self, version: u64) {
        let Some(at) = &self.checkpoints else {
            return;
        };
        let due = at
            .covered
            .map_or(version + 1, |c| version.saturating_sub(c));
        if due < at.every || !self.other_pipelines.is_empty() {
            return;
        }
        match self.write_checkpoint(at, version).await {
            Ok(()) => {
                if let Some(at) = &mut self.checkpoints {
                    at.covered = Some(version);
                }
            }
            Err(e) => tracing::warn!("could not checkpoint the seen-files index: {e}"),
        }
    }

    async fn write_checkpoint(&self, at: &Checkpoints, version: u64) -> Result<()> {
        let mut files: Vec<(SourceFile, usize)> = self
            .files
            .values()
            .map(|f| (f.clone(), self.place(&f.path).unwrap_or(0)))
            .collect();
        files.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        let mut drains: Vec<u64> = self.drains.iter().copied().collect();
        drains.sort_unstable();
        let checkpoint = Checkpoint {
            format: FORMAT,
            pipeline: at.pipeline.clone(),
            table_id: at.table_id.clone(),
            version,
            files,
            drains,
            read_at: self.read_at.clone(),
        };
        let bytes = serde_json::to_vec(&checkpoint)?;
        at.dir.write(CHECKPOINT_FILE, bytes, false).await
    }

    /// The place of `path` in the batch that read it last.
    pub fn place(&self, path: &str) -> Option<usize> {
        self.places.get(path).copied()
    }

    pub fn get(&self, path: &str) -> Option<&SourceFile> {
        self.files.get(path)
    }

    /// Files recorded as seen without being read (`include_existing_files = false`).
    pub fn forget_read_at(&mut self, files: &[SourceFile]) {
        for file in files {
            self.read_at.remove(&file.path);
        }
    }

    /// When the bronze commit that read `file` (this very version of it) landed.
    pub fn read_at(&self, file: &SourceFile) -> Option<i64> {
        match self.files.get(&file.path) {
            Some(seen) if seen == file => self.read_at.get(&file.path).copied(),
            _ => None,
        }
    }

    /// The greatest path read (where a listing after the last seen key starts).
    pub fn last_path(&self) -> Option<&str> {
        self.last_path.as_deref()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// The checkpoint at `path` if it is pipeline `id`'s index of this bronze (`table_id`) at a
/// version bronze has (≤ `latest`); otherwise `None`, and the log is read from the start.
async fn read_checkpoint(
    dir: &StateDir,
    id: &str,
    table_id: &str,
    latest: u64,
) -> Option<Checkpoint> {
    let where_ = dir.describe(CHECKPOINT_FILE);
    let bytes = match dir.read(CHECKPOINT_FILE).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!("ignoring the seen-files checkpoint {where_}: {e}");
            return None;
        }
    };
    let ignored = |why: &str| {
        tracing::warn!(
            "ignoring the seen-files checkpoint {where_} ({why}): reading bronze's whole log"
        );
        None
    };
    let checkpoint: Checkpoint = match serde_json::from_slice(&bytes) {
        Ok(c) => c,
        Err(e) => return ignored(&e.to_string()),
    };
    if checkpoint.format != FORMAT {
        return ignored("a format this version does not read");
    }
    if checkpoint.pipeline != id || checkpoint.table_id != table_id {
        return ignored("it describes another pipeline or bronze table");
    }
    if checkpoint.version > latest {
        return ignored("it covers versions bronze does not have");
    }
    Some(checkpoint)
}
