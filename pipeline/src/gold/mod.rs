//! Gold: every silver row scored by the model (a vectorised UDF over the batch), rule
//! detectors next to it, and alerts from both — in the same micro-batch as bronze and silver.
//!
//! ```text
//! model       the registry model, cached, re-resolved every model_refresh (hot swap)
//! watermark   event-time order for sequence rules; late rows are counted and skipped
//! detectors   small_then_large, threshold (one trait; MATCH_RECOGNIZE fits the same)
//! alerts      gold/alerts rows with deterministic ids
//! state       the snapshot each gold commit references, restored at start-up
//! dimensions  dimension tables (MERGE by key) joined to alerts
//! ```

pub mod alerts;
pub mod detectors;
pub mod dimensions;
pub mod model;
pub mod state;
pub mod watermark;

use polars::prelude::*;

use crate::bronze::utc_micros;
use crate::config::Config;
use crate::error::Result;
use crate::event_log::FlowEvent;
use alerts::Alert;
use detectors::{Context, Detector, RowIds, as_strings, micros};
use isolake_score::scorer::{ANOMALY_SCORE, IS_ANOMALY, MODEL_NAME, MODEL_VERSION, TOP_FEATURES};
use model::ModelSlot;
use watermark::EventBuffer;

pub const SCORED_AT: &str = "scored_at";

/// A batch's rows with their scores.
pub struct Scored {
    pub frame: DataFrame,
    pub model_version: Option<u64>,
    /// Model events (loaded, switched, unreachable) for the event log.
    pub events: Vec<FlowEvent>,
}

/// A batch's alerts and detector outputs.
pub struct Detected {
    pub alerts: Vec<Alert>,
    /// Rows for detectors' own tables (`gold/<name>`).
    pub outputs: Vec<(String, DataFrame)>,
    pub late: usize,
    /// Row errors of detectors, for the event log.
    pub events: Vec<FlowEvent>,
}

pub struct Gold {
    ctx: Context,
    model: Option<ModelSlot>,
    detectors: Vec<Box<dyn Detector>>,
    buffer: EventBuffer,
}

impl Gold {
    pub fn new(config: &Config, lake_dir: &std::path::Path) -> Result<Self> {
        Ok(Self {
            ctx: Context {
                event_time: config.schema.event_time.clone(),
                id_column: config.schema.key.clone(),
            },
            model: config
                .gold
                .model
                .as_ref()
                .map(|m| ModelSlot::new(m, lake_dir)),
            detectors: detectors::build(&config.gold.detectors, &crate::silver::schema(config))?,
            buffer: EventBuffer::new(config.gold.allowed_lateness),
        })
    }

    /// The model part of a batch: resolves the model when due and scores every row.
    pub fn score_batch(&mut self, silver: &DataFrame, batch: u64) -> Result<Scored> {
        let mut events = Vec::new();
        if let Some(slot) = &mut self.model {
            events.extend(slot.refresh(batch)?);
        }
        let (frame, model_version) = self.score(silver)?;
        Ok(Scored {
            frame,
            model_version,
            events,
        })
    }

    /// The alerts part of a batch: the model's alerts from `scored`, then the rule detectors
    /// (it can run while `scored` is being written).
    pub fn detect(
        &mut self,
        silver: &DataFrame,
        scored: &DataFrame,
        batch: u64,
        drain: bool,
    ) -> Result<Detected> {
        let mut events = Vec::new();
        let mut alerts = self.model_alerts(scored)?;
        for d in &mut self.detectors {
            d.on_rows(silver, &self.ctx, &mut alerts)?;
        }
        let admitted = self
            .buffer
            .admit(silver, &self.ctx.event_time, batch, drain)?;
        let progress = detectors::Progress {
            watermark: self.buffer.watermark(),
            ended: drain,
        };
        let mut outputs = Vec::new();
        for d in &mut self.detectors {
            d.on_ordered(&admitted.released, &self.ctx, progress, &mut alerts)?;
            let errors = d.take_errors();
            if !errors.is_empty() {
                events.push(FlowEvent {
                    batch_id: Some(batch),
                    flow: "gold".into(),
                    status: "row_errors".into(),
                    error: Some(format!("detector {}: {}", d.name(), errors.join("; "))),
                    ..Default::default()
                });
            }
            if let Some(rows) = d.take_output()? {
                outputs.push((d.name().to_string(), rows));
            }
        }
        Ok(Detected {
            alerts,
            outputs,
            late: admitted.late,
            events,
        })
    }

    /// `silver` plus the score columns (null without a model) and `scored_at`.
    fn score(&self, silver: &DataFrame) -> Result<(DataFrame, Option<u64>)> {
        let n = silver.height();
        let loaded = self
            .model
            .as_ref()
            .and_then(|m| m.current().map(|c| (m, c)));
        let (mut scored, version) = match loaded {
            Some((slot, current)) => {
                let scorer = isolake_score::Scorer::new(
                    &current.forest,
                    current.resolved.name.clone(),
                    current.resolved.version,
                )
                .explain(slot.config().explain);
                let (scored, _) = scorer.score(silver)?;
                (scored, current.resolved.version)
            }
            None => {
                let mut out = silver.clone();
                for (name, dtype) in score_columns() {
                    out.with_column(Column::full_null(name.into(), n, &dtype))?;
                }
                (out, None)
            }
        };
        if !scored.schema().contains(TOP_FEATURES) {
            scored.with_column(Column::full_null(
                TOP_FEATURES.into(),
                n,
                &DataType::List(Box::new(DataType::String)),
            ))?;
        }
        let now = chrono::Utc::now().timestamp_micros();
        scored.with_column(Column::new(SCORED_AT.into(), vec![now; n]).cast(&utc_micros())?)?;
        Ok((scored, version))
    }

    /// One alert per row the model flags (or scores at or above `alert_threshold`).
    fn model_alerts(&self, scored: &DataFrame) -> Result<Vec<Alert>> {
        let Some(slot) = &self.model else {
            return Ok(Vec::new());
        };
        let Some(current) = slot.current() else {
            return Ok(Vec::new());
        };
        let config = slot.config();
        let scores = scored.column(ANOMALY_SCORE)?.f64()?;
        let flags = scored.column(IS_ANOMALY)?.bool()?;
        let hit: Vec<usize> = scores
            .iter()
            .zip(flags.iter())
            .enumerate()
            .filter(|(_, (s, f))| match (config.alert_threshold, s) {
                (Some(t), Some(s)) => *s >= t,
                (None, _) => *f == Some(true),
                _ => false,
            })
            .map(|(i, _)| i)
            .collect();
        if hit.is_empty() {
            return Ok(Vec::new());
        }
        // Only the flagged rows, in one gather: no per-row lookups in a wide frame.
        let index = IdxCa::from_vec(
            PlSmallStr::EMPTY,
            hit.iter().map(|i| *i as IdxSize).collect(),
        );
        let flagged = scored.take(&index)?;
        let ids = RowIds::new(&flagged, &self.ctx)?;
        let times = micros(&flagged, &self.ctx.event_time)?;
        let keys = match &config.key {
            Some(k) => Some(as_strings(&flagged, k)?),
            None => None,
        };
        let scores = flagged.column(ANOMALY_SCORE)?.f64()?.clone();
        let top = flagged.column(TOP_FEATURES)?.list()?.clone();
        let threshold = config.alert_threshold.unwrap_or(-current.forest.offset());
        let model = serde_json::to_string(&current.resolved.uri)?;
        let mut out = Vec::with_capacity(hit.len());
        for (i, (score, names)) in scores.iter().zip(top.amortized_iter()).enumerate() {
            let mut features: Vec<&str> = Vec::with_capacity(config.explain);
            if let Some(names) = &names
                && let Ok(names) = names.as_ref().str()
            {
                features.extend(names.iter().flatten());
            }
            let measures = format!(
                "{{\"anomaly_score\":{},\"threshold\":{},\"top_features\":{},\"model\":{model}}}",
                serde_json::to_string(&score)?,
                serde_json::to_string(&threshold)?,
                serde_json::to_string(&features)?,
            );
            let reason = format!(
                "anomaly score {:.3} ≥ {:.3} ({}); isolated mostly by {}",
                score.unwrap_or(f64::NAN),
                threshold,
                current.resolved.uri,
                if features.is_empty() {
                    "-".to_string()
                } else {
                    features.join(", ")
                }
            );
            out.push(Alert {
                detector: "model".into(),
                kind: "model",
                key_column: config.key.clone(),
                key: keys.as_ref().and_then(|k| k.get(i)).map(str::to_string),
                transaction_ids: vec![ids.get(i)],
                event_time: times.get(i),
                score,
                measures,
                reason,
                model_version: current.resolved.version,
            });
        }
        Ok(out)
    }

    /// Detectors that write a table of their own, with its schema.
    pub fn output_schemas(&self) -> Vec<(String, Schema)> {
        self.detectors
            .iter()
            .filter_map(|d| d.output_schema().map(|s| (d.name().to_string(), s)))
            .collect()
    }

    /// The state to save with the batch's gold commit.
    pub fn snapshot(
        &self,
        pipeline: &str,
        batch: u64,
    ) -> Result<(state::Snapshot, Option<&DataFrame>)> {
        let mut detectors = std::collections::BTreeMap::new();
        for d in &self.detectors {
            detectors.insert(d.name().to_string(), d.save()?);
        }
        Ok((
            state::Snapshot {
                pipeline: pipeline.to_string(),
                batch,
                max_seen: self.buffer.max_seen,
                detectors,
                buffer: None,
            },
            self.buffer.pending.as_ref(),
        ))
    }

    /// Restores the state a snapshot saved (detectors it does not name start empty).
    pub fn restore(&mut self, snapshot: state::Snapshot, buffer: Option<DataFrame>) -> Result<()> {
        self.buffer.max_seen = snapshot.max_seen;
        self.buffer.pending = buffer;
        for d in &mut self.detectors {
            let s = snapshot
                .detectors
                .get(d.name())
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            d.restore(s)?;
        }
        Ok(())
    }

    /// Forgets all state (a full refresh starts gold from nothing).
    pub fn reset(&mut self) -> Result<()> {
        self.restore(state::Snapshot::default(), None)
    }
}

/// The columns scoring adds, with their types.
pub fn score_columns() -> Vec<(&'static str, DataType)> {
    vec![
        (ANOMALY_SCORE, DataType::Float64),
        (IS_ANOMALY, DataType::Boolean),
        (MODEL_NAME, DataType::String),
        (MODEL_VERSION, DataType::Int64),
        (TOP_FEATURES, DataType::List(Box::new(DataType::String))),
    ]
}

/// `gold/scored_transactions`'s schema: silver's plus the score columns and `scored_at`.
pub fn scored_schema(silver: &Schema) -> Schema {
    let mut schema = silver.clone();
    for (name, dtype) in score_columns() {
        schema.with_column(name.into(), dtype);
    }
    schema.with_column(SCORED_AT.into(), utc_micros());
    schema
}
