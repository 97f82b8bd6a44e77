//! Gold's part of the config: `[model]`, `[[detectors]]`, `[gold]` and `[dimensions.*]`.

use std::sync::Arc;
use std::time::Duration;

use isolake_data::record::FieldType;

use toml::de::DeTable;

use super::parse::{Value, Walker, get, resolve_location};
use super::{SchemaConfig, SilverConfig};
use crate::gold::detectors::match_recognize::{Query, Ty, query};

/// Gold's declaration. Gold runs when a model or a detector is declared.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GoldConfig {
    pub model: Option<ModelConfig>,
    pub detectors: Vec<DetectorConfig>,
    /// Rows whose event time is more than this behind the latest seen are late: scored, but
    /// skipped by sequence rules (Flink's bounded out-of-orderness).
    pub allowed_lateness: Duration,
    /// Dimension tables joined to alerts (`[dimensions.accounts]`).
    pub dimensions: Vec<DimensionConfig>,
}

impl GoldConfig {
    pub fn enabled(&self) -> bool {
        self.model.is_some() || !self.detectors.is_empty()
    }
}

/// The model that scores every silver row.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// `models:/NAME@ALIAS`, `models:/NAME/VERSION` or an artifact file.
    pub uri: String,
    /// Registry location; `None`: `$MLFLOW_TRACKING_URI`, else `<lake>/_registry`.
    pub registry: Option<String>,
    /// How often an alias is resolved again in continuous mode (hot swap).
    pub refresh: Duration,
    pub on_missing: OnMissingModel,
    /// How many features `top_features` names (0: none).
    pub explain: usize,
    /// Score at or above which a row becomes an alert; `None`: the model's own `is_anomaly`.
    pub alert_threshold: Option<f64>,
    /// Column model alerts are keyed by (default `account_id` when the schema has it).
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMissingModel {
    /// Score columns are null, rules still run, the event log warns.
    SkipScoring,
    /// The batch fails.
    Fail,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    pub name: String,
    pub kind: DetectorKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DetectorKind {
    /// Flink's DataStream fraud rule: per key, an amount below `small` immediately followed
    /// (the key's next row in event time) by one above `large`, within `window` (inclusive).
    SmallThenLarge {
        key: String,
        amount: String,
        small: f64,
        large: f64,
        window: Option<Duration>,
    },
    /// A per-row SQL predicate.
    Threshold { expr: String, key: Option<String> },
    /// A Flink SQL `MATCH_RECOGNIZE` query over the silver stream, named `table` in the query.
    MatchRecognize {
        table: String,
        sql: String,
        /// Also write `gold/<name>` with the measures as typed columns.
        output_table: bool,
        query: Arc<Query>,
    },
}

impl DetectorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DetectorKind::SmallThenLarge { .. } => "small_then_large",
            DetectorKind::Threshold { .. } => "threshold",
            DetectorKind::MatchRecognize { .. } => "match_recognize",
        }
    }
}

/// A dimension table joined to alerts whose key column is `key`.
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionConfig {
    pub name: String,
    pub key: String,
}

pub(super) fn parse(
    w: &mut Walker<'_>,
    root: &DeTable<'_>,
    schema: &SchemaConfig,
    silver: &SilverConfig,
    base: &std::path::Path,
) -> GoldConfig {
    let mut gold = GoldConfig {
        allowed_lateness: Duration::from_secs(5),
        ..Default::default()
    };
    if let Some(value) = get(root, "gold")
        && let Some(table) = w.table("gold", value)
    {
        w.unknown_keys("gold", table, &["allowed_lateness"]);
        if let Some(v) = get(table, "allowed_lateness")
            && let Some(d) = w.duration("gold.allowed_lateness", v)
        {
            gold.allowed_lateness = d;
        }
    }
    gold.model = get(root, "model").and_then(|v| parse_model(w, v, schema, base));
    if let Some(value) = get(root, "detectors") {
        gold.detectors = parse_detectors(w, value, schema, silver, base);
    }
    if let Some(value) = get(root, "dimensions")
        && let Some(table) = w.table("dimensions", value)
    {
        for (name, value) in table.iter() {
            let path = format!("dimensions.{}", name.get_ref());
            let Some(dim) = w.table(&path, value) else {
                continue;
            };
            w.unknown_keys(&path, dim, &["key"]);
            let key = get(dim, "key")
                .and_then(|v| w.string(&format!("{path}.key"), v))
                .unwrap_or_else(|| "account_id".to_string());
            gold.dimensions.push(DimensionConfig {
                name: name.get_ref().to_string(),
                key,
            });
        }
    }
    gold
}

fn has_field(schema: &SchemaConfig, name: &str) -> bool {
    schema.fields.iter().any(|(n, _)| n == name)
}

fn parse_model(
    w: &mut Walker<'_>,
    value: &Value<'_>,
    schema: &SchemaConfig,
    base: &std::path::Path,
) -> Option<ModelConfig> {
    let table = w.table("model", value)?;
    w.unknown_keys(
        "model",
        table,
        &[
            "uri",
            "registry",
            "model_refresh",
            "on_missing_model",
            "explain",
            "alert_threshold",
            "key",
        ],
    );
    let uri = match get(table, "uri") {
        Some(v) => w.string("model.uri", v)?,
        None => {
            w.issue(
                "model.uri",
                Some(value.span()),
                "missing: e.g. uri = \"models:/fraud@production\"",
            );
            return None;
        }
    };
    if let Err(e) = isolake_models::ModelUri::parse(&uri) {
        w.issue(
            "model.uri",
            get(table, "uri").map(|v| v.span()),
            e.to_string(),
        );
    }
    let registry = get(table, "registry")
        .and_then(|v| w.string("model.registry", v))
        .map(|r| resolve_location(&r, base));
    let refresh = get(table, "model_refresh")
        .and_then(|v| w.duration("model.model_refresh", v))
        .unwrap_or(Duration::from_secs(30));
    let on_missing = match get(table, "on_missing_model") {
        None => OnMissingModel::SkipScoring,
        Some(v) => match w.string("model.on_missing_model", v).as_deref() {
            Some("skip_scoring") => OnMissingModel::SkipScoring,
            Some("fail") => OnMissingModel::Fail,
            Some(other) => {
                w.issue(
                    "model.on_missing_model",
                    Some(v.span()),
                    format!("{other:?} is not one of skip_scoring, fail"),
                );
                OnMissingModel::SkipScoring
            }
            None => OnMissingModel::SkipScoring,
        },
    };
    let explain = match get(table, "explain") {
        Some(v) => w.positive_integer("model.explain", v).unwrap_or(3) as usize,
        None => 3,
    };
    let alert_threshold =
        get(table, "alert_threshold").and_then(|v| w.number("model.alert_threshold", v));
    let key = match get(table, "key") {
        Some(v) => w.string("model.key", v),
        None => has_field(schema, "account_id").then(|| "account_id".to_string()),
    };
    Some(ModelConfig {
        uri,
        registry,
        refresh,
        on_missing,
        explain,
        alert_threshold,
        key,
    })
}

/// Silver's columns and their types, as a query sees them.
fn silver_columns(schema: &SchemaConfig, silver: &SilverConfig) -> Vec<(String, Ty)> {
    let ty = |t: FieldType| match t {
        FieldType::String => Ty::Str,
        FieldType::Integer => Ty::Int,
        FieldType::Double => Ty::Float,
        FieldType::Boolean => Ty::Bool,
        FieldType::Timestamp => Ty::Time,
    };
    let mut out: Vec<(String, Ty)> = schema
        .fields
        .iter()
        .map(|(name, declared)| {
            let cast = silver
                .casts
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| *t);
            (name.clone(), ty(cast.unwrap_or(*declared)))
        })
        .collect();
    if !out.iter().any(|(n, _)| *n == schema.event_time) {
        out.push((schema.event_time.clone(), Ty::Time));
    }
    out
}

fn parse_detectors(
    w: &mut Walker<'_>,
    value: &Value<'_>,
    schema: &SchemaConfig,
    silver: &SilverConfig,
    base: &std::path::Path,
) -> Vec<DetectorConfig> {
    let Some(items) = value.get_ref().as_array() else {
        w.issue(
            "detectors",
            Some(value.span()),
            "expected [[detectors]] tables with name and kind",
        );
        return Vec::new();
    };
    let mut out: Vec<DetectorConfig> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("detectors[{i}]");
        let Some(table) = w.table(&path, item) else {
            continue;
        };
        let name = get(table, "name").and_then(|v| w.string(&format!("{path}.name"), v));
        let Some(name) = name else {
            w.issue(
                &format!("{path}.name"),
                Some(item.span()),
                "missing: every detector needs a name (it names its alerts)",
            );
            continue;
        };
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            w.issue(
                &format!("{path}.name"),
                get(table, "name").map(|v| v.span()),
                "use letters, digits, '_' or '-' (it can name a table)",
            );
        }
        if ["model", "alerts", "scored_transactions"].contains(&name.as_str())
            || out.iter().any(|d| d.name == name)
        {
            w.issue(
                &format!("{path}.name"),
                get(table, "name").map(|v| v.span()),
                format!(
                    "{name:?} is already used (\"model\" names the model's alerts; \
                     alerts and scored_transactions are gold tables)"
                ),
            );
        }
        let kind = get(table, "kind").and_then(|v| w.string(&format!("{path}.kind"), v));
        let kind = match kind.as_deref() {
            Some("small_then_large") => parse_small_then_large(w, &path, table, schema),
            Some("threshold") => parse_threshold(w, &path, table, item),
            Some("match_recognize") => {
                let columns = silver_columns(schema, silver);
                parse_match_recognize(w, &path, table, item, &columns, &schema.event_time, base)
            }
            Some(other) => {
                w.issue(
                    &format!("{path}.kind"),
                    get(table, "kind").map(|v| v.span()),
                    format!(
                        "{other:?} is not a detector kind (small_then_large, threshold, \
                         match_recognize)"
                    ),
                );
                None
            }
            None => {
                w.issue(
                    &format!("{path}.kind"),
                    Some(item.span()),
                    "missing: small_then_large, threshold or match_recognize",
                );
                None
            }
        };
        if let Some(kind) = kind {
            out.push(DetectorConfig { name, kind });
        }
    }
    out
}

fn parse_small_then_large(
    w: &mut Walker<'_>,
    path: &str,
    table: &DeTable<'_>,
    schema: &SchemaConfig,
) -> Option<DetectorKind> {
    w.unknown_keys(
        path,
        table,
        &["name", "kind", "key", "amount", "small", "large", "window"],
    );
    let column = |w: &mut Walker<'_>, key: &str, default: &str| -> String {
        let name = get(table, key)
            .and_then(|v| w.string(&format!("{path}.{key}"), v))
            .unwrap_or_else(|| default.to_string());
        if !has_field(schema, &name) {
            w.issue(
                &format!("{path}.{key}"),
                get(table, key).map(|v| v.span()),
                format!("{name:?} is not a field of [schema]"),
            );
        }
        name
    };
    let key = column(w, "key", "account_id");
    let amount = column(w, "amount", "amount");
    let small = match get(table, "small") {
        Some(v) => w.number(&format!("{path}.small"), v)?,
        None => 1.0,
    };
    let large = match get(table, "large") {
        Some(v) => w.number(&format!("{path}.large"), v)?,
        None => 500.0,
    };
    let window = match get(table, "window") {
        Some(v) => Some(w.duration(&format!("{path}.window"), v)?),
        None => None,
    };
    Some(DetectorKind::SmallThenLarge {
        key,
        amount,
        small,
        large,
        window,
    })
}

fn parse_threshold(
    w: &mut Walker<'_>,
    path: &str,
    table: &DeTable<'_>,
    item: &Value<'_>,
) -> Option<DetectorKind> {
    w.unknown_keys(path, table, &["name", "kind", "expr", "key"]);
    let Some(v) = get(table, "expr") else {
        w.issue(
            &format!("{path}.expr"),
            Some(item.span()),
            "missing: a SQL predicate such as \"quantity > 3\"",
        );
        return None;
    };
    let expr = w.string(&format!("{path}.expr"), v)?;
    if let Err(e) = crate::silver::expectations::compile(&expr) {
        w.issue(&format!("{path}.expr"), Some(v.span()), e.to_string());
        return None;
    }
    let key = get(table, "key").and_then(|v| w.string(&format!("{path}.key"), v));
    Some(DetectorKind::Threshold { expr, key })
}

fn parse_match_recognize(
    w: &mut Walker<'_>,
    path: &str,
    table: &DeTable<'_>,
    item: &Value<'_>,
    columns: &[(String, Ty)],
    event_time: &str,
    base: &std::path::Path,
) -> Option<DetectorKind> {
    w.unknown_keys(
        path,
        table,
        &["name", "kind", "table", "sql", "sql_file", "output_table"],
    );
    let stream = get(table, "table")
        .and_then(|v| w.string(&format!("{path}.table"), v))
        .unwrap_or_else(|| "silver".to_string());
    let output_table = match get(table, "output_table") {
        Some(v) => w.boolean(&format!("{path}.output_table"), v)?,
        None => false,
    };
    let (sql, at) = match (get(table, "sql"), get(table, "sql_file")) {
        (Some(v), None) => (w.string(&format!("{path}.sql"), v)?, v),
        (None, Some(v)) => {
            let file = w.string(&format!("{path}.sql_file"), v)?;
            let file = base.join(file);
            match std::fs::read_to_string(&file) {
                Ok(text) => (text, v),
                Err(e) => {
                    w.issue(
                        &format!("{path}.sql_file"),
                        Some(v.span()),
                        format!("{}: {e}", file.display()),
                    );
                    return None;
                }
            }
        }
        _ => {
            w.issue(
                &format!("{path}.sql"),
                Some(item.span()),
                "give the query as sql = \"\"\"...\"\"\" or sql_file = \"q.sql\" (one of them)",
            );
            return None;
        }
    };
    match query::compile(&sql, &stream, columns, event_time) {
        Ok(q) => Some(DetectorKind::MatchRecognize {
            table: stream,
            sql,
            output_table,
            query: Arc::new(q),
        }),
        Err(e) => {
            w.issue(&format!("{path}.sql"), Some(at.span()), e);
            None
        }
    }
}
