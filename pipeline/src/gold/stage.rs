//! Gold as a stage of the batch: score and detect over the batch's silver rows (in memory),
//! commit `gold/scored_transactions`, save the detector state, commit the detector tables and
//! `gold/alerts` naming that state — each with the batch's app transaction — and restore it
//! all at start-up.

use std::collections::BTreeMap;
use std::time::Instant;

use isolake_data::lake::{LakeTable, Staged};
use polars::prelude::*;

use super::dimensions::Lookup;
use super::{Detected, Gold, Scored, alerts, state};
use crate::bronze::BATCH_ID;
use crate::committer::Committer;
use crate::config::Config;
use crate::durable::StateDir;
use crate::error::{Inconsistency, Result};
use crate::event_log::{Flow, FlowEvent, Status};
use crate::plan::Plan;
use crate::plan::gold::GoldPlan;
use crate::source::progress::{self, Step};
use crate::tables::{GoldTables, app_batch};
use isolake_score::scorer::MODEL_VERSION;

/// What gold did in one batch (for the summary and the metrics).
#[derive(Debug, Clone, Default)]
pub struct GoldStats {
    pub rows: usize,
    pub alerts_by_detector: Vec<(String, u64)>,
    pub model_version: Option<u64>,
}

/// Gold's events and stats for one batch.
#[derive(Debug, Default)]
pub struct GoldOutcome {
    pub events: Vec<FlowEvent>,
    pub stats: GoldStats,
}

pub struct GoldStage {
    gold: Gold,
    pub tables: GoldTables,
    lookup: Lookup,
    config: Config,
    alert_keys: Vec<String>,
    state_dir: StateDir,
    committer: Committer,
    /// The last batch `scored_transactions` holds: a batch up to it is being recovered, and
    /// its committed scores are reused (never rescored with whatever model resolves now).
    scored_at: u64,
}

impl GoldStage {
    /// Opens (or creates) gold's tables.
    pub async fn open(plan: &Plan, gold: &GoldPlan, committer: Committer) -> Result<Self> {
        let config = &plan.config;
        let stage = Gold::new(
            gold,
            &config.schema.event_time,
            config.schema.key.as_deref(),
        );
        let tables = GoldTables::open(plan, gold, &stage.output_schemas()).await?;
        Ok(Self {
            gold: stage,
            tables,
            lookup: Lookup::new(&config.gold.dimensions),
            config: config.clone(),
            alert_keys: gold.alert_keys.clone(),
            state_dir: plan.lake.state(&config.id),
            committer,
            scored_at: 0,
        })
    }

    /// Gold for one batch.
    pub async fn run(
        &mut self,
        batch: u64,
        silver: &DataFrame,
        drain: bool,
    ) -> Result<GoldOutcome> {
        let started = Instant::now();
        let (scored, detected) = if batch <= self.scored_at {
            let scored = self.committed_scores(batch).await?;
            let gold = &mut self.gold;
            let detected =
                tokio::task::block_in_place(|| gold.detect(silver, &scored.frame, batch, drain))?;
            (scored, detected)
        } else {
            let (scored, staged, detected) = self.score_and_detect(batch, silver, drain)?;
            let commit = self.committer.commit(batch, Step::Gold).build()?;
            self.tables.scored.commit_staged(staged, commit).await?;
            (scored, detected)
        };
        let (snapshot, buffer) = self.gold.snapshot(self.committer.pipeline(), batch)?;
        let epoch = self.committer.epoch();
        let state_name = state::save(&self.state_dir, snapshot, buffer, epoch).await?;
        self.commit_detected(batch, &detected, state_name).await?;
        state::prune(&self.state_dir, batch).await;
        let stats = GoldStats {
            rows: scored.frame.height(),
            alerts_by_detector: count_by_detector(&detected),
            model_version: scored.model_version,
        };
        let mut events = scored.events;
        events.extend(detected.events);
        events.push(FlowEvent {
            batch_id: Some(batch),
            rows_in: silver.height() as u64,
            rows_out: scored.frame.height() as u64,
            late: detected.late as u64,
            alerts: detected.alerts.len() as u64,
            model_version: scored.model_version,
            duration_ms: started.elapsed().as_millis() as u64,
            ..FlowEvent::new(Flow::Gold, if drain { Status::Drained } else { Status::Ok })
        });
        Ok(GoldOutcome { events, stats })
    }

    /// Scores (both cores), then writes the scored rows (two halves, two files) while the
    /// detectors run.
    fn score_and_detect(
        &mut self,
        batch: u64,
        silver: &DataFrame,
        drain: bool,
    ) -> Result<(Scored, Staged, Detected)> {
        let handle = tokio::runtime::Handle::current();
        let scored_table = &self.tables.scored;
        let gold = &mut self.gold;
        tokio::task::block_in_place(|| {
            let scored = gold.score_batch(silver, batch)?;
            let half = (scored.frame.height() / 2) as i64;
            let (first, second) = scored.frame.split_at(half);
            // Growing with silver (see `schema_change`).
            let stage = |part: &DataFrame| handle.block_on(scored_table.stage(part, true));
            let ((a, b), detected) = rayon::join(
                || rayon::join(|| stage(&first), || stage(&second)),
                || gold.detect(silver, &scored.frame, batch, drain),
            );
            Ok((scored, a?.merge(b?), detected?))
        })
    }

    /// Commits the detector tables, then the alerts naming the saved state.
    async fn commit_detected(
        &mut self,
        batch: u64,
        detected: &Detected,
        state_name: String,
    ) -> Result<()> {
        self.lookup.refresh(&self.config).await?;
        let rows = alerts::frame(
            self.committer.pipeline(),
            batch,
            &detected.alerts,
            &self.alert_keys,
        )?;
        let alert_rows = self.lookup.enrich(rows)?;
        for (name, rows) in &detected.outputs {
            if let Some((_, table)) = self.tables.detectors.iter_mut().find(|(n, _)| n == name) {
                // New measures are new columns (see `schema_change`).
                let commit = self.committer.commit(batch, Step::Gold).evolve(true);
                table.append(rows, commit.build()?).await?;
            }
        }
        let commit = self
            .committer
            .commit(batch, Step::Alerts)
            .state(state_name)
            .evolve(true)
            .build()?;
        self.tables.alerts.append(&alert_rows, commit).await?;
        Ok(())
    }

    /// The scores `scored_transactions` holds for `batch` (recovery after a crash between its
    /// scores and its alerts): the model alerts come from them as they were.
    async fn committed_scores(&mut self, batch: u64) -> Result<Scored> {
        self.tables.scored.refresh().await?;
        let frame = self
            .tables
            .scored
            .scan()?
            .filter(col(BATCH_ID).eq(lit(batch as i64)))
            .collect()?;
        let model_version = frame
            .column(MODEL_VERSION)?
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .flatten()
            .next()
            .map(|v| v as u64);
        tracing::info!(
            batch,
            rows = frame.height(),
            "gold: reusing the committed scores"
        );
        Ok(Scored {
            frame,
            model_version,
            events: Vec::new(),
        })
    }

    /// Restores gold's state as of its last committed batch and returns that batch (0 when
    /// it has none yet).
    pub async fn restore(&mut self) -> Result<u64> {
        let id = self.committer.pipeline().to_string();
        let scored_at = app_batch(&self.tables.scored, &id).await?;
        let alerts_at = app_batch(&self.tables.alerts, &id).await?;
        self.scored_at = scored_at;
        self.gold.reset()?;
        if alerts_at == 0 {
            return Ok(0);
        }
        // The commit names its snapshot; once log cleanup removed that commit, the name
        // follows from the batch (the state directory keeps the last batches' snapshots).
        let named = progress::of_batch(&self.tables.alerts, &id, alerts_at).await?;
        let name = match named.and_then(|p| p.state) {
            Some(name) => name,
            None => state::name_of(&self.state_dir, alerts_at)
                .await?
                .ok_or(Inconsistency::NoDetectorState { batch: alerts_at })?,
        };
        let (snapshot, buffer) = state::load(&self.state_dir, &name).await?;
        self.gold.restore(snapshot, buffer)?;
        Ok(alerts_at.min(scored_at))
    }

    /// Gold's tables, alerts and detector tables first (see the full refresh).
    pub fn tables_mut(&mut self) -> Vec<&mut LakeTable> {
        let mut out = vec![&mut self.tables.alerts];
        out.extend(self.tables.detectors.iter_mut().map(|(_, t)| t));
        out.push(&mut self.tables.scored);
        out
    }
}

fn count_by_detector(detected: &Detected) -> Vec<(String, u64)> {
    let mut by_detector: BTreeMap<String, u64> = BTreeMap::new();
    for a in &detected.alerts {
        *by_detector.entry(a.detector.clone()).or_default() += 1;
    }
    by_detector.into_iter().collect()
}
