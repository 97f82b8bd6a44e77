//! One micro-batch in three steps, so that consecutive batches overlap without changing what
//! is committed or in which order:
//!
//! ```text
//! prepare(N)          read + parse the files, bronze rows, silver + quarantine, and their
//!                     data files written (staged: invisible until committed)
//! commit_prepared(N)  bronze (with the source progress), silver, quarantine
//! finish(N)           gold (scores, detectors, alerts) and the event log
//! ```
//!
//! [`Pipeline::finish_while_preparing`] runs `finish(N)` and `prepare(N+1)` at once: the
//! two use disjoint parts of the pipeline (gold and the event log; the silver stage and the
//! staging of bronze, silver and quarantine files), and `prepare(N+1)` commits nothing, so
//! every table still receives its commits in batch order and batch N's gold commits all land
//! before batch N+1's bronze commit. At most one batch is prepared ahead, so memory holds
//! two batches at most. A crash leaves at most staged files no commit names (vacuum removes
//! them); start-up recovers as before.

use std::time::Instant;

use isolake_data::lake::{AppendOutcome, LakeTable, Staged};

use super::front::{Front, Prepared, PreparedBatch};
use super::{BatchSummary, Pipeline};
use crate::committer::Committer;
use crate::error::{Inconsistency, Result};
use crate::event_log::{self, Flow, FlowEvent, Status};
use crate::gold::stage::{GoldOutcome, GoldStage};
use crate::silver::SilverBatch;
use crate::source::SourceFile;
use crate::source::listing::Candidate;
use crate::source::progress::Step;

/// A batch whose bronze, silver and quarantine are committed; gold and the event log follow.
pub struct Pending {
    batch: u64,
    files: usize,
    bytes: u64,
    bronze_rows: usize,
    out: SilverBatch,
    /// Bronze's, silver's and quarantine's events, then the read events.
    events: Vec<FlowEvent>,
    read_events: Vec<FlowEvent>,
    unreadable: Vec<SourceFile>,
}

impl Pipeline {
    /// Reads, parses and stages the batch that `files` make (see the module doc); `backlog`
    /// is what is left after it. Commits nothing but a failure's event.
    pub async fn prepare(
        &mut self,
        files: Vec<Candidate>,
        backlog: (u64, u64),
    ) -> Result<Prepared> {
        let batch = self.next_batch;
        let prepared = self.front().prepare(files, backlog, batch);
        self.note_failure(batch, prepared).await
    }

    fn front(&mut self) -> Front<'_> {
        self.parts().0
    }

    pub(super) fn back(&mut self) -> Back<'_> {
        self.parts().1
    }

    /// The front and the back of a batch, borrowing disjoint parts of the pipeline (so that
    /// they can run at once).
    fn parts(&mut self) -> (Front<'_>, Back<'_>) {
        let Self {
            plan,
            tables,
            committer,
            read_schema,
            silver,
            gold,
            ..
        } = self;
        let front = Front {
            config: &plan.config,
            bronze: &tables.bronze,
            silver_table: &tables.silver,
            quarantine: &tables.quarantine,
            read_schema,
            silver,
        };
        let back = Back {
            gold: gold.as_mut(),
            event_log: &mut tables.event_log,
            committer,
            pipeline_id: &plan.config.id,
        };
        (front, back)
    }

    /// Commits a prepared batch's bronze (with the files it read), silver and quarantine.
    pub async fn commit_prepared(&mut self, prepared: PreparedBatch) -> Result<Pending> {
        let committing = Instant::now();
        let PreparedBatch {
            batch,
            prepared_in,
            sources,
            new_columns,
            bronze_rows,
            bytes,
            backlog,
            out,
            staged: [bronze_files, silver_files, quarantine_files],
            read_events,
            unreadable,
        } = prepared;
        self.commit_bronze(batch, bronze_files, &sources).await?;
        self.read_schema.evolved.extend(new_columns);
        let mut events = vec![bronze_event(
            batch,
            bronze_rows,
            &out,
            &sources,
            bytes,
            backlog,
        )];
        let staged = Some((silver_files, quarantine_files));
        events.extend(self.commit_silver(batch, &out, staged).await?);
        // Read, bronze, silver and quarantine are one step: they share its duration (the
        // preparation and the commits, not the wait for the batch before).
        let duration_ms = (prepared_in + committing.elapsed()).as_millis() as u64;
        for e in &mut events {
            e.duration_ms = duration_ms;
        }
        Ok(Pending {
            batch,
            files: sources.len(),
            bytes,
            bronze_rows,
            out,
            events,
            read_events,
            unreadable,
        })
    }

    /// Gold for a committed batch, then its events.
    pub async fn finish(&mut self, pending: Pending) -> Result<BatchSummary> {
        self.back().finish(pending).await
    }

    /// [`finish`](Self::finish) of `pending` while the next batch, of `files`, is prepared
    /// on another thread: both cores stay busy across the batch boundary (see the module
    /// doc for why the commits stay in order).
    pub async fn finish_while_preparing(
        &mut self,
        pending: Pending,
        files: Vec<Candidate>,
        backlog: (u64, u64),
    ) -> (Result<BatchSummary>, Result<Prepared>) {
        let next = self.next_batch;
        let handle = tokio::runtime::Handle::current();
        let (finished, prepared) = tokio::task::block_in_place(|| {
            let (mut front, mut back) = self.parts();
            std::thread::scope(|scope| {
                let preparing = scope.spawn(|| {
                    // The front blocks on the runtime to write its files.
                    let _runtime = handle.enter();
                    front.prepare(files, backlog, next)
                });
                let finished = handle.block_on(back.finish(pending));
                let prepared = preparing
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (finished, prepared)
            })
        });
        let prepared = self.note_failure(next, prepared).await;
        (finished, prepared)
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

    /// Records a failed preparation in the event log and passes the result on.
    async fn note_failure(&mut self, batch: u64, prepared: Result<Prepared>) -> Result<Prepared> {
        if let Err(e) = &prepared {
            self.log_failure(batch, e).await;
        }
        prepared
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
        self.seen
            .checkpoint_if_due(self.tables.bronze.version())
            .await;
        self.next_batch = batch + 1;
        Ok(())
    }
}

/// What the end of a batch uses: gold and the event log.
pub(super) struct Back<'a> {
    pub gold: Option<&'a mut GoldStage>,
    pub event_log: &'a mut LakeTable,
    pub committer: &'a Committer,
    pub pipeline_id: &'a str,
}

impl Back<'_> {
    /// Gold for a committed batch, then its events.
    async fn finish(&mut self, pending: Pending) -> Result<BatchSummary> {
        let Pending {
            batch,
            files,
            bytes,
            bronze_rows,
            out,
            mut events,
            read_events,
            unreadable,
        } = pending;
        let gold = self.run_gold(batch, &out.silver, false).await?;
        let alerts = gold.events.iter().map(|e| e.alerts).sum::<u64>() as usize;
        events.extend(gold.events);
        events.extend(read_events);
        self.commit_events(Some(batch), events).await?;
        Ok(BatchSummary {
            batch,
            files,
            bytes,
            bronze_rows,
            silver_rows: out.stats.rows_out,
            quarantined: out.stats.quarantined,
            dropped: out.stats.dropped,
            alerts,
            gold_rows: gold.stats.rows,
            alerts_by_detector: gold.stats.alerts_by_detector,
            model_version: gold.stats.model_version,
            unreadable,
        })
    }

    /// Gold for one batch; nothing (and no events) when gold is not configured.
    pub async fn run_gold(
        &mut self,
        batch: u64,
        silver_rows: &polars::prelude::DataFrame,
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
        let frame = event_log::frame(self.pipeline_id, &events)?;
        let commit = isolake_data::lake::Commit {
            app_transaction: batch.map(|b| self.committer.txn(b)),
            // Older lakes' event logs grow the gold columns.
            evolve_schema: true,
            fence: self.committer.fence().cloned(),
            ..Default::default()
        };
        self.event_log.append(&frame, commit).await?;
        Ok(())
    }
}

pub(super) fn bronze_event(
    batch: u64,
    rows: usize,
    out: &SilverBatch,
    sources: &[SourceFile],
    bytes: u64,
    backlog: (u64, u64),
) -> FlowEvent {
    FlowEvent {
        batch_id: Some(batch),
        files: sources.len() as u64,
        bytes,
        rows_in: rows as u64,
        rows_out: rows as u64,
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
