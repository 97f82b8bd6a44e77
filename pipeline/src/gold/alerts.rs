//! `gold/alerts`: one row per alert, from the model or a rule, with a deterministic id so a
//! retried batch can never raise the same alert twice.

use std::sync::Arc;

use polars::prelude::*;
use serde::ser::{Serialize, SerializeMap, Serializer};
use sha2::{Digest, Sha256};

use crate::bronze::utc_micros;
use crate::error::Result;

/// Which kind of detector raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    Model,
    SmallThenLarge,
    Threshold,
    MatchRecognize,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Model => "model",
            AlertKind::SmallThenLarge => "small_then_large",
            AlertKind::Threshold => "threshold",
            AlertKind::MatchRecognize => "match_recognize",
        }
    }
}

/// What an alert measured: the `measures` column's JSON object, keys in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Measures {
    Model {
        anomaly_score: Option<f64>,
        threshold: f64,
        top_features: Vec<String>,
        /// The model version's URI.
        model: String,
    },
    /// Times in milliseconds since the epoch (as Flink's tutorial prints them).
    SmallThenLarge {
        large_amount: f64,
        large_ts: i64,
        small_amount: f64,
        small_ts: i64,
    },
    /// A threshold rule's text (shared by all its alerts).
    Rule { rule: Arc<str> },
    /// A MATCH_RECOGNIZE match: partition columns, then MEASURES, in query order.
    Match(Vec<(String, serde_json::Value)>),
}

impl Serialize for Measures {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            Measures::Model {
                anomaly_score,
                threshold,
                top_features,
                model,
            } => {
                map.serialize_entry("anomaly_score", anomaly_score)?;
                map.serialize_entry("threshold", threshold)?;
                map.serialize_entry("top_features", top_features)?;
                map.serialize_entry("model", model)?;
            }
            Measures::SmallThenLarge {
                large_amount,
                large_ts,
                small_amount,
                small_ts,
            } => {
                map.serialize_entry("large_amount", large_amount)?;
                map.serialize_entry("large_ts", large_ts)?;
                map.serialize_entry("small_amount", small_amount)?;
                map.serialize_entry("small_ts", small_ts)?;
            }
            Measures::Rule { rule } => map.serialize_entry("rule", rule)?,
            Measures::Match(entries) => {
                for (name, value) in entries {
                    map.serialize_entry(name, value)?;
                }
            }
        }
        map.end()
    }
}

impl std::fmt::Display for Measures {
    /// The JSON object, as the `measures` column holds it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

/// One alert before it becomes a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Detector name (`model` for the model's alerts).
    pub detector: String,
    pub kind: AlertKind,
    /// Which column `key` is a value of (e.g. `account_id`); joins dimensions.
    pub key_column: Option<String>,
    pub key: Option<String>,
    /// The rows involved, in order (their dedup key, or `file:line` without one).
    pub transaction_ids: Vec<String>,
    /// Event time of the row that completed the alert, microseconds since the epoch (UTC).
    pub event_time: Option<i64>,
    pub score: Option<f64>,
    pub measures: Measures,
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

pub fn fixed_schema() -> Schema {
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
        strings(|a| Some(a.kind.as_str())).with_name("kind".into()),
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
                .map(|a| serde_json::to_string(&a.measures))
                .collect::<serde_json::Result<Vec<_>>>()?,
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
