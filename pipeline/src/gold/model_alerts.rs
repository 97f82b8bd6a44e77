//! The model's alerts: one per row it flags (or scores at or above `alert_threshold`), with
//! the score, the threshold and the features that isolated the row most.

use polars::prelude::*;

use super::alerts::{Alert, AlertKind, Measures};
use super::detectors::{Context, RowIds, as_strings, micros};
use super::model::{Loaded, ModelSlot};
use crate::config::ModelConfig;
use crate::error::Result;
use isolake_score::scorer::{ANOMALY_SCORE, IS_ANOMALY, TOP_FEATURES};

/// The alerts of a scored batch (none without a loaded model).
pub fn alerts(slot: &ModelSlot, scored: &DataFrame, ctx: &Context) -> Result<Vec<Alert>> {
    let Some(current) = slot.current() else {
        return Ok(Vec::new());
    };
    let config = slot.config();
    let hit = flagged_rows(scored, config.alert_threshold)?;
    if hit.is_empty() {
        return Ok(Vec::new());
    }
    // Only the flagged rows, in one gather: no per-row lookups in a wide frame.
    let index = IdxCa::from_vec(
        PlSmallStr::EMPTY,
        hit.iter().map(|i| *i as IdxSize).collect(),
    );
    let flagged = scored.take(&index)?;
    let ids = RowIds::new(&flagged, ctx)?;
    let times = micros(&flagged, &ctx.event_time)?;
    let keys = match &config.key {
        Some(k) => Some(as_strings(&flagged, k)?),
        None => None,
    };
    let scores = flagged.column(ANOMALY_SCORE)?.f64()?.clone();
    let top = flagged.column(TOP_FEATURES)?.list()?.clone();
    let threshold = config.alert_threshold.unwrap_or(-current.forest.offset());
    let mut out = Vec::with_capacity(hit.len());
    for (i, (score, names)) in scores.iter().zip(top.amortized_iter()).enumerate() {
        let mut features: Vec<String> = Vec::with_capacity(config.explain);
        if let Some(names) = &names
            && let Ok(names) = names.as_ref().str()
        {
            features.extend(names.iter().flatten().map(str::to_string));
        }
        let key = keys.as_ref().and_then(|k| k.get(i)).map(str::to_string);
        let row = Row {
            id: ids.get(i),
            time: times.get(i),
            key,
            score,
        };
        out.push(alert(config, current, threshold, row, features));
    }
    Ok(out)
}

/// The rows to alert on.
fn flagged_rows(scored: &DataFrame, threshold: Option<f64>) -> Result<Vec<usize>> {
    let scores = scored.column(ANOMALY_SCORE)?.f64()?;
    let flags = scored.column(IS_ANOMALY)?.bool()?;
    Ok(scores
        .iter()
        .zip(flags.iter())
        .enumerate()
        .filter(|(_, (s, f))| match (threshold, s) {
            (Some(t), Some(s)) => *s >= t,
            (None, _) => *f == Some(true),
            _ => false,
        })
        .map(|(i, _)| i)
        .collect())
}

/// A flagged row's identity and score.
struct Row {
    id: String,
    time: Option<i64>,
    key: Option<String>,
    score: Option<f64>,
}

fn alert(
    config: &ModelConfig,
    current: &Loaded,
    threshold: f64,
    row: Row,
    features: Vec<String>,
) -> Alert {
    let reason = format!(
        "anomaly score {:.3} ≥ {:.3} ({}); isolated mostly by {}",
        row.score.unwrap_or(f64::NAN),
        threshold,
        current.resolved.uri,
        if features.is_empty() {
            "-".to_string()
        } else {
            features.join(", ")
        }
    );
    Alert {
        detector: "model".into(),
        kind: AlertKind::Model,
        key_column: config.key.clone(),
        key: row.key,
        transaction_ids: vec![row.id],
        event_time: row.time,
        score: row.score,
        measures: Measures::Model {
            anomaly_score: row.score,
            threshold,
            top_features: features,
            model: current.resolved.uri.clone(),
        },
        reason,
        model_version: current.resolved.version,
    }
}
