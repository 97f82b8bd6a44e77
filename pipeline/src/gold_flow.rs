//! The gold part of a micro-batch: score and detect over the batch's silver rows (in memory),
//! commit `gold/scored_transactions`, save the detector state, commit `gold/alerts` naming
//! that state — each with the batch's app transaction — and restore it all at start-up.
//! Also the full refresh, which empties every table derived from bronze.

use std::time::Instant;

use isolake_data::lake::{AppTransaction, Commit, Rewrite};
use polars::prelude::*;

use crate::error::{Error, Result};
use crate::event_log::FlowEvent;
use crate::gold::{alerts, state};
use crate::pipeline::{Pipeline, app_batch};
use crate::source::progress::BatchProgress;

impl Pipeline {
    /// Gold for one batch; nothing (and no events) when gold is not configured.
    pub(crate) async fn commit_gold(
        &mut self,
        batch: u64,
        silver_rows: &DataFrame,
        drain: bool,
    ) -> Result<Vec<FlowEvent>> {
        let txn = self.txn(batch);
        let (Some(gold), Some(tables)) = (self.gold.as_mut(), self.tables.gold.as_mut()) else {
            return Ok(Vec::new());
        };
        let started = Instant::now();
        let progress = |flow: &str, state: Option<String>| BatchProgress {
            pipeline: txn.app_id.clone(),
            batch,
            flow: flow.into(),
            files: Vec::new(),
            state,
        };
        // Score (both cores), then write the scored rows (two halves, two files) while the
        // detectors run.
        let handle = tokio::runtime::Handle::current();
        let scored_table = &tables.scored;
        let (scored, staged, detected) = tokio::task::block_in_place(|| -> Result<_> {
            let scored = gold.score_batch(silver_rows, batch)?;
            let half = (scored.frame.height() / 2) as i64;
            let (first, second) = scored.frame.split_at(half);
            let stage = |part: &DataFrame| handle.block_on(scored_table.stage(part, false));
            let ((a, b), detected) = rayon::join(
                || rayon::join(|| stage(&first), || stage(&second)),
                || gold.detect(silver_rows, &scored.frame, batch, drain),
            );
            Ok((scored, a?.merge(b?), detected?))
        })?;
        let scored_commit = Commit {
            app_transaction: Some(txn.clone()),
            metadata: progress("gold", None).to_metadata()?,
            evolve_schema: false,
        };
        tables.scored.commit_staged(staged, scored_commit).await?;
        let (snapshot, buffer) = gold.snapshot(&txn.app_id, batch)?;
        let state_dir = state::dir(&self.lake_dir, &txn.app_id);
        let state_name = state::save(&state_dir, snapshot, buffer)?;
        self.lookup.refresh(&self.config).await?;
        let alert_rows = self.lookup.enrich(alerts::frame(
            &txn.app_id,
            batch,
            &detected.alerts,
            &alerts::key_columns(&self.config.gold),
        )?)?;
        for (name, rows) in &detected.outputs {
            if let Some((_, table)) = tables.detectors.iter_mut().find(|(n, _)| n == name) {
                let commit = Commit {
                    app_transaction: Some(txn.clone()),
                    metadata: progress("gold", None).to_metadata()?,
                    evolve_schema: false,
                };
                table.append(rows, commit).await?;
            }
        }
        let alerts_commit = Commit {
            app_transaction: Some(txn.clone()),
            metadata: progress("alerts", Some(state_name)).to_metadata()?,
            evolve_schema: true,
        };
        tables.alerts.append(&alert_rows, alerts_commit).await?;
        state::prune(&state_dir, batch);
        let mut by_detector: std::collections::BTreeMap<String, u64> = Default::default();
        for a in &detected.alerts {
            *by_detector.entry(a.detector.clone()).or_default() += 1;
        }
        self.gold_stats = crate::pipeline::GoldStats {
            rows: scored.frame.height(),
            alerts_by_detector: by_detector.into_iter().collect(),
            model_version: scored.model_version,
        };
        let mut events = scored.events;
        events.extend(detected.events);
        events.push(FlowEvent {
            batch_id: Some(batch),
            flow: "gold".into(),
            rows_in: silver_rows.height() as u64,
            rows_out: scored.frame.height() as u64,
            late: detected.late as u64,
            alerts: detected.alerts.len() as u64,
            model_version: scored.model_version,
            duration_ms: started.elapsed().as_millis() as u64,
            status: if drain { "drained" } else { "ok" }.into(),
            ..Default::default()
        });
        Ok(events)
    }

    /// Restores gold's state as of its last committed batch and returns that batch (`None`
    /// when gold is not configured, `Some(0)` when it has none yet).
    pub(crate) async fn restore_gold(&mut self) -> Result<Option<u64>> {
        let id = self.config.id.clone();
        let (Some(gold), Some(tables)) = (self.gold.as_mut(), self.tables.gold.as_ref()) else {
            return Ok(None);
        };
        let scored_at = app_batch(&tables.scored, &id).await?;
        let alerts_at = app_batch(&tables.alerts, &id).await?;
        gold.reset()?;
        if alerts_at == 0 {
            return Ok(Some(0));
        }
        // The alerts commit of batch `alerts_at` names the state saved with it.
        let table = &tables.alerts;
        let mut name = None;
        for version in (0..=table.version()).rev() {
            let Some(info) = table.version_info(version).await? else {
                break;
            };
            let ours = info
                .app_transactions
                .iter()
                .any(|t| t.app_id == id && t.version == alerts_at as i64);
            if ours {
                name = BatchProgress::from_commit_info(&info.commit_info).and_then(|p| p.state);
                break;
            }
        }
        let name = name.ok_or_else(|| {
            Error::Inconsistent(format!(
                "gold/alerts is at batch {alerts_at} but its commit names no detector state; \
                 run with --full-refresh to rebuild gold"
            ))
        })?;
        let (snapshot, buffer) = state::load(&state::dir(&self.lake_dir, &id), &name)?;
        gold.restore(snapshot, buffer)?;
        Ok(Some(alerts_at.min(scored_at)))
    }

    /// Empties silver, quarantine and gold in one commit each, resetting their app version
    /// to 0 so that start-up rebuilds them from bronze. The event log keeps its history.
    pub(crate) async fn truncate_derived(&mut self) -> Result<()> {
        let id = self.config.id.clone();
        let reset = AppTransaction {
            app_id: id.clone(),
            version: 0,
        };
        let commit = |flow: &str| -> Result<Commit> {
            Ok(Commit {
                app_transaction: Some(reset.clone()),
                metadata: BatchProgress {
                    pipeline: id.clone(),
                    batch: 0,
                    flow: flow.into(),
                    files: Vec::new(),
                    state: None,
                }
                .to_metadata()?,
                evolve_schema: false,
            })
        };
        // Gold first: a crash half-way leaves the downstream tables behind, which start-up
        // catches up like any crash.
        let mut targets = Vec::new();
        if let Some(g) = self.tables.gold.as_mut() {
            targets.push(&mut g.alerts);
            for (_, table) in &mut g.detectors {
                targets.push(table);
            }
            targets.push(&mut g.scored);
        }
        targets.push(&mut self.tables.quarantine);
        targets.push(&mut self.tables.silver);
        for table in targets {
            // Emptying needs no read: whatever the latest version holds goes.
            table.refresh().await?;
            let empty = DataFrame::empty_with_schema(&table.schema()?);
            table
                .replace(&empty, commit("full_refresh")?, Rewrite::Overwrite)
                .await?;
        }
        tracing::info!("full refresh: silver, quarantine and gold emptied; rebuilding");
        Ok(())
    }
}
