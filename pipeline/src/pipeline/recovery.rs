//! Start-up: silver, quarantine, gold and the event log are caught up for the batches bronze
//! holds but they do not (after a crash, or all of them after a full refresh), from bronze's
//! rows of those batches — the only time a layer is re-read, once per range of batches.

use std::collections::BTreeMap;
use std::time::Instant;

use polars::prelude::*;

use super::Pipeline;
use super::batch::bronze_event;
use crate::bronze::{BATCH_ID, SOURCE_FILE, SOURCE_LINE};
use crate::error::{Inconsistency, Result};
use crate::event_log::{Flow, FlowEvent, Status};
use crate::schema_change;
use crate::source::progress::{self, Step};
use crate::tables::app_batch;

/// A temporary column: a row's file's place in its batch.
const PLACE: &str = "__isolake_place";

/// The most batches one bronze scan of a catch-up reads.
const MAX_SPAN: u64 = 4096;

/// The next range's length in batches, after a range of `span` batches held `size` bytes
/// (the budget is the batch byte limit).
fn next_span(span: u64, size: usize, budget: usize) -> u64 {
    match size {
        s if s > budget => (span / 2).max(1),
        s if s <= budget / 2 => span.saturating_mul(2).min(MAX_SPAN),
        _ => span,
    }
}

impl Pipeline {
    /// Re-runs silver, quarantine, gold and the event log for the batches after the last one
    /// every table holds, up to `bronze_batch`.
    pub(super) async fn recover(&mut self, bronze_batch: u64, full_refresh: bool) -> Result<()> {
        let id = self.config().id.clone();
        let silver_at = app_batch(&self.tables.silver, &id).await?;
        let quarantine_at = app_batch(&self.tables.quarantine, &id).await?;
        let events_at = app_batch(&self.tables.event_log, &id).await?;
        let gold_at = match self.gold.as_mut() {
            Some(gold) => Some(gold.restore().await?),
            None => None,
        };
        let from = silver_at
            .min(quarantine_at)
            .min(events_at)
            .min(gold_at.unwrap_or(u64::MAX))
            + 1;
        if silver_at > bronze_batch || quarantine_at > bronze_batch {
            return Err(Inconsistency::AheadOfBronze {
                silver: silver_at,
                quarantine: quarantine_at,
                bronze: bronze_batch,
            }
            .into());
        }
        self.silver.load_dedup(&self.tables.silver, from)?;
        let started = Instant::now();
        let mut totals = FlowEvent::new(Flow::FullRefresh, Status::Ok);
        // Bronze is read once per range of batches, not once per batch. A range starts at one
        // batch and doubles while its rows stay within the batch byte limit (halving past it),
        // so a long rebuild takes few scans and holds about one batch's worth in memory.
        let budget = self.config().batch.max_bytes.max(1) as usize;
        let no_rows = DataFrame::empty_with_schema(&self.tables.bronze.schema()?);
        let (mut first, mut span) = (from, 1u64);
        while first <= bronze_batch {
            let last = bronze_batch.min(first.saturating_add(span - 1));
            let mut rows = self.bronze_rows(first, last)?;
            let size = rows.values().map(DataFrame::estimated_size).sum::<usize>();
            span = next_span(span, size, budget);
            for batch in first..=last {
                let rows = rows.remove(&batch).unwrap_or_else(|| no_rows.clone());
                let events = self.catch_up(batch, rows, gold_at, events_at).await?;
                totals.rows_in += events.rows_in;
                totals.rows_out += events.rows_out;
                totals.quarantined += events.quarantined;
                totals.alerts += events.alerts;
            }
            first = last + 1;
        }
        if full_refresh {
            totals.duration_ms = started.elapsed().as_millis() as u64;
            totals.error = Some(format!(
                "rebuilt batches {from}..={bronze_batch} from bronze"
            ));
            self.commit_events(None, vec![totals]).await?;
        }
        Ok(())
    }

    /// One batch caught up from bronze; returns its totals (rows in and out, quarantined,
    /// alerts) for the full refresh's event.
    async fn catch_up(
        &mut self,
        batch: u64,
        bronze_rows: DataFrame,
        gold_at: Option<u64>,
        events_at: u64,
    ) -> Result<FlowEvent> {
        let started = Instant::now();
        tracing::info!(
            batch,
            rows = bronze_rows.height(),
            "catching up from bronze"
        );
        let out = self.silver.process(&bronze_rows, batch)?;
        let mut events = self.commit_silver(batch, &out, None).await?;
        if gold_at.is_some_and(|g| batch > g) {
            let drain = self.seen.drains.contains(&batch);
            events.extend(self.run_gold(batch, &out.silver, drain).await?.events);
        }
        let totals = FlowEvent {
            rows_in: bronze_rows.height() as u64,
            rows_out: out.stats.rows_out as u64,
            quarantined: out.stats.quarantined as u64,
            alerts: events.iter().map(|e| e.alerts).sum::<u64>(),
            ..Default::default()
        };
        if batch > events_at {
            // The bronze row the crash kept from the event log, from bronze's own commit.
            let commit = progress::of_batch(&self.tables.bronze, &self.config().id, batch).await?;
            if let Some(p) = commit.filter(|p| p.flow == Step::Bronze) {
                let bytes = p.files.iter().map(|f| f.size).sum();
                let rows = bronze_rows.height();
                let event = bronze_event(batch, rows, &out, &p.files, bytes, (0, 0));
                events.insert(0, event);
            }
            for e in &mut events {
                e.status = Status::Recovered;
                e.duration_ms = started.elapsed().as_millis() as u64;
            }
            self.commit_events(Some(batch), events).await?;
        }
        Ok(totals)
    }

    /// Bronze's rows of batches `first..=last` (one scan), by batch, each in batch order.
    fn bronze_rows(&self, first: u64, last: u64) -> Result<BTreeMap<u64, DataFrame>> {
        let batch = col(BATCH_ID);
        let rows = self
            .tables
            .bronze
            .scan()?
            .filter(
                batch
                    .clone()
                    .gt_eq(lit(first as i64))
                    .and(batch.lt_eq(lit(last as i64))),
            )
            .collect()?;
        let mut out = BTreeMap::new();
        for part in rows.partition_by_stable([BATCH_ID], true)? {
            let Some(id) = part.column(BATCH_ID)?.i64()?.get(0) else {
                continue;
            };
            out.insert(id as u64, self.in_batch_order(part)?);
        }
        Ok(out)
    }

    /// A batch's bronze rows in the order the batch read them: its files in the order its
    /// commit lists them (listing order, see `Pipeline::read`), each file's lines in order.
    fn in_batch_order(&self, rows: DataFrame) -> Result<DataFrame> {
        let places: Vec<Option<u64>> = rows
            .column(SOURCE_FILE)?
            .str()?
            .iter()
            .map(|f| f.and_then(|f| self.seen.place(f)).map(|p| p as u64))
            .collect();
        let mut rows = rows;
        rows.with_column(Column::new(PLACE.into(), places))?;
        Ok(rows
            .sort([PLACE, SOURCE_FILE, SOURCE_LINE], Default::default())?
            .drop(PLACE)?)
    }

    /// Empties silver, quarantine and gold in one commit each, resetting their app version
    /// to 0 so that start-up rebuilds them from bronze. The event log keeps its history.
    pub(super) async fn truncate_derived(&mut self) -> Result<()> {
        // Gold first: a crash half-way leaves the downstream tables behind, which start-up
        // catches up like any crash.
        let mut targets = match self.gold.as_mut() {
            Some(gold) => gold.tables_mut(),
            None => Vec::new(),
        };
        targets.push(&mut self.tables.quarantine);
        targets.push(&mut self.tables.silver);
        // Each is emptied into the schema the config wants now: a full refresh is how a
        // change that is not additive is applied (see `schema_change`).
        let schemas = schema_change::derived_schemas(&self.plan);
        for table in targets {
            let wanted = schemas
                .iter()
                .find(|(name, _)| {
                    let url = table.url().as_str().trim_end_matches('/');
                    url.ends_with(&format!("/{name}"))
                })
                .map(|(_, schema)| schema.clone());
            let wanted = match wanted {
                Some(schema) => schema,
                None => table.schema()?,
            };
            // App version 0: start-up rebuilds the table from bronze's first batch.
            let commit = self.committer.commit(0, Step::FullRefresh).build()?;
            table.reshape(&wanted, false, commit).await?;
        }
        tracing::info!("full refresh: silver, quarantine and gold emptied; rebuilding");
        Ok(())
    }
}
