//! A running pipeline: its tables, its progress, and the micro-batch.
//!
//! A batch is parsed once and flows in memory through bronze → silver + quarantine → event
//! log. Each table is committed with its own app transaction (pipeline id, batch number); the
//! bronze commit also records the files the batch read. Start-up reads all of that back from
//! the Delta logs, and a table left behind by a crash is caught up from bronze's rows of the
//! missing batches (the only time a layer is re-read), so a crash at any instant resumes
//! without loss or duplicates.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use isolake_data::lake::{AppTransaction, AppendOutcome, Commit, LakeTable, Staged, location};
use polars::prelude::*;
use rayon::prelude::*;

use crate::bronze::{self, BATCH_ID, SOURCE_FILE, SOURCE_LINE};
use crate::config::{Config, Evolution};
use crate::error::{Error, Result};
use crate::event_log::{self, FlowEvent};
use crate::gold::Gold;
use crate::gold::dimensions::Lookup;
use crate::lock::PipelineLock;
use crate::silver::dedup::DedupIndex;
use crate::silver::expectations::{self, Compiled};
use crate::silver::{self, SilverBatch};
use crate::source::SourceFile;
use crate::source::listing::Candidate;
use crate::source::progress::{BatchProgress, DRAIN_FLOW, SeenFiles};
use crate::source::reader::{self, ReadSchema};
use crate::tables::Tables;

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
}

/// What gold did in the last batch (for the summary and the metrics).
#[derive(Debug, Clone, Default)]
pub(crate) struct GoldStats {
    pub rows: usize,
    pub alerts_by_detector: Vec<(String, u64)>,
    pub model_version: Option<u64>,
}

/// How to open a pipeline.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Empty silver, quarantine and gold, then rebuild them from bronze (`run --full-refresh`).
    pub full_refresh: bool,
}

pub struct Pipeline {
    pub config: Config,
    pub tables: Tables,
    pub seen: SeenFiles,
    pub(crate) lake_dir: PathBuf,
    compiled: Vec<Compiled>,
    dedup: DedupIndex,
    read_schema: ReadSchema,
    next_batch: u64,
    pub(crate) gold: Option<Gold>,
    pub(crate) lookup: Lookup,
    pub(crate) gold_stats: GoldStats,
    _lock: PipelineLock,
}

impl Pipeline {
    /// Locks the pipeline, opens (or creates) its tables, reads progress back from the logs
    /// and catches up any table a crash left behind.
    pub async fn open(config: Config) -> Result<Self> {
        Self::open_with(config, OpenOptions::default()).await
    }

    /// [`open`](Self::open), optionally rebuilding silver, quarantine and gold from bronze.
    pub async fn open_with(config: Config, options: OpenOptions) -> Result<Self> {
        let lake_dir = location::local_dir(&location::parse(&config.lake)?)?;
        let lock = PipelineLock::acquire(&lake_dir, &config.id)?;
        let gold = match config.gold.enabled() {
            true => Some(Gold::new(&config, &lake_dir)?),
            false => None,
        };
        let detector_tables = gold.as_ref().map(Gold::output_schemas).unwrap_or_default();
        let tables = Tables::open(&config, &detector_tables).await?;
        let compiled = expectations::compile_all(&config.expectations, &silver::schema(&config))?;
        let bronze_version = app_batch(&tables.bronze, &config.id).await?;
        let seen = SeenFiles::load(&tables.bronze, &config.id).await?;
        let declared: HashSet<&str> = config
            .schema
            .fields
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        let reserved = bronze::schema(&[]);
        let evolved = tables
            .bronze
            .schema()?
            .iter_names()
            .filter(|n| !declared.contains(n.as_str()) && !reserved.contains(n.as_str()))
            .map(|n| n.to_string())
            .collect();
        let read_schema = ReadSchema {
            fields: config.schema.fields.clone(),
            evolved,
            evolution: config.schema.evolution,
        };
        let mut pipeline = Self {
            dedup: DedupIndex::new(config.silver.dedup_window),
            lookup: Lookup::new(&config.gold.dimensions),
            config,
            tables,
            seen,
            lake_dir,
            compiled,
            read_schema,
            next_batch: bronze_version + 1,
            gold,
            gold_stats: GoldStats::default(),
            _lock: lock,
        };
        if options.full_refresh {
            pipeline.truncate_derived().await?;
        }
        pipeline
            .recover(bronze_version, options.full_refresh)
            .await?;
        Ok(pipeline)
    }

    /// The number the next batch will get (batches start at 1).
    pub fn next_batch(&self) -> u64 {
        self.next_batch
    }

    /// Re-runs silver, quarantine, gold and the event log for batches bronze holds but they
    /// do not (after a crash, or all of them after a full refresh).
    async fn recover(&mut self, bronze_batch: u64, full_refresh: bool) -> Result<()> {
        let id = self.config.id.clone();
        let silver_at = app_batch(&self.tables.silver, &id).await?;
        let quarantine_at = app_batch(&self.tables.quarantine, &id).await?;
        let events_at = app_batch(&self.tables.event_log, &id).await?;
        let gold_at = self.restore_gold().await?;
        let from = silver_at
            .min(quarantine_at)
            .min(events_at)
            .min(gold_at.unwrap_or(u64::MAX))
            + 1;
        if silver_at > bronze_batch || quarantine_at > bronze_batch {
            return Err(Error::Inconsistent(format!(
                "silver is at batch {silver_at} and quarantine at {quarantine_at}, but bronze \
                 only at {bronze_batch}; were the tables replaced? Run with --full-refresh"
            )));
        }
        self.dedup = self.load_dedup(from).await?;
        let started_all = Instant::now();
        let mut totals = FlowEvent {
            flow: "full_refresh".into(),
            status: "ok".into(),
            ..Default::default()
        };
        for batch in from..=bronze_batch {
            let started = Instant::now();
            let bronze_rows = self
                .tables
                .bronze
                .scan()?
                .filter(col(BATCH_ID).eq(lit(batch as i64)))
                .sort([SOURCE_FILE, SOURCE_LINE], Default::default())
                .collect()?;
            tracing::info!(
                batch,
                rows = bronze_rows.height(),
                "catching up from bronze"
            );
            let out = silver::process(
                &bronze_rows,
                &self.config,
                &self.compiled,
                &mut self.dedup,
                batch,
            )?;
            let mut events = self.commit_silver(batch, &out, None).await?;
            if gold_at.is_some_and(|g| batch > g) {
                let drain = self.seen.drains.contains(&batch);
                events.extend(self.commit_gold(batch, &out.silver, drain).await?);
            }
            totals.rows_in += bronze_rows.height() as u64;
            totals.rows_out += out.stats.rows_out as u64;
            totals.quarantined += out.stats.quarantined as u64;
            totals.alerts += events.iter().map(|e| e.alerts).sum::<u64>();
            if batch > events_at {
                for e in &mut events {
                    e.status = "recovered".into();
                    e.duration_ms = started.elapsed().as_millis() as u64;
                }
                self.commit_events(Some(batch), events).await?;
            }
        }
        if full_refresh {
            totals.duration_ms = started_all.elapsed().as_millis() as u64;
            totals.error = Some(format!(
                "rebuilt batches {from}..={bronze_batch} from bronze"
            ));
            self.commit_events(None, vec![totals]).await?;
        }
        Ok(())
    }

    async fn load_dedup(&self, before_batch: u64) -> Result<DedupIndex> {
        let window = self.config.silver.dedup_window;
        match &self.config.schema.key {
            Some(key) => DedupIndex::load(
                self.tables.silver.scan()?,
                key,
                &self.config.schema.event_time,
                window,
                before_batch,
            ),
            None => Ok(DedupIndex::new(window)),
        }
    }

    /// Runs one micro-batch over `files` and commits it. `backlog` is what is left after it.
    pub async fn process(
        &mut self,
        files: Vec<Candidate>,
        backlog: (u64, u64),
    ) -> Result<BatchSummary> {
        let started = Instant::now();
        let batch = self.next_batch;
        let mut files = files;
        files.sort_by(|a, b| a.file.path.cmp(&b.file.path));
        let schema = self.read_schema.clone();
        let read: Vec<(Candidate, Result<reader::ReadFile>)> = tokio::task::block_in_place(|| {
            files
                .into_par_iter()
                .map(|c| {
                    let r = reader::read(&c.absolute, &schema);
                    (c, r)
                })
                .collect()
        });
        let mut parsed = Vec::new();
        let mut source_events = Vec::new();
        for (candidate, result) in read {
            match result {
                Ok(file) => parsed.push((candidate.file, file)),
                // Vanished between listing and reading: not read, so not marked seen.
                Err(e) => source_events.push(FlowEvent {
                    flow: "source".into(),
                    status: "unreadable".into(),
                    error: Some(e.to_string()),
                    ..Default::default()
                }),
            }
        }
        if self.config.schema.evolution == Evolution::FailOnNewColumns
            && let Some((file, read)) = parsed.iter().find(|(_, r)| !r.new_columns.is_empty())
        {
            let err = Error::NewColumns {
                columns: read.new_columns.join(", "),
                file: file.path.clone(),
            };
            self.log_failure(batch, &err).await;
            return Err(err);
        }
        let sources: Vec<SourceFile> = parsed.iter().map(|(f, _)| f.clone()).collect();
        let bytes: u64 = parsed.iter().map(|(_, r)| r.bytes).sum();
        let new_columns: Vec<String> = parsed
            .iter()
            .flat_map(|(_, r)| r.extra.keys().cloned())
            .filter(|c| !self.read_schema.evolved.contains(c))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let now = chrono::Utc::now().timestamp_micros();
        let bronze_rows = bronze::frame(parsed, &self.read_schema, batch, now)?;
        // Bronze's files are written while silver is computed and written (two cores busy);
        // the commits then land in order: bronze (with the source progress) first.
        let evolve = !new_columns.is_empty();
        let handle = tokio::runtime::Handle::current();
        let (bronze_staged, silver_staged) = tokio::task::block_in_place(|| {
            rayon::join(
                || handle.block_on(self.tables.bronze.stage(&bronze_rows, evolve)),
                || -> Result<(SilverBatch, Staged, Staged)> {
                    let out = silver::process(
                        &bronze_rows,
                        &self.config,
                        &self.compiled,
                        &mut self.dedup,
                        batch,
                    )?;
                    let silver = handle.block_on(self.tables.silver.stage(&out.silver, false))?;
                    let quarantine =
                        handle.block_on(self.tables.quarantine.stage(&out.quarantine, true))?;
                    Ok((out, silver, quarantine))
                },
            )
        });
        let (out, silver_files, quarantine_files) = match silver_staged {
            Ok(staged) => staged,
            Err(e) => {
                self.log_failure(batch, &e).await;
                return Err(e);
            }
        };
        let bronze_staged = bronze_staged?;

        let progress = BatchProgress {
            pipeline: self.config.id.clone(),
            batch,
            flow: "bronze".into(),
            files: sources.clone(),
            state: None,
        };
        let commit = Commit {
            app_transaction: Some(self.txn(batch)),
            metadata: progress.to_metadata()?,
            evolve_schema: evolve,
        };
        if let AppendOutcome::AlreadyCommitted { app_version } = self
            .tables
            .bronze
            .commit_staged(bronze_staged, commit)
            .await?
        {
            return Err(Error::Inconsistent(format!(
                "bronze already holds batch {app_version} of pipeline {:?}: another process \
                 wrote to it (the pipeline lock should prevent this)",
                self.config.id
            )));
        }
        self.seen.record(&sources);
        self.read_schema.evolved.extend(new_columns);
        self.next_batch = batch + 1;

        let mut events = vec![FlowEvent {
            batch_id: Some(batch),
            flow: "bronze".into(),
            files: sources.len() as u64,
            bytes,
            rows_in: bronze_rows.height() as u64,
            rows_out: bronze_rows.height() as u64,
            rescued: out.stats.rescued as u64,
            corrupt: out.stats.corrupt as u64,
            backlog_files: backlog.0,
            backlog_bytes: backlog.1,
            status: "ok".into(),
            ..Default::default()
        }];
        let staged = Some((silver_files, quarantine_files));
        events.extend(self.commit_silver(batch, &out, staged).await?);
        let duration_ms = started.elapsed().as_millis() as u64;
        for e in &mut events {
            e.duration_ms = duration_ms;
        }
        self.gold_stats = GoldStats::default();
        let gold_events = self.commit_gold(batch, &out.silver, false).await?;
        let alerts = gold_events.iter().map(|e| e.alerts).sum::<u64>() as usize;
        events.extend(gold_events);
        events.extend(source_events);
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
            gold_rows: self.gold_stats.rows,
            alerts_by_detector: std::mem::take(&mut self.gold_stats.alerts_by_detector),
            model_version: self.gold_stats.model_version,
        })
    }

    /// A batch without files that releases every row gold still holds back for the
    /// watermark (`run --drain`: the input has ended, as Flink does at the end of a bounded
    /// source). Recorded in bronze like any batch, so a replay drains at the same point.
    pub async fn drain(&mut self) -> Result<BatchSummary> {
        let (batch, events) = self.empty_batch(DRAIN_FLOW, Vec::new()).await?;
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
            flow: "source".into(),
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.size).sum(),
            status: "skipped_existing".into(),
            ..Default::default()
        };
        let (batch, mut events) = self.empty_batch("skip_existing", files).await?;
        events.push(FlowEvent {
            batch_id: Some(batch),
            ..event
        });
        self.commit_events(Some(batch), events).await
    }

    /// A batch without rows: bronze records `flow` and `files`, silver and quarantine commit
    /// nothing, and gold runs (draining its buffer for [`DRAIN_FLOW`]). Returns the batch and
    /// the events to log.
    async fn empty_batch(
        &mut self,
        flow: &str,
        files: Vec<SourceFile>,
    ) -> Result<(u64, Vec<FlowEvent>)> {
        let batch = self.next_batch;
        let empty = DataFrame::empty_with_schema(&self.tables.bronze.schema()?);
        let progress = BatchProgress {
            pipeline: self.config.id.clone(),
            batch,
            flow: flow.into(),
            files: files.clone(),
            state: None,
        };
        let commit = Commit {
            app_transaction: Some(self.txn(batch)),
            metadata: progress.to_metadata()?,
            evolve_schema: false,
        };
        self.tables.bronze.append(&empty, commit).await?;
        self.seen.record(&files);
        let drain = flow == DRAIN_FLOW;
        if drain {
            self.seen.drains.insert(batch);
        }
        self.next_batch = batch + 1;
        let out = silver::process(&empty, &self.config, &self.compiled, &mut self.dedup, batch)?;
        let mut events = self.commit_silver(batch, &out, None).await?;
        events.extend(self.commit_gold(batch, &out.silver, drain).await?);
        Ok((batch, events))
    }

    /// Commits silver and quarantine for `batch` (each skipped if already there) and returns
    /// their events. `staged`: their files, when already written (else they are written here,
    /// only for a table that does not hold the batch yet).
    async fn commit_silver(
        &mut self,
        batch: u64,
        out: &SilverBatch,
        staged: Option<(Staged, Staged)>,
    ) -> Result<Vec<FlowEvent>> {
        let progress = |flow: &str| BatchProgress {
            pipeline: self.config.id.clone(),
            batch,
            flow: flow.into(),
            files: Vec::new(),
            state: None,
        };
        let silver_commit = Commit {
            app_transaction: Some(self.txn(batch)),
            metadata: progress("silver").to_metadata()?,
            evolve_schema: false,
        };
        let (silver_files, quarantine_files) = staged.unzip();
        self.tables
            .silver
            .append_or_commit(silver_files, &out.silver, silver_commit)
            .await?;
        let quarantine_commit = Commit {
            app_transaction: Some(self.txn(batch)),
            metadata: progress("quarantine").to_metadata()?,
            evolve_schema: true,
        };
        self.tables
            .quarantine
            .append_or_commit(quarantine_files, &out.quarantine, quarantine_commit)
            .await?;
        let s = &out.stats;
        Ok(vec![
            FlowEvent {
                batch_id: Some(batch),
                flow: "silver".into(),
                rows_in: s.rows_in as u64,
                rows_out: s.rows_out as u64,
                expectations: serde_json::to_string(&s.expectations).ok(),
                dropped: s.dropped as u64,
                quarantined: s.quarantined as u64,
                rescued: s.rescued as u64,
                corrupt: s.corrupt as u64,
                status: "ok".into(),
                ..Default::default()
            },
            FlowEvent {
                batch_id: Some(batch),
                flow: "quarantine".into(),
                rows_in: s.quarantined as u64,
                rows_out: s.quarantined as u64,
                status: "ok".into(),
                ..Default::default()
            },
        ])
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
        let frame = event_log::frame(&self.config.id, &events)?;
        let commit = Commit {
            app_transaction: batch.map(|b| self.txn(b)),
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
            flow: "silver".into(),
            status: "failed".into(),
            error: Some(error.to_string()),
            ..Default::default()
        };
        if let Err(e) = self.commit_events(None, vec![event]).await {
            tracing::warn!("could not record the failure in the event log: {e}");
        }
    }

    /// The app transaction of `batch`.
    pub(crate) fn txn(&self, batch: u64) -> AppTransaction {
        AppTransaction {
            app_id: self.config.id.clone(),
            version: batch as i64,
        }
    }
}

/// The last batch pipeline `id` committed to `table` (0 for none).
pub(crate) async fn app_batch(table: &LakeTable, id: &str) -> Result<u64> {
    Ok(table.app_version(id).await?.map_or(0, |v| v.max(0) as u64))
}
