//! The model's alerts: one per row it flags (or scores at or above `alert_threshold`), with
//! the score, the threshold and the features that isolated the row most. Everything comes
//! from the scored rows (version, URI and threshold included), so the alerts of committed
//! scores are the same whatever model the registry resolves later.

use polars::prelude::*;

use super::alerts::{Alert, AlertKind, Measures};
use super::detectors::{Context, RowIds, as_strings, micros};
use super::{MODEL_URI, SCORE_THRESHOLD};
use crate::config::ModelConfig;
use crate::error::Result;
use isolake_score::scorer::{ANOMALY_SCORE, IS_ANOMALY, MODEL_VERSION, TOP_FEATURES};

/// The alerts of a scored batch (none for rows no model scored).
pub fn alerts(config: &ModelConfig, scored: &DataFrame, ctx: &Context) -> Result<Vec<Alert>> {
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
    let thresholds = flagged.column(SCORE_THRESHOLD)?.f64()?.clone();
    let uris = flagged.column(MODEL_URI)?.str()?.clone();
    let versions = flagged.column(MODEL_VERSION)?.cast(&DataType::Int64)?;
    let versions = versions.i64()?;
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
        let model = ScoredBy {
            uri: uris.get(i).unwrap_or_default().to_string(),
            version: versions.get(i).map(|v| v as u64),
            threshold: thresholds.get(i).unwrap_or(f64::NAN),
        };
        out.push(alert(config, &model, row, features));
    }
    Ok(out)
}

/// The model that scored a row, as the row records it.
struct ScoredBy {
    uri: String,
    version: Option<u64>,
    threshold: f64,
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

fn alert(config: &ModelConfig, model: &ScoredBy, row: Row, features: Vec<String>) -> Alert {
    let threshold = model.threshold;
    let reason = format!(
        "anomaly score {:.3} ≥ {:.3} ({}); isolated mostly by {}",
        row.score.unwrap_or(f64::NAN),
        threshold,
        model.uri,
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
            model: model.uri.clone(),
        },
        reason,
        model_version: model.version,
    }
}
