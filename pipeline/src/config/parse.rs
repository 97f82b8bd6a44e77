//! Walks the TOML document with positions kept and builds a [`Config`], collecting every
//! problem (unknown key, wrong type, bad value) with its key path and line.

use std::path::Path;
use std::time::Duration;

use toml::de::DeTable;

use super::walker::{Value, Walker, get};
use super::{
    Action, BatchLimits, CleanSource, Config, ConfigError, ConfigIssue, Evolution, Expectation,
    Maintenance, SchemaConfig, SilverConfig, SourceConfig, canonical_expectations,
    resolve_location,
};

const DEFAULT_PATTERNS: [&str; 6] = [
    "*.json",
    "*.jsonl",
    "*.ndjson",
    "*.json.gz",
    "*.jsonl.gz",
    "*.ndjson.gz",
];

const ROOT_KEYS: [&str; 14] = [
    "id",
    "lock",
    "storage",
    "lake",
    "trigger_interval",
    "maintenance",
    "source",
    "schema",
    "silver",
    "expectations",
    "model",
    "detectors",
    "gold",
    "dimensions",
];

impl Config {
    /// Reads a config file as data (nothing compiled: see [`crate::plan::Plan::load`] for the
    /// checked, runnable form). Relative `lake` and `landing` paths are resolved against the
    /// file's directory, so a pipeline behaves the same from any working dir.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (config, issues) = Self::read(path)?;
        match issues.is_empty() {
            true => Ok(config),
            false => Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                issues,
            }),
        }
    }

    /// The file's config with defaults where a value is wrong, and every problem found.
    pub fn read(path: &Path) -> Result<(Self, Vec<ConfigIssue>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(parse(&text, base))
    }

    /// The config with defaults standing in for wrong values, and every problem found.
    pub fn parse_all(text: &str, base: &Path) -> (Self, Vec<ConfigIssue>) {
        parse(text, base)
    }

    /// Parses config text; every problem found is returned, each with its key and line.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, Vec<ConfigIssue>> {
        let (config, issues) = parse(text, base);
        match issues.is_empty() {
            true => Ok(config),
            false => Err(issues),
        }
    }
}

/// The config (defaults standing in for wrong values) and every problem, sorted by line.
pub(super) fn parse(text: &str, base: &Path) -> (Config, Vec<ConfigIssue>) {
    let (doc, errors) = DeTable::parse_recoverable(text);
    let mut w = Walker::new(text);
    for e in &errors {
        w.issue("(syntax)", e.span(), e.message().to_string());
    }
    let root = doc.get_ref();
    w.unknown_keys("", root, &ROOT_KEYS);
    let id = parse_id(&mut w, root);
    let lake = get(root, "lake")
        .and_then(|v| w.string("lake", v))
        .unwrap_or_else(|| "./lake".to_string());
    let lake = resolve_location(&lake, base);
    let trigger_interval = get(root, "trigger_interval")
        .and_then(|v| w.duration("trigger_interval", v))
        .unwrap_or(Duration::from_secs(1));
    let maintenance = parse_maintenance(&mut w, get(root, "maintenance"));
    let lock = super::parse_ops::parse_lock(&mut w, get(root, "lock"));
    let storage = super::parse_ops::parse_storage(&mut w, get(root, "storage"));
    let (source, batch) = parse_source(&mut w, get(root, "source"), base);
    let schema = parse_schema(&mut w, get(root, "schema"));
    let silver = parse_silver(&mut w, get(root, "silver"), &schema);
    let expectations = parse_expectations(&mut w, get(root, "expectations"), &schema);
    let gold = super::parse_gold::parse(&mut w, root, &schema, base);
    let mut issues = std::mem::take(&mut w.issues);
    issues.sort_by_key(|i| i.line.unwrap_or(0));
    let config = Config {
        id,
        lake,
        source,
        schema,
        silver,
        expectations,
        batch,
        trigger_interval,
        gold,
        maintenance,
        lock,
        storage,
        lines: w.lines,
    };
    (config, issues)
}

/// The pipeline id (empty, with an issue, when missing or unusable).
fn parse_id(w: &mut Walker<'_>, root: &DeTable<'_>) -> String {
    let Some(v) = get(root, "id") else {
        w.issue(
            "id",
            None,
            "missing: every pipeline needs an id, e.g. id = \"fraud\"",
        );
        return String::new();
    };
    let id = w.string("id", v).unwrap_or_default();
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !ok {
        w.issue(
            "id",
            Some(v.span()),
            "use letters, digits, '-', '_' or '.' (it names app transactions and lock files)",
        );
    }
    id
}

fn parse_maintenance(w: &mut Walker<'_>, value: Option<&Value<'_>>) -> Maintenance {
    let mut maintenance = Maintenance::default();
    let Some(table) = value.and_then(|v| w.table("maintenance", v)) else {
        return maintenance;
    };
    w.unknown_keys(
        "maintenance",
        table,
        &[
            "auto_compact_every",
            "target_file_bytes",
            "checkpoint_interval",
            "progress_checkpoint_every",
        ],
    );
    if let Some(v) = get(table, "auto_compact_every") {
        // 0 turns auto compaction off.
        let zero = v.get_ref().as_integer().is_some_and(|i| i.as_str() == "0");
        maintenance.auto_compact_every = if zero {
            Some(0)
        } else {
            w.positive_integer("maintenance.auto_compact_every", v)
        };
    }
    if let Some(v) = get(table, "target_file_bytes") {
        maintenance.target_file_bytes = w.positive_integer("maintenance.target_file_bytes", v);
    }
    if let Some(v) = get(table, "checkpoint_interval") {
        maintenance.checkpoint_interval = w.positive_integer("maintenance.checkpoint_interval", v);
    }
    if let Some(v) = get(table, "progress_checkpoint_every") {
        maintenance.progress_checkpoint_every =
            w.positive_integer("maintenance.progress_checkpoint_every", v);
    }
    maintenance
}

fn parse_source(
    w: &mut Walker<'_>,
    value: Option<&Value<'_>>,
    base: &Path,
) -> (SourceConfig, BatchLimits) {
    let mut source = SourceConfig {
        landing: base.join("landing"),
        remote_landing: None,
        list_after_last_seen: false,
        clean_source: CleanSource::Off,
        clean_source_retention: Duration::from_secs(7 * 24 * 3600),
        patterns: DEFAULT_PATTERNS.iter().map(|s| s.to_string()).collect(),
        stability: Duration::from_millis(1000),
        include_existing_files: true,
        allow_overwrites: false,
        max_line_bytes: 16 << 20,
        max_file_bytes: 2 << 30,
    };
    let mut limits = BatchLimits {
        max_files: 1000,
        // Memory follows it: about 4-5x the batch's input bytes, two batches in flight (the
        // next one is prepared while the last one's gold runs).
        max_bytes: 64 * 1024 * 1024,
    };
    let Some(value) = value else {
        w.issue(
            "source.landing",
            None,
            "missing: add [source] landing = \"./landing\"",
        );
        return (source, limits);
    };
    let Some(table) = w.table("source", value) else {
        return (source, limits);
    };
    w.unknown_keys(
        "source",
        table,
        &[
            "landing",
            "patterns",
            "stability_ms",
            "include_existing_files",
            "allow_overwrites",
            "max_files_per_batch",
            "max_bytes_per_batch",
            "max_line_bytes",
            "max_file_bytes",
            "list_after_last_seen",
            "clean_source",
            "clean_source_retention",
        ],
    );
    super::parse_ops::parse_landing(w, table, value, base, &mut source);
    super::parse_ops::parse_upkeep(w, table, &mut source);
    if let Some(v) = get(table, "patterns") {
        match v.get_ref().as_array() {
            Some(items) if !items.is_empty() => {
                let patterns: Vec<String> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| w.string(&format!("source.patterns[{i}]"), item))
                    .collect();
                source.patterns = patterns;
            }
            _ => w.issue(
                "source.patterns",
                Some(v.span()),
                "expected a non-empty array of glob patterns, e.g. [\"*.json\"]",
            ),
        }
    }
    if let Some(ms) =
        get(table, "stability_ms").and_then(|v| w.positive_integer("source.stability_ms", v))
    {
        source.stability = Duration::from_millis(ms);
    }
    if let Some(b) = get(table, "include_existing_files")
        .and_then(|v| w.boolean("source.include_existing_files", v))
    {
        source.include_existing_files = b;
    }
    if let Some(b) =
        get(table, "allow_overwrites").and_then(|v| w.boolean("source.allow_overwrites", v))
    {
        source.allow_overwrites = b;
    }
    parse_source_limits(w, table, &mut source, &mut limits);
    (source, limits)
}

/// `[source]`'s sizes: what one batch takes, and what one line or file may be.
fn parse_source_limits(
    w: &mut Walker<'_>,
    table: &DeTable<'_>,
    source: &mut SourceConfig,
    limits: &mut BatchLimits,
) {
    let mut size =
        |key: &str| get(table, key).and_then(|v| w.positive_integer(&format!("source.{key}"), v));
    if let Some(n) = size("max_files_per_batch") {
        limits.max_files = n as usize;
    }
    if let Some(n) = size("max_bytes_per_batch") {
        limits.max_bytes = n;
    }
    if let Some(n) = size("max_line_bytes") {
        source.max_line_bytes = n as usize;
    }
    if let Some(n) = size("max_file_bytes") {
        source.max_file_bytes = n;
    }
}

fn parse_schema(w: &mut Walker<'_>, value: Option<&Value<'_>>) -> SchemaConfig {
    let mut schema = SchemaConfig::default();
    let Some(table) = value.and_then(|v| w.table("schema", v)) else {
        return schema;
    };
    w.unknown_keys(
        "schema",
        table,
        &[
            "fields",
            "event_time",
            "event_time_from",
            "event_time_format",
            "key",
            "evolution",
            "max_future_skew",
            "max_new_columns",
        ],
    );
    let declared = get(table, "fields").map(|v| w.typed_fields("schema.fields", v));
    if let Some(fields) = &declared {
        schema.fields = fields.iter().map(|(n, t, _)| (n.clone(), *t)).collect();
    }
    let event_time = get(table, "event_time");
    if let Some(name) = event_time.and_then(|v| w.string("schema.event_time", v)) {
        schema.event_time = name;
    }
    let from = get(table, "event_time_from");
    schema.event_time_from = from.and_then(|v| w.string("schema.event_time_from", v));
    check_event_time(w, &schema, event_time, from);
    if let Some(format) =
        get(table, "event_time_format").and_then(|v| w.string("schema.event_time_format", v))
    {
        schema.event_time_format = Some(format);
    }
    match get(table, "key") {
        Some(v) => {
            schema.key = w.string("schema.key", v);
            if let Some(key) = &schema.key
                && !schema.fields.iter().any(|(n, _)| n == key)
            {
                w.issue(
                    "schema.key",
                    Some(v.span()),
                    format!("{key:?} is not one of schema.fields"),
                );
            }
        }
        // Declared fields without a key: no dedup (the canonical key may not exist).
        None if declared.is_some() => schema.key = None,
        None => {}
    }
    if let Some(d) =
        get(table, "max_future_skew").and_then(|v| w.duration("schema.max_future_skew", v))
    {
        schema.max_future_skew = d;
    }
    if let Some(v) = get(table, "max_new_columns") {
        // 0 is meaningful: no evolved column at all.
        if let Some(n) = w.non_negative_integer("schema.max_new_columns", v) {
            schema.max_new_columns = n as usize;
        }
    }
    if let Some(v) = get(table, "evolution") {
        schema.evolution = parse_evolution(w, v).unwrap_or(schema.evolution);
    }
    schema
}

/// The event-time column is a declared field, or computed from one (never both).
fn check_event_time(
    w: &mut Walker<'_>,
    schema: &SchemaConfig,
    event_time: Option<&Value<'_>>,
    from: Option<&Value<'_>>,
) {
    let is_field = |name: &str| schema.fields.iter().any(|(n, _)| n == name);
    match &schema.event_time_from {
        None if !is_field(&schema.event_time) => {
            w.issue(
                "schema.event_time",
                event_time.map(|v| v.span()),
                format!(
                    "{:?} is not one of schema.fields (or compute it with event_time_from)",
                    schema.event_time
                ),
            );
        }
        Some(source) if !is_field(source) => {
            w.issue(
                "schema.event_time_from",
                from.map(|v| v.span()),
                format!("{source:?} is not one of schema.fields"),
            );
        }
        Some(_) if is_field(&schema.event_time) => {
            w.issue(
                "schema.event_time",
                event_time.map(|v| v.span()),
                format!(
                    "{:?} is computed (event_time_from): it must not also be a declared field",
                    schema.event_time
                ),
            );
        }
        _ => {}
    }
}

fn parse_evolution(w: &mut Walker<'_>, v: &Value<'_>) -> Option<Evolution> {
    let text = w.string("schema.evolution", v)?;
    Some(match text.as_str() {
        "add_new_columns" | "addNewColumns" => Evolution::AddNewColumns,
        "rescue" => Evolution::Rescue,
        "fail_on_new_columns" | "failOnNewColumns" => Evolution::FailOnNewColumns,
        "none" => Evolution::None,
        _ => {
            w.issue(
                "schema.evolution",
                Some(v.span()),
                format!(
                    "{text:?} is not a mode (add_new_columns, rescue, fail_on_new_columns, none)"
                ),
            );
            return None;
        }
    })
}

fn parse_silver(
    w: &mut Walker<'_>,
    value: Option<&Value<'_>>,
    schema: &SchemaConfig,
) -> SilverConfig {
    let mut silver = SilverConfig {
        casts: Vec::new(),
        dedup_window: Duration::from_secs(24 * 3600),
        on_type_error: Action::Quarantine,
        on_future_event_time: Action::Quarantine,
    };
    let Some(table) = value.and_then(|v| w.table("silver", v)) else {
        return silver;
    };
    w.unknown_keys(
        "silver",
        table,
        &[
            "casts",
            "dedup_window",
            "on_type_error",
            "on_future_event_time",
        ],
    );
    if let Some(v) = get(table, "casts") {
        for (name, ty, span) in w.typed_fields("silver.casts", v) {
            if !schema.fields.iter().any(|(n, _)| *n == name) {
                w.issue(
                    &format!("silver.casts.{name}"),
                    Some(span),
                    "not one of schema.fields",
                );
            } else {
                silver.casts.push((name, ty));
            }
        }
    }
    if let Some(d) = get(table, "dedup_window").and_then(|v| w.duration("silver.dedup_window", v)) {
        silver.dedup_window = d;
    }
    if let Some(a) = get(table, "on_type_error").and_then(|v| w.action("silver.on_type_error", v)) {
        silver.on_type_error = a;
    }
    if let Some(a) =
        get(table, "on_future_event_time").and_then(|v| w.action("silver.on_future_event_time", v))
    {
        silver.on_future_event_time = a;
    }
    silver
}

fn parse_expectations(
    w: &mut Walker<'_>,
    value: Option<&Value<'_>>,
    schema: &SchemaConfig,
) -> Vec<Expectation> {
    let Some(value) = value else {
        return if schema.fields == SchemaConfig::default().fields {
            canonical_expectations()
        } else {
            Vec::new()
        };
    };
    let Some(items) = value.get_ref().as_array() else {
        w.issue(
            "expectations",
            Some(value.span()),
            "expected [[expectations]] tables with name, expr and action",
        );
        return Vec::new();
    };
    let mut out: Vec<Expectation> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("expectations[{i}]");
        let Some(table) = w.table(&path, item) else {
            continue;
        };
        w.unknown_keys(&path, table, &["name", "expr", "action"]);
        let name = get(table, "name").and_then(|v| w.string(&format!("{path}.name"), v));
        let expr = get(table, "expr").and_then(|v| w.string(&format!("{path}.expr"), v));
        let action = match get(table, "action") {
            Some(v) => w.action(&format!("{path}.action"), v),
            None => Some(Action::Warn),
        };
        if name.is_none() {
            w.issue(
                &format!("{path}.name"),
                Some(item.span()),
                "missing: every expectation needs a name",
            );
        }
        if get(table, "expr").is_none() {
            w.issue(
                &format!("{path}.expr"),
                Some(item.span()),
                "missing: a SQL predicate such as \"amount >= 0\"",
            );
        }
        // A wrong action is reported above; the expression is still compiled by the plan.
        if let (Some(name), Some(expr)) = (name, expr) {
            let action = action.unwrap_or(Action::Warn);
            if out.iter().any(|e| e.name == name) {
                w.issue(
                    &format!("{path}.name"),
                    Some(item.span()),
                    format!("{name:?} is used twice"),
                );
            }
            out.push(Expectation { name, expr, action });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use isolake_data::record::FieldType;

    #[test]
    fn storage_options_are_kept_but_never_shown_and_the_lease_ttl_is_checked() {
        let text = "id = \"fraud\"\nlake = \"s3://b/l\"\n[lock]\nlease_ttl = \"3s\"\n\
                    [storage]\naws_secret_access_key = \"hunter2-secret\"\n\
                    AWS_ALLOW_HTTP = true\n[source]\nlanding = \"./landing\"\n";
        let config = Config::from_toml(text, Path::new("/p")).expect("valid");
        assert_eq!(config.lock.lease_ttl, Duration::from_secs(3));
        let options: Vec<(&str, &str)> = (config.storage.0.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            options,
            [
                ("aws_allow_http", "true"),
                ("aws_secret_access_key", "hunter2-secret")
            ]
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("aws_secret_access_key"), "{shown}");

        let short = text.replace("\"3s\"", "\"100ms\"");
        let issues = Config::from_toml(&short, Path::new("/p")).expect_err("too short a TTL");
        assert_eq!(issues[0].key, "lock.lease_ttl");
    }

    #[test]
    fn minimal_file_gets_canonical_defaults() {
        let config = Config::from_toml(
            "id = \"fraud\"\nlake = \"./lake\"\n[source]\nlanding = \"./landing\"\n",
            Path::new("/p"),
        )
        .expect("valid");
        assert_eq!(config.id, "fraud");
        assert_eq!(config.lake, "/p/./lake");
        assert_eq!(config.schema, SchemaConfig::default());
        assert_eq!(config.expectations, canonical_expectations());
        assert_eq!(config.source.patterns.len(), 6);
    }

    #[test]
    fn auto_compaction_is_on_by_default_and_zero_turns_it_off() {
        let base = "id = \"fraud\"\nlake = \"./lake\"\n[source]\nlanding = \"./l\"\n";
        let maintenance =
            |extra: &str| Config::from_toml(&format!("{base}{extra}"), Path::new("/p"));
        let default = maintenance("").expect("valid").maintenance;
        assert_eq!(default.auto_compact_every, None);
        let off = maintenance("[maintenance]\nauto_compact_every = 0\n").expect("valid");
        assert_eq!(off.maintenance.auto_compact_every, Some(0));
        let set = maintenance("[maintenance]\nauto_compact_every = 5\ntarget_file_bytes = 1_000\n")
            .expect("valid")
            .maintenance;
        assert_eq!(
            (set.auto_compact_every, set.target_file_bytes),
            (Some(5), Some(1000))
        );
        let issues = maintenance("[maintenance]\nauto_compact_every = -1\n").expect_err("invalid");
        assert_eq!(
            issues[0].key, "maintenance.auto_compact_every",
            "{issues:?}"
        );
    }

    #[test]
    fn every_issue_is_reported_with_key_and_line() {
        let text = "id = \"fraud\"\nlake = 3\n[source]\nlanding = \"./l\"\nstability_ms = -5\ncolour = 1\n\
                    [[expectations]]\nname = \"x\"\nexpr = \"amount >=\"\naction = \"explode\"\n";
        // The expression is checked by the plan: the one function validate and run use.
        let issues = crate::plan::Plan::from_toml(text, Path::new("/p")).expect_err("invalid");
        let keys: Vec<(&str, Option<usize>)> =
            issues.iter().map(|i| (i.key.as_str(), i.line)).collect();
        assert!(keys.contains(&("lake", Some(2))), "{issues:?}");
        assert!(
            keys.contains(&("source.stability_ms", Some(5))),
            "{issues:?}"
        );
        assert!(keys.contains(&("source.colour", Some(6))), "{issues:?}");
        assert!(
            keys.contains(&("expectations[0].expr", Some(9))),
            "{issues:?}"
        );
        assert!(
            keys.contains(&("expectations[0].action", Some(10))),
            "{issues:?}"
        );
    }

    #[test]
    fn custom_schema() {
        let text = r#"
id = "sales"
[source]
landing = "in"
[schema]
fields = { invoice_id = "string", user_id = "string", quantity = "string", purchase_time = "timestamp" }
event_time = "purchase_time"
event_time_format = "%Y-%m-%d %H:%M:%S%.3f"
key = "invoice_id"
[silver]
casts = { quantity = "integer" }
dedup_window = "1h"
"#;
        let config = Config::from_toml(text, Path::new("/p")).expect("valid");
        assert_eq!(config.schema.fields[0].0, "invoice_id");
        assert_eq!(
            config.schema.fields[3],
            ("purchase_time".to_string(), FieldType::Timestamp)
        );
        assert_eq!(config.schema.key.as_deref(), Some("invoice_id"));
        assert_eq!(config.silver_type("quantity"), Some(FieldType::Integer));
        assert!(config.expectations.is_empty());
    }
}
