//! Source progress: which files each committed batch read.
//!
//! The file list of a batch is stored in the commitInfo of the bronze commit that holds the
//! batch's rows, next to the `txn` (pipeline id, batch number). Both land in one atomic Delta
//! commit, so the table and the progress can never disagree. At start-up the seen-file set is
//! rebuilt from the log (bronze is created with `delta.enableExpiredLogCleanup = false` so
//! those commits stay readable), from its last checkpoint on (see `seen`).

use isolake_data::lake::LakeTable;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::SourceFile;
use crate::error::Result;

/// The commitInfo key isolake's progress lives under.
pub const PROGRESS_KEY: &str = "isolake";

/// Which step of a batch a commit is (its `flow` in commitInfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Bronze's rows and the files they came from.
    Bronze,
    /// A batch without files that releases gold's watermark buffer (`run --drain`).
    Drain,
    /// A batch without rows recording files as seen (`include_existing_files = false`).
    SkipExisting,
    Silver,
    Quarantine,
    /// `gold/scored_transactions` and detector tables.
    Gold,
    /// `gold/alerts`, naming the detector state saved with it.
    Alerts,
    /// The emptying commit of a full refresh.
    FullRefresh,
    /// Written by a later isolake: kept, never acted on.
    #[serde(other)]
    Other,
}

/// What one batch's commit records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchProgress {
    pub pipeline: String,
    pub batch: u64,
    pub flow: Step,
    #[serde(default)]
    pub files: Vec<SourceFile>,
    /// Gold: the state snapshot saved with this commit (see `gold::state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl BatchProgress {
    pub fn to_metadata(&self) -> Result<Map<String, Value>> {
        let mut map = Map::new();
        map.insert(PROGRESS_KEY.to_string(), serde_json::to_value(self)?);
        Ok(map)
    }

    pub fn from_commit_info(info: &Map<String, Value>) -> Option<Self> {
        serde_json::from_value(info.get(PROGRESS_KEY)?.clone()).ok()
    }
}

/// What [`newest`] does with a commit's progress.
pub enum Look {
    Take,
    Skip,
    Stop,
}

/// The progress of the newest commit of `table` that `look` takes, walking back from the
/// latest version (start-up asks about the last few batches only); `None` once `look` stops
/// or the log ends. Commits without progress (maintenance) are passed over.
pub async fn newest(
    table: &LakeTable,
    mut look: impl FnMut(&BatchProgress) -> Look,
) -> Result<Option<BatchProgress>> {
    for version in (0..=table.version()).rev() {
        let Some(info) = table.version_info(version).await? else {
            break;
        };
        let Some(progress) = BatchProgress::from_commit_info(&info.commit_info) else {
            continue;
        };
        match look(&progress) {
            Look::Take => return Ok(Some(progress)),
            Look::Skip => {}
            Look::Stop => break,
        }
    }
    Ok(None)
}

/// The pipeline that committed bronze's latest batch, or `None` for a new lake.
pub async fn owner(bronze: &LakeTable) -> Result<Option<String>> {
    Ok(newest(bronze, |_| Look::Take).await?.map(|p| p.pipeline))
}

/// The progress pipeline `id`'s commit of `batch` to `table` records (its step, files, state).
pub async fn of_batch(table: &LakeTable, id: &str, batch: u64) -> Result<Option<BatchProgress>> {
    newest(table, |p| match p {
        p if p.pipeline == id && p.batch == batch => Look::Take,
        p if p.pipeline == id && p.batch < batch => Look::Stop,
        _ => Look::Skip,
    })
    .await
}
