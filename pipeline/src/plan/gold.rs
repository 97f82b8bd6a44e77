//! Gold's part of the plan: every detector compiled (threshold predicates, MATCH_RECOGNIZE
//! queries), the alert table's key columns, and the model's registry.

use std::sync::Arc;
use std::time::Duration;

use isolake_data::record::FieldType;
use isolake_models::Registry;
use polars::prelude::*;

use crate::config::{DetectorConfig, DetectorKind, GoldConfig, ModelConfig, SmallThenLargeRule};
use crate::gold::detectors::match_recognize::query::{self, Query};
use crate::gold::detectors::match_recognize::value::Ty;

/// A detector ready to build: its parameters checked, its expressions compiled.
#[derive(Debug, Clone)]
pub struct DetectorPlan {
    pub name: String,
    pub rule: Rule,
}

#[derive(Debug, Clone)]
pub enum Rule {
    SmallThenLarge(SmallThenLargeRule),
    Threshold {
        expr: Expr,
        text: String,
        key: Option<String>,
    },
    MatchRecognize {
        query: Arc<Query>,
        output_table: bool,
    },
}

impl Rule {
    /// The single column the rule's alerts are keyed by, if any (a multi-column
    /// MATCH_RECOGNIZE partition has none).
    pub fn key_column(&self) -> Option<&str> {
        match self {
            Rule::SmallThenLarge(rule) => Some(&rule.key),
            Rule::Threshold { key, .. } => key.as_deref(),
            Rule::MatchRecognize { query, .. } => match query.partition.as_slice() {
                [(name, _)] => Some(name),
                _ => None,
            },
        }
    }
}

/// The model that scores gold, with its registry resolved.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    pub config: ModelConfig,
    /// `[model] registry`, else `$MLFLOW_TRACKING_URI`, else `<lake>/_registry`.
    pub registry: String,
    /// Silver's numeric columns: what a model version may use as features. A version that
    /// needs another is refused before it scores (see `gold::model`).
    pub numeric_columns: Vec<String>,
}

/// Gold's plan (only when a model or a detector is declared).
#[derive(Debug, Clone)]
pub struct GoldPlan {
    pub model: Option<ModelPlan>,
    pub detectors: Vec<DetectorPlan>,
    /// `gold/alerts`' key columns (see `gold::alerts::schema`).
    pub alert_keys: Vec<String>,
    pub allowed_lateness: Duration,
}

/// Compiles one detector; the error is `(key, message)` for the config issue.
pub fn detector(
    index: usize,
    config: &DetectorConfig,
    silver: &Schema,
    columns: &[(String, FieldType)],
    event_time: &str,
) -> Result<DetectorPlan, (String, String)> {
    let rule = match &config.kind {
        DetectorKind::SmallThenLarge(rule) => Rule::SmallThenLarge(rule.clone()),
        DetectorKind::Threshold { expr, key } => {
            let what = format!("threshold rule {:?}", config.name);
            let compiled = super::silver::predicate(&what, expr, silver)
                .map_err(|e| (format!("detectors[{index}].expr"), e))?;
            Rule::Threshold {
                expr: compiled,
                text: expr.clone(),
                key: key.clone(),
            }
        }
        DetectorKind::MatchRecognize {
            table,
            sql,
            output_table,
        } => {
            let typed: Vec<(String, Ty)> = columns
                .iter()
                .map(|(n, t)| (n.clone(), Ty::of(*t)))
                .collect();
            let query = query::compile(sql, table, &typed, event_time)
                .map_err(|e| (format!("detectors[{index}].sql"), e.to_string()))?;
            Rule::MatchRecognize {
                query: Arc::new(query),
                output_table: *output_table,
            }
        }
    };
    Ok(DetectorPlan {
        name: config.name.clone(),
        rule,
    })
}

/// The key columns alerts get a column of: single-column keys of the model and the
/// detectors, not a name the fixed columns already use.
pub fn alert_keys(model: Option<&ModelConfig>, detectors: &[DetectorPlan]) -> Vec<String> {
    let fixed = crate::gold::alerts::fixed_schema();
    let mut names: Vec<String> = model
        .and_then(|m| m.key.clone())
        .into_iter()
        .chain(
            detectors
                .iter()
                .filter_map(|d| d.rule.key_column().map(str::to_string)),
        )
        .filter(|name| fixed.get(name.as_str()).is_none())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The model's plan: its registry resolved against the lake, and the features silver offers.
/// `default_registry`: the lake's `_registry` directory.
pub fn model(
    config: &ModelConfig,
    default_registry: &str,
    columns: &[(String, FieldType)],
) -> ModelPlan {
    let registry = config
        .registry
        .clone()
        .unwrap_or_else(|| Registry::uri_from_env_or(default_registry));
    let numeric_columns = columns
        .iter()
        .filter(|(_, t)| matches!(t, FieldType::Integer | FieldType::Double))
        .map(|(n, _)| n.clone())
        .collect();
    ModelPlan {
        config: config.clone(),
        registry,
        numeric_columns,
    }
}

/// Gold's plan from its config and the compiled detectors.
pub fn plan(
    gold: &GoldConfig,
    detectors: Vec<DetectorPlan>,
    default_registry: &str,
    columns: &[(String, FieldType)],
) -> GoldPlan {
    GoldPlan {
        model: gold
            .model
            .as_ref()
            .map(|m| model(m, default_registry, columns)),
        alert_keys: alert_keys(gold.model.as_ref(), &detectors),
        detectors,
        allowed_lateness: gold.allowed_lateness,
    }
}
