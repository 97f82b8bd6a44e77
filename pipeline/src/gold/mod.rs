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
mod model_alerts;
pub mod stage;
pub mod state;
pub mod watermark;

use polars::prelude::*;

use crate::bronze::utc_micros;
use crate::error::Result;
use crate::event_log::{Flow, FlowEvent, Status};
use crate::plan::gold::{DetectorPlan, GoldPlan, Rule};
use alerts::Alert;
use detectors::match_recognize::MatchRecognize;
use detectors::small_then_large::SmallThenLarge;
use detectors::threshold::Threshold;
use detectors::{Context, Detector};
use isolake_score::scorer::{ANOMALY_SCORE, IS_ANOMALY, MODEL_NAME, MODEL_VERSION, TOP_FEATURES};
use model::ModelSlot;
use watermark::EventBuffer;

pub const SCORED_AT: &str = "scored_at";
/// The threshold a row's score was flagged against, and the model URI that scored it: with
/// them a scored row alone gives its alert (recovery alerts from committed scores, whatever
/// the registry says by then).
pub const SCORE_THRESHOLD: &str = "score_threshold";
pub const MODEL_URI: &str = "model_uri";

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

/// The detector a plan describes.
fn build(plan: &DetectorPlan) -> Box<dyn Detector> {
    let name = &plan.name;
    match &plan.rule {
        Rule::SmallThenLarge(rule) => Box::new(SmallThenLarge::new(name, rule)),
        Rule::Threshold { expr, text, key } => {
            Box::new(Threshold::new(name, expr.clone(), text, key.clone()))
        }
        Rule::MatchRecognize {
            query,
            output_table,
        } => Box::new(MatchRecognize::new(name, query.clone(), *output_table)),
    }
}

impl Gold {
    /// `event_time` and `id_column`: silver's event-time column and dedup key.
    pub fn new(plan: &GoldPlan, event_time: &str, id_column: Option<&str>) -> Self {
        Self {
            ctx: Context {
                event_time: event_time.to_string(),
                id_column: id_column.map(str::to_string),
            },
            model: plan.model.as_ref().map(ModelSlot::new),
            detectors: plan.detectors.iter().map(build).collect(),
            buffer: EventBuffer::new(plan.allowed_lateness),
        }
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
        let mut alerts = match self.model.as_ref() {
            Some(slot) => model_alerts::alerts(slot.config(), scored, &self.ctx)?,
            None => Vec::new(),
        };
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
                    error: Some(format!("detector {}: {}", d.name(), errors.join("; "))),
                    ..FlowEvent::new(Flow::Gold, Status::RowErrors)
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
                let (mut scored, _) = scorer.score(silver)?;
                let threshold = slot
                    .config()
                    .alert_threshold
                    .unwrap_or(-current.forest.offset());
                scored.with_column(Column::new(SCORE_THRESHOLD.into(), vec![threshold; n]))?;
                let uri = current.resolved.uri.as_str();
                scored.with_column(Column::new(MODEL_URI.into(), vec![uri; n]))?;
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
        (SCORE_THRESHOLD, DataType::Float64),
        (MODEL_URI, DataType::String),
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
