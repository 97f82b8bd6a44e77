//! A running pipeline: its tables, its progress, and the micro-batch.
//!
//! A batch is parsed once and flows in memory through bronze → silver + quarantine → gold →
//! event log. Each table is committed with its own app transaction (pipeline id, batch
//! number); the bronze commit also records the files the batch read. Start-up reads all of
//! that back from the Delta logs (see `recovery`), so a crash at any instant resumes without
//! loss or duplicates.

mod recovery;
mod start;

use std::collections::BTreeSet;
use std::time::Instant;

use isolake_data::lake::{AppendOutcome, Staged};
use polars::prelude::*;
use rayon::prelude::*;

use crate::bronze;
use crate::committer::Committer;
use crate::config::{Config, Evolution};
use crate::error::{Error, Inconsistency, Result};
use crate::event_log::{self, Flow, FlowEvent, Status};
use crate::gold::stage::{GoldOutcome, GoldStage};
use crate::lock::PipelineLock;
use crate::plan::Plan;
use crate::schema_change;
use crate::silver::refused::Refused;
use crate::silver::{SilverBatch, SilverStage};
use crate::source::SourceFile;
use crate::source::listing::Candidate;
use crate::source::progress::Step;
use crate::source::reader::{self, ReadError, ReadFile, ReadSchema};
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
}

/// The files of a batch as read: parsed ones, refused ones (over `max_file_bytes`: recorded
/// as seen with no rows), unreadable ones (not recorded), and events for the last two.
#[derive(Default)]
struct Read {
    parsed: Vec<(SourceFile, ReadFile)>,
    refused: Vec<SourceFile>,
    unreadable: Vec<SourceFile>,
    events: Vec<FlowEvent>,
}

impl Read {
    /// Nothing to commit: no file was read or refused.
    fn is_empty(&self) -> bool {
        self.parsed.is_empty() && self.refused.is_empty()
    }
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
        let lock = PipelineLock::acquire(&plan.lake_dir, &plan.config.id)?;
        start::ensure_owner(&plan).await?;
        // A refresh an interruption left half done is finished before anything else.
        let intent = start::RefreshIntent::new(&plan);
        let full_refresh = options.full_refresh || intent.pending();
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
        let committer = Committer::new(&plan.config.id);
        let gold = match &plan.gold {
            Some(g) => Some(GoldStage::open(&plan, g, committer.clone()).await?),
            None => None,
        };
        let tables = Tables::open(&plan).await?;
        let bronze_batch = app_batch(&tables.bronze, &plan.config.id).await?;
        let state_dir = crate::gold::state::dir(&plan.lake_dir, &plan.config.id);
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
            intent.record()?;
            pipeline.truncate_derived().await?;
        }
        pipeline.recover(bronze_batch, full_refresh).await?;
        if full_refresh {
            intent.clear()?;
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

    /// Runs one micro-batch over `files` and commits it. `backlog` is what is left after it.
    pub async fn process(
        &mut self,
        files: Vec<Candidate>,
        backlog: (u64, u64),
    ) -> Result<BatchSummary> {
        let started = Instant::now();
        let batch = self.next_batch;
        let mut read = self.read(files);
        if read.is_empty() {
            // Only unreadable files: no commit, only the events saying so.
            self.commit_events(None, std::mem::take(&mut read.events))
                .await?;
            return Ok(BatchSummary {
                unreadable: read.unreadable,
                ..Default::default()
            });
        }
        if let Err(e) = self.refuse_new_columns(&read) {
            self.log_failure(batch, &e).await;
            return Err(e);
        }
        self.cap_new_columns(&mut read);
        let sources: Vec<SourceFile> = read
            .parsed
            .iter()
            .map(|(f, _)| f.clone())
            .chain(read.refused.iter().cloned())
            .collect();
        let bytes: u64 = read.parsed.iter().map(|(_, r)| r.bytes).sum();
        let new_columns = self.new_columns(&read);
        let now = chrono::Utc::now().timestamp_micros();
        let bronze_rows = bronze::frame(read.parsed, &self.read_schema, batch, now)?;
        let (bronze_files, silver) = self.stage(batch, &bronze_rows);
        let (out, silver_files, quarantine_files) = match silver {
            Ok(staged) => staged,
            Err(e) => {
                self.log_failure(batch, &e).await;
                return Err(e);
            }
        };
        let bronze_files = bronze_files?;
        self.commit_bronze(batch, bronze_files, &sources).await?;
        self.read_schema.evolved.extend(new_columns);
        let mut events = vec![bronze_event(
            batch,
            &bronze_rows,
            &out,
            &sources,
            bytes,
            backlog,
        )];
        let staged = Some((silver_files, quarantine_files));
        events.extend(self.commit_silver(batch, &out, staged).await?);
        let duration_ms = started.elapsed().as_millis() as u64;
        for e in &mut events {
            e.duration_ms = duration_ms;
        }
        let gold = self.run_gold(batch, &out.silver, false).await?;
        let alerts = gold.events.iter().map(|e| e.alerts).sum::<u64>() as usize;
        events.extend(gold.events);
        events.extend(read.events);
        let read_unreadable = read.unreadable;
        self.commit_events(Some(batch), events).await?;
        Ok(BatchSummary {
            batch,
            files: sources.len(),
            bytes,
            bronze_rows: bronze_rows.height(),
            silver_rows: out.stats.rows_out,
            quarantined: out.stats.quarantined,
            dropped: out.stats.dropped,
            alerts,
            gold_rows: gold.stats.rows,
            alerts_by_detector: gold.stats.alerts_by_detector,
            model_version: gold.stats.model_version,
            unreadable: read_unreadable,
        })
    }

    /// Reads and parses the batch's files in parallel, keeping them in listing order (landing
    /// time, then name): the order one batch per file would see them in, so that which rows
    /// are late for the watermark does not depend on how files are grouped into batches.
    /// A file that vanished between listing and reading is not read, so not marked seen.
    fn read(&self, files: Vec<Candidate>) -> Read {
        let schema = &self.read_schema;
        let results: Vec<(Candidate, std::result::Result<ReadFile, ReadError>)> =
            tokio::task::block_in_place(|| {
                files
                    .into_par_iter()
                    .map(|c| {
                        let r = reader::read(&c.absolute, schema);
                        (c, r)
                    })
                    .collect()
            });
        let mut read = Read::default();
        for (candidate, result) in results {
            let file = candidate.file;
            let status = match &result {
                Ok(_) => Status::Ok,
                Err(ReadError::TooLarge { .. }) => Status::Refused,
                Err(ReadError::Unreadable(_)) => Status::FileUnreadable,
            };
            if let Err(e) = &result {
                tracing::warn!(path = file.path, "{e}");
                read.events.push(FlowEvent {
                    files: 1,
                    bytes: file.size,
                    error: Some(format!("{}: {e}", file.path)),
                    ..FlowEvent::new(Flow::Source, status)
                });
            }
            match result {
                Ok(parsed) => read.parsed.push((file, parsed)),
                Err(ReadError::TooLarge { .. }) => read.refused.push(file),
                Err(ReadError::Unreadable(_)) => read.unreadable.push(file),
            }
        }
        read
    }

    /// `schema.max_new_columns` over the whole batch: each file kept within it alone, so the
    /// batch takes new columns in file order and rescues the rest.
    fn cap_new_columns(&self, read: &mut Read) {
        let budget = self
            .read_schema
            .limits
            .max_new_columns
            .saturating_sub(self.read_schema.evolved.len());
        let mut taken: Vec<String> = Vec::new();
        // Lowercased: two files may each add a name the other has in another case.
        let mut lower = self.read_schema.taken_names();
        for (_, file) in &mut read.parsed {
            let mut rest = Vec::new();
            for column in &file.appeared {
                if self.read_schema.evolved.contains(column) || taken.contains(column) {
                    continue;
                }
                if taken.len() < budget && lower.insert(column.to_lowercase()) {
                    taken.push(column.clone());
                } else {
                    rest.push(column.clone());
                }
            }
            file.rescue_columns(&rest);
        }
    }

    /// `schema.evolution = "fail_on_new_columns"`: a file with an undeclared field refuses
    /// the batch.
    fn refuse_new_columns(&self, read: &Read) -> Result<()> {
        if self.config().schema.evolution != Evolution::FailOnNewColumns {
            return Ok(());
        }
        match read.parsed.iter().find(|(_, r)| !r.new_columns.is_empty()) {
            Some((file, r)) => Err(Refused::NewColumns {
                columns: r.new_columns.join(", "),
                file: file.path.clone(),
            }
            .into()),
            None => Ok(()),
        }
    }

    /// Columns this batch adds to bronze (schema evolution).
    fn new_columns(&self, read: &Read) -> Vec<String> {
        read.parsed
            .iter()
            .flat_map(|(_, r)| r.extra.keys().cloned())
            .filter(|c| !self.read_schema.evolved.contains(c))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Writes bronze's files while silver is computed and its files written (two cores busy);
    /// the commits then land in order, bronze (with the source progress) first.
    #[allow(clippy::type_complexity)]
    fn stage(
        &mut self,
        batch: u64,
        bronze_rows: &DataFrame,
    ) -> (Result<Staged>, Result<(SilverBatch, Staged, Staged)>) {
        let handle = tokio::runtime::Handle::current();
        let tables = &self.tables;
        let silver = &mut self.silver;
        tokio::task::block_in_place(|| {
            rayon::join(
                || {
                    // Evolved columns, and fields the config now declares (`schema_change`).
                    let staged = handle.block_on(tables.bronze.stage(bronze_rows, true));
                    staged.map_err(Error::from)
                },
                || -> Result<_> {
                    let out = silver.process(bronze_rows, batch)?;
                    // Growing: columns the config now declares (see `schema_change`).
                    let rows = handle.block_on(tables.silver.stage(&out.silver, true))?;
                    let quarantined =
                        handle.block_on(tables.quarantine.stage(&out.quarantine, true))?;
                    Ok((out, rows, quarantined))
                },
            )
        })
    }

    /// Commits bronze's rows with the files they came from (the source progress).
    async fn commit_bronze(
        &mut self,
        batch: u64,
        staged: Staged,
        sources: &[SourceFile],
    ) -> Result<()> {
        let commit = self
            .committer
            .commit(batch, Step::Bronze)
            .files(sources.to_vec());
        let outcome = self
            .tables
            .bronze
            .commit_staged(staged, commit.evolve(true).build()?)
            .await?;
        if let AppendOutcome::AlreadyCommitted { app_version } = outcome {
            return Err(Inconsistency::BatchTaken {
                pipeline: self.config().id.clone(),
                batch: app_version as u64,
            }
            .into());
        }
        self.seen.record(sources);
        self.seen.checkpoint_if_due(self.tables.bronze.version());
        self.next_batch = batch + 1;
        Ok(())
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
        let drain = step == Step::Drain;
        if drain {
            self.seen.drains.insert(batch);
        }
        self.seen.checkpoint_if_due(self.tables.bronze.version());
        self.next_batch = batch + 1;
        let out = self.silver.process(&empty, batch)?;
        let mut events = self.commit_silver(batch, &out, None).await?;
        events.extend(self.run_gold(batch, &out.silver, drain).await?.events);
        Ok((batch, events))
    }

    /// Commits silver and quarantine for `batch` (each skipped if already there) and returns
    /// their events. `staged`: their files, when already written (else they are written here,
    /// only for a table that does not hold the batch yet).
    pub(crate) async fn commit_silver(
        &mut self,
        batch: u64,
        out: &SilverBatch,
        staged: Option<(Staged, Staged)>,
    ) -> Result<Vec<FlowEvent>> {
        let (silver_files, quarantine_files) = staged.unzip();
        let commit = self.committer.commit(batch, Step::Silver).build()?;
        self.tables
            .silver
            .append_or_commit(silver_files, &out.silver, commit)
            .await?;
        let commit = self.committer.commit(batch, Step::Quarantine).evolve(true);
        self.tables
            .quarantine
            .append_or_commit(quarantine_files, &out.quarantine, commit.build()?)
            .await?;
        Ok(silver_events(batch, out))
    }

    /// Gold for one batch; nothing (and no events) when gold is not configured.
    pub(crate) async fn run_gold(
        &mut self,
        batch: u64,
        silver_rows: &DataFrame,
        drain: bool,
    ) -> Result<GoldOutcome> {
        match self.gold.as_mut() {
            Some(gold) => gold.run(batch, silver_rows, drain).await,
            None => Ok(GoldOutcome::default()),
        }
    }

    /// Appends events; with a batch, exactly once per batch.
    pub async fn commit_events(
        &mut self,
        batch: Option<u64>,
        events: Vec<FlowEvent>,
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let frame = event_log::frame(&self.config().id, &events)?;
        let commit = isolake_data::lake::Commit {
            app_transaction: batch.map(|b| self.committer.txn(b)),
            // Older lakes' event logs grow the gold columns.
            evolve_schema: true,
            ..Default::default()
        };
        self.tables.event_log.append(&frame, commit).await?;
        Ok(())
    }

    /// Records a failed batch in the event log (best effort: the error itself is what matters).
    async fn log_failure(&mut self, batch: u64, error: &Error) {
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

fn bronze_event(
    batch: u64,
    rows: &DataFrame,
    out: &SilverBatch,
    sources: &[SourceFile],
    bytes: u64,
    backlog: (u64, u64),
) -> FlowEvent {
    FlowEvent {
        batch_id: Some(batch),
        files: sources.len() as u64,
        bytes,
        rows_in: rows.height() as u64,
        rows_out: rows.height() as u64,
        rescued: out.stats.rescued as u64,
        corrupt: out.stats.corrupt as u64,
        backlog_files: backlog.0,
        backlog_bytes: backlog.1,
        ..FlowEvent::new(Flow::Bronze, Status::Ok)
    }
}

fn silver_events(batch: u64, out: &SilverBatch) -> Vec<FlowEvent> {
    let s = &out.stats;
    vec![
        FlowEvent {
            batch_id: Some(batch),
            rows_in: s.rows_in as u64,
            rows_out: s.rows_out as u64,
            expectations: serde_json::to_string(&s.expectations).ok(),
            dropped: s.dropped as u64,
            quarantined: s.quarantined as u64,
            rescued: s.rescued as u64,
            corrupt: s.corrupt as u64,
            ..FlowEvent::new(Flow::Silver, Status::Ok)
        },
        FlowEvent {
            batch_id: Some(batch),
            rows_in: s.quarantined as u64,
            rows_out: s.quarantined as u64,
            ..FlowEvent::new(Flow::Quarantine, Status::Ok)
        },
    ]
}
