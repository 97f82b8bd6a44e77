//! `gold/alerts`: one row per alert, from the model or a rule, with a deterministic id so a
//! retried batch can never raise the same alert twice.

use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::bronze::utc_micros;
use crate::error::Result;

/// One alert before it becomes a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Detector name (`model` for the model's alerts).
    pub detector: String,
    /// `model`, `small_then_large`, `threshold`, ...
    pub kind: &'static str,
    /// Which column `key` is a value of (e.g. `account_id`); joins dimensions.
    pub key_column: Option<String>,
    pub key: Option<String>,
    /// The rows involved, in order (their dedup key, or `file:line` without one).
    pub transaction_ids: Vec<String>,
    /// Event time of the row that completed the alert, microseconds since the epoch (UTC).
    pub event_time: Option<i64>,
    pub score: Option<f64>,
    /// Rule measures or model details: a JSON object's text (keys in the detector's order).
    pub measures: String,
    pub reason: String,
    pub model_version: Option<u64>,
}

/// `sha256(pipeline | detector | ids)`, hex, 32 characters: the same alert always gets the
/// same id, whatever batch or retry raised it.
pub fn alert_id(pipeline: &str, detector: &str, ids: &[String]) -> String {
    let mut hash = Sha256::new();
    hash.update(pipeline.as_bytes());
    hash.update([0u8]);
    hash.update(detector.as_bytes());
    for id in ids {
        hash.update([0u8]);
        hash.update(id.as_bytes());
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The table's columns: the fixed ones, then one per key column of the configured detectors
/// (`key_columns`, e.g. `account_id`), holding `key` for the alerts keyed by it, so that
/// `SELECT account_id, count(*) FROM alerts GROUP BY 1` reads as it would on silver.
pub fn schema(key_columns: &[String]) -> Schema {
    let mut schema = fixed_schema();
    for name in key_columns {
        schema.with_column(name.as_str().into(), DataType::String);
    }
    schema
}

fn fixed_schema() -> Schema {
    let mut schema = Schema::default();
    for (name, dtype) in [
        ("alert_id", DataType::String),
        ("detector", DataType::String),
        ("kind", DataType::String),
        ("key_column", DataType::String),
        ("key", DataType::String),
        (
            "transaction_ids",
            DataType::List(Box::new(DataType::String)),
        ),
        ("event_time", utc_micros()),
        ("score", DataType::Float64),
        ("measures", DataType::String),
        ("reason", DataType::String),
        ("model_version", DataType::Int64),
        ("batch_id", DataType::Int64),
        ("created_at", utc_micros()),
    ] {
        schema.with_column(name.into(), dtype);
    }
    schema
}

/// The alerts as rows of [`schema`].
/// The key columns alerts get a column of: single-column keys of the model and the detectors
/// (not a multi-column MATCH_RECOGNIZE partition, nor a name the fixed columns already use).
pub fn key_columns(gold: &crate::config::GoldConfig) -> Vec<String> {
    use crate::config::DetectorKind;
    let fixed = fixed_schema();
    let mut names: Vec<String> = gold
        .model
        .iter()
        .filter_map(|m| m.key.clone())
        .chain(gold.detectors.iter().filter_map(|d| match &d.kind {
            DetectorKind::SmallThenLarge { key, .. } => Some(key.clone()),
            DetectorKind::Threshold { key, .. } => key.clone(),
            DetectorKind::MatchRecognize { query, .. } => match query.partition.as_slice() {
                [(name, _)] => Some(name.clone()),
                _ => None,
            },
        }))
        .filter(|name| fixed.get(name.as_str()).is_none())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The alerts of a batch as rows of [`schema`]`(key_columns)`.
pub fn frame(
    pipeline: &str,
    batch: u64,
    alerts: &[Alert],
    key_columns: &[String],
) -> Result<DataFrame> {
    let n = alerts.len();
    let now = chrono::Utc::now().timestamp_micros();
    let strings = |f: fn(&Alert) -> Option<&str>| -> Column {
        Column::new(
            PlSmallStr::EMPTY,
            alerts.iter().map(f).collect::<Vec<Option<&str>>>(),
        )
    };
    let mut ids = ListStringChunkedBuilder::new("transaction_ids".into(), n, n * 2);
    for a in alerts {
        ids.append_values_iter(a.transaction_ids.iter().map(String::as_str));
    }
    let mut columns = vec![
        Column::new(
            "alert_id".into(),
            alerts
                .iter()
                .map(|a| alert_id(pipeline, &a.detector, &a.transaction_ids))
                .collect::<Vec<_>>(),
        ),
        strings(|a| Some(a.detector.as_str())).with_name("detector".into()),
        strings(|a| Some(a.kind)).with_name("kind".into()),
        strings(|a| a.key_column.as_deref()).with_name("key_column".into()),
        strings(|a| a.key.as_deref()).with_name("key".into()),
        ids.finish().into_series().into_column(),
        Column::new(
            "event_time".into(),
            alerts.iter().map(|a| a.event_time).collect::<Vec<_>>(),
        )
        .cast(&utc_micros())?,
        Column::new(
            "score".into(),
            alerts.iter().map(|a| a.score).collect::<Vec<_>>(),
        ),
        Column::new(
            "measures".into(),
            alerts
                .iter()
                .map(|a| a.measures.as_str())
                .collect::<Vec<_>>(),
        ),
        strings(|a| Some(a.reason.as_str())).with_name("reason".into()),
        Column::new(
            "model_version".into(),
            alerts
                .iter()
                .map(|a| a.model_version.map(|v| v as i64))
                .collect::<Vec<_>>(),
        ),
        Column::new("batch_id".into(), vec![batch as i64; n]),
        Column::new("created_at".into(), vec![now; n]).cast(&utc_micros())?,
    ];
    for name in key_columns {
        let keys: Vec<Option<&str>> = alerts
            .iter()
            .map(|a| match a.key_column.as_deref() == Some(name.as_str()) {
                true => a.key.as_deref(),
                false => None,
            })
            .collect();
        columns.push(Column::new(name.as_str().into(), keys));
    }
    Ok(DataFrame::new(n, columns)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn alert_ids_are_stable_and_distinct() {
        let ids = vec!["t1".to_string(), "t2".to_string()];
        let a = alert_id("fraud", "small_then_large", &ids);
        assert_eq!(a, alert_id("fraud", "small_then_large", &ids));
        assert_eq!(a.len(), 32);
        assert_ne!(a, alert_id("fraud", "model", &ids));
        // Concatenation must not collide: ["t1t2"] is not ["t1", "t2"].
        assert_ne!(
            a,
            alert_id("fraud", "small_then_large", &["t1t2".to_string()])
        );
    }
}
