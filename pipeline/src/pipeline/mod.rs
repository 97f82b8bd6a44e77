//! A running pipeline: its tables, its progress, and the micro-batch.
//!
//! A batch is parsed once and flows in memory through bronze → silver + quarantine → gold →
//! event log. Each table is committed with its own app transaction (pipeline id, batch
//! number); the bronze commit also records the files the batch read. Start-up reads all of
//! that back from the Delta logs (see `recovery`), so a crash at any instant resumes without
//! loss or duplicates.

pub mod batch;
pub mod front;
mod recovery;
mod start;

use polars::prelude::*;

use crate::committer::Committer;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::event_log::{Flow, FlowEvent, Status};
use crate::gold::stage::{GoldOutcome, GoldStage};
use crate::lock::{LockOptions, PipelineLock};
use crate::plan::Plan;
use crate::schema_change;
use crate::silver::SilverStage;
use crate::source::SourceFile;
use crate::source::progress::Step;
use crate::source::reader::ReadSchema;
use crate::source::seen::SeenFiles;
use crate::tables::{Tables, app_batch};

/// What one committed batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchSummary {
    pub batch: u64,
    pub files: usize,
    pub bytes: u64,
    pub bronze_rows: usize,
    pub silver_rows: usize,
    pub quarantined: usize,
    pub dropped: usize,
    pub alerts: usize,
    /// Rows gold scored.
    pub gold_rows: usize,
    pub alerts_by_detector: Vec<(String, u64)>,
    /// The model version that scored the batch.
    pub model_version: Option<u64>,
    /// Files that could not be read now (skipped until they change; see `Admission`).
    pub unreadable: Vec<SourceFile>,
}

/// How to open a pipeline.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Empty silver, quarantine and gold, then rebuild them from bronze (`run --full-refresh`).
    pub full_refresh: bool,
    /// Wait for the running instance to stop, then take over (`run --continuous --standby`).
    pub standby: bool,
}

pub struct Pipeline {
    pub plan: Plan,
    pub tables: Tables,
    pub seen: SeenFiles,
    pub(crate) committer: Committer,
    pub(crate) read_schema: ReadSchema,
    pub(crate) silver: SilverStage,
    pub(crate) gold: Option<GoldStage>,
    pub(crate) next_batch: u64,
    _lock: PipelineLock,
}

impl Pipeline {
    /// Locks the pipeline, opens (or creates) its tables, reads progress back from the logs
    /// and catches up any table a crash left behind.
    pub async fn open(plan: Plan) -> Result<Self> {
        Self::open_with(plan, OpenOptions::default()).await
    }

    /// [`open`](Self::open), optionally rebuilding silver, quarantine and gold from bronze.
    pub async fn open_with(plan: Plan, options: OpenOptions) -> Result<Self> {
        let lock_options = LockOptions {
            standby: options.standby,
        };
        let lock = plan.lake.lock(&plan.config, lock_options).await?;
        let fence = lock.fence();
        if let Some(fence) = &fence {
            // Before anything is read: no older holder's commit can land after this.
            start::claim_tables(&plan, fence).await?;
        }
        start::ensure_owner(&plan).await?;
        // A refresh an interruption left half done is finished before anything else.
        let intent = start::RefreshIntent::new(&plan);
        let full_refresh = options.full_refresh || intent.pending().await?;
        if full_refresh && !options.full_refresh {
            tracing::warn!("a full refresh was interrupted: finishing it");
        }
        let mode = match full_refresh {
            true => schema_change::Mode::FullRefresh,
            false => schema_change::Mode::Start,
        };
        for note in schema_change::reconcile(&plan, mode).await? {
            tracing::info!("schema change: {note}");
        }
        let committer = Committer::new(&plan.config.id).with_fence(fence.clone());
        let gold = match &plan.gold {
            Some(g) => Some(GoldStage::open(&plan, g, committer.clone()).await?),
            None => None,
        };
        let tables = Tables::open(&plan).await?;
        if let Some(fence) = &fence {
            // The tables this start created.
            start::claim_tables(&plan, fence).await?;
        }
        let bronze_batch = app_batch(&tables.bronze, &plan.config.id).await?;
        let state_dir = plan.lake.state(&plan.config.id);
        let every = (plan.config.maintenance.progress_checkpoint_every)
            .unwrap_or(crate::source::seen::CHECKPOINT_EVERY);
        let seen = SeenFiles::load(&tables.bronze, &plan.config.id, &state_dir, every).await?;
        tracing::debug!(commits = seen.commits_read, "seen-files index loaded");
        if let Some(owner) = seen.other_pipelines.iter().next() {
            return Err(start::lake_owned(&plan, owner));
        }
        let read_schema = start::read_schema(&plan.config, &tables)?;
        let mut pipeline = Self {
            silver: SilverStage::new(&plan),
            plan,
            tables,
            seen,
            committer,
            read_schema,
            gold,
            next_batch: bronze_batch + 1,
            _lock: lock,
        };
        if full_refresh {
            intent.record().await?;
            pipeline.truncate_derived().await?;
        }
        pipeline.recover(bronze_batch, full_refresh).await?;
        if full_refresh {
            intent.clear().await?;
        }
        Ok(pipeline)
    }

    pub fn config(&self) -> &Config {
        &self.plan.config
    }

    /// The number the next batch will get (batches start at 1).
    pub fn next_batch(&self) -> u64 {
        self.next_batch
    }

    /// A batch without files that releases every row gold still holds back for the
    /// watermark (`run --drain`: the input has ended, as Flink does at the end of a bounded
    /// source). Recorded in bronze like any batch, so a replay drains at the same point.
    pub async fn drain(&mut self) -> Result<BatchSummary> {
        let (batch, events) = self.empty_batch(Step::Drain, Vec::new()).await?;
        let alerts = events.iter().map(|e| e.alerts).sum::<u64>() as usize;
        self.commit_events(Some(batch), events).await?;
        Ok(BatchSummary {
            batch,
            alerts,
            ..Default::default()
        })
    }

    /// Records `files` as seen without reading them: an empty batch whose bronze commit lists
    /// them (`include_existing_files = false`).
    pub async fn skip_files(&mut self, files: Vec<SourceFile>) -> Result<()> {
        let event = FlowEvent {
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.size).sum(),
            ..FlowEvent::new(Flow::Source, Status::SkippedExisting)
        };
        let (batch, mut events) = self.empty_batch(Step::SkipExisting, files).await?;
        events.push(FlowEvent {
            batch_id: Some(batch),
            ..event
        });
        self.commit_events(Some(batch), events).await
    }

    /// A batch without rows: bronze records `step` and `files`, silver and quarantine commit
    /// nothing, and gold runs (draining its buffer for [`Step::Drain`]). Returns the batch
    /// and the events to log.
    async fn empty_batch(
        &mut self,
        step: Step,
        files: Vec<SourceFile>,
    ) -> Result<(u64, Vec<FlowEvent>)> {
        let batch = self.next_batch;
        let empty = DataFrame::empty_with_schema(&self.tables.bronze.schema()?);
        let commit = self.committer.commit(batch, step).files(files.clone());
        self.tables.bronze.append(&empty, commit.build()?).await?;
        self.seen.record(&files);
        if step == Step::SkipExisting {
            self.seen.forget_read_at(&files);
        }
        let drain = step == Step::Drain;
        if drain {
            self.seen.drains.insert(batch);
        }
        self.seen
            .checkpoint_if_due(self.tables.bronze.version())
            .await;
        self.next_batch = batch + 1;
        let out = self.silver.process(&empty, batch)?;
        let mut events = self.commit_silver(batch, &out, None).await?;
        events.extend(self.run_gold(batch, &out.silver, drain).await?.events);
        Ok((batch, events))
    }

    /// Gold for one batch; nothing (and no events) when gold is not configured.
    pub(crate) async fn run_gold(
        &mut self,
        batch: u64,
        silver_rows: &DataFrame,
        drain: bool,
    ) -> Result<GoldOutcome> {
        self.back().run_gold(batch, silver_rows, drain).await
    }

    /// Appends events; with a batch, exactly once per batch.
    pub async fn commit_events(
        &mut self,
        batch: Option<u64>,
        events: Vec<FlowEvent>,
    ) -> Result<()> {
        self.back().commit_events(batch, events).await
    }

    /// Records a failed batch in the event log (best effort: the error itself is what matters).
    pub(crate) async fn log_failure(&mut self, batch: u64, error: &Error) {
        let event = FlowEvent {
            batch_id: Some(batch),
            error: Some(error.to_string()),
            ..FlowEvent::new(Flow::Silver, Status::Failed)
        };
        if let Err(e) = self.commit_events(None, vec![event]).await {
            tracing::warn!("could not record the failure in the event log: {e}");
        }
    }
}
