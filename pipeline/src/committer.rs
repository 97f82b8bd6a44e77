//! Every table's commit of a batch is built here: the app transaction (pipeline id, batch
//! number) that makes a retry a no-op, the batch's progress in commitInfo (its step, the files
//! it read, the detector state it saved), and whether the commit may evolve the schema.

use isolake_data::lake::{AppTransaction, Commit, Fence};

use crate::error::Result;
use crate::source::SourceFile;
use crate::source::progress::{BatchProgress, Step};

/// Builds the commits of pipeline `id`.
#[derive(Debug, Clone)]
pub struct Committer {
    pipeline: String,
    /// The lease's fence (object-store lakes), carried by every commit of a batch.
    fence: Option<Fence>,
}

/// One commit being described (see [`Committer::commit`]).
#[must_use]
pub struct BatchCommit {
    progress: BatchProgress,
    evolve_schema: bool,
    fence: Option<Fence>,
}

impl Committer {
    pub fn new(pipeline: &str) -> Self {
        Self {
            pipeline: pipeline.to_string(),
            fence: None,
        }
    }

    /// Every commit from now on carries `fence` (see [`Fence`]).
    pub fn with_fence(mut self, fence: Option<Fence>) -> Self {
        self.fence = fence;
        self
    }

    pub fn fence(&self) -> Option<&Fence> {
        self.fence.as_ref()
    }

    /// The lease epoch commits are fenced with (0: no lease, a local lake).
    pub fn epoch(&self) -> i64 {
        self.fence.as_ref().map_or(0, |f| f.epoch)
    }

    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The app transaction of `batch` (0 resets a table for a full refresh).
    pub fn txn(&self, batch: u64) -> AppTransaction {
        AppTransaction {
            app_id: self.pipeline.clone(),
            version: batch as i64,
        }
    }

    /// The commit of `step` of `batch`: no files, no state, no schema evolution unless said.
    pub fn commit(&self, batch: u64, step: Step) -> BatchCommit {
        BatchCommit {
            progress: BatchProgress {
                pipeline: self.pipeline.clone(),
                batch,
                flow: step,
                files: Vec::new(),
                state: None,
            },
            evolve_schema: false,
            fence: self.fence.clone(),
        }
    }
}

impl BatchCommit {
    /// The files the batch read (bronze).
    pub fn files(mut self, files: Vec<SourceFile>) -> Self {
        self.progress.files = files;
        self
    }

    /// The detector state snapshot saved with the commit (alerts).
    pub fn state(mut self, name: String) -> Self {
        self.progress.state = Some(name);
        self
    }

    /// Whether the rows may add columns to the table.
    pub fn evolve(mut self, evolve: bool) -> Self {
        self.evolve_schema = evolve;
        self
    }

    pub fn build(self) -> Result<Commit> {
        Ok(Commit {
            app_transaction: Some(AppTransaction {
                app_id: self.progress.pipeline.clone(),
                version: self.progress.batch as i64,
            }),
            metadata: self.progress.to_metadata()?,
            evolve_schema: self.evolve_schema,
            fence: self.fence,
        })
    }
}
