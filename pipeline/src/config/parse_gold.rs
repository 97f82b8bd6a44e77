//! Gold's part of the config: `[model]`, `[[detectors]]`, `[gold]` and `[dimensions.*]`.

use std::path::Path;
use std::time::Duration;

use toml::de::DeTable;

use super::walker::{Value, Walker, get};
use super::{
    DetectorConfig, DetectorKind, DimensionConfig, GoldConfig, ModelConfig, OnMissingModel,
    SchemaConfig, SmallThenLargeRule, resolve_location,
};

pub(super) fn parse(
    w: &mut Walker<'_>,
    root: &DeTable<'_>,
    schema: &SchemaConfig,
    base: &Path,
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
        gold.detectors = parse_detectors(w, value, schema, base);
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
    base: &Path,
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

fn parse_detectors(
    w: &mut Walker<'_>,
    value: &Value<'_>,
    schema: &SchemaConfig,
    base: &Path,
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
            Some("match_recognize") => parse_match_recognize(w, &path, table, item, base),
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
    Some(DetectorKind::SmallThenLarge(SmallThenLargeRule {
        key,
        amount,
        small,
        large,
        window,
    }))
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
    let key = get(table, "key").and_then(|v| w.string(&format!("{path}.key"), v));
    Some(DetectorKind::Threshold { expr, key })
}

fn parse_match_recognize(
    w: &mut Walker<'_>,
    path: &str,
    table: &DeTable<'_>,
    item: &Value<'_>,
    base: &Path,
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
    let sql = query_text(w, path, table, item, base)?;
    Some(DetectorKind::MatchRecognize {
        table: stream,
        sql,
        output_table,
    })
}

/// The query's text, given inline (`sql`) or in a file (`sql_file`, relative to the config).
/// Either way the plan reports a query problem at `<path>.sql`, with the line of the value.
fn query_text(
    w: &mut Walker<'_>,
    path: &str,
    table: &DeTable<'_>,
    item: &Value<'_>,
    base: &Path,
) -> Option<String> {
    match (get(table, "sql"), get(table, "sql_file")) {
        (Some(v), None) => w.string(&format!("{path}.sql"), v),
        (None, Some(v)) => {
            let file = base.join(w.string(&format!("{path}.sql_file"), v)?);
            w.lines.insert(format!("{path}.sql"), w.line(v.span()));
            match std::fs::read_to_string(&file) {
                Ok(text) => Some(text),
                Err(e) => {
                    w.issue(
                        &format!("{path}.sql_file"),
                        Some(v.span()),
                        format!("{}: {e}", file.display()),
                    );
                    None
                }
            }
        }
        _ => {
            w.issue(
                &format!("{path}.sql"),
                Some(item.span()),
                "give the query as sql = \"\"\"...\"\"\" or sql_file = \"q.sql\" (one of them)",
            );
            None
        }
    }
}
