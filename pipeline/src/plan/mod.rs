//! The runnable plan: a [`Config`] (plain data) compiled once — silver's schema, the
//! expectations, every detector's predicate or query, the alert table's key columns, the
//! model's registry. Every command that runs or checks a pipeline goes through
//! [`Plan::load`], so `validate` accepts exactly what `run` accepts, and every problem of a
//! file (parse or compile) is reported at once, each with its key and line.
//!
//! ```text
//! silver  silver's columns and schema, expectations compiled against it
//! gold    detectors compiled, alert key columns, the model's registry
//! ```

pub mod gold;
pub mod silver;

use std::path::Path;

use isolake_data::record::FieldType;
use polars::prelude::Schema;

use crate::config::{Config, ConfigError, ConfigIssue};
use crate::lake_root::LakeRoot;
use gold::GoldPlan;
use silver::CompiledExpectation;

/// A pipeline ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: Config,
    /// The lake's root (a local directory or an object-store prefix).
    pub lake: LakeRoot,
    /// Silver's columns (after casts) and table schema.
    pub silver_columns: Vec<(String, FieldType)>,
    pub silver_schema: Schema,
    pub expectations: Vec<CompiledExpectation>,
    /// `None` when neither a model nor a detector is declared.
    pub gold: Option<GoldPlan>,
}

impl Plan {
    /// Reads, parses and compiles a config file; every problem is in the error.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (config, issues) = Config::read(path)?;
        finish(config, issues).map_err(|issues| ConfigError::Invalid {
            path: path.to_path_buf(),
            issues,
        })
    }

    /// [`load`](Self::load) from text, with relative paths resolved against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, Vec<ConfigIssue>> {
        let (config, issues) = Config::parse_all(text, base);
        finish(config, issues)
    }

    /// Compiles a config that parsed.
    pub fn from_config(config: Config) -> Result<Self, Vec<ConfigIssue>> {
        finish(config, Vec::new())
    }

    /// A table's location under the lake root.
    pub fn table_location(&self, table: &str) -> String {
        self.config.table_location(table)
    }
}

/// Compiles even a config that had parse problems (defaults stand in for wrong values), so
/// that every problem of the file is reported at once.
fn finish(config: Config, mut issues: Vec<ConfigIssue>) -> Result<Plan, Vec<ConfigIssue>> {
    let plan = compile(config, &mut issues);
    match plan {
        Some(plan) if issues.is_empty() => Ok(plan),
        _ => {
            issues.sort_by_key(|i| i.line.unwrap_or(0));
            Err(issues)
        }
    }
}

/// An issue at `key`, on the line the config recorded for it.
/// Keys are compared for equality (dedup, partitions): a double cannot be one (NaN is not
/// equal to itself, 0.1 + 0.2 is not 0.3). Every other declared type can.
fn key_type_issues(
    config: &Config,
    detectors: &[gold::DetectorPlan],
    columns: &[(String, FieldType)],
) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = Vec::new();
    if let Some(key) = &config.schema.key {
        keys.push(("schema.key".into(), key.clone()));
    }
    for (i, d) in detectors.iter().enumerate() {
        match &d.rule {
            gold::Rule::MatchRecognize { query, .. } => keys.extend(
                query
                    .partition
                    .iter()
                    .map(|(column, _)| (format!("detectors[{i}].sql"), column.clone())),
            ),
            rule => keys.extend(
                rule.key_column()
                    .map(|k| (format!("detectors[{i}].key"), k.to_string())),
            ),
        }
    }
    keys.into_iter()
        .filter_map(|(at, column)| {
            let ty = columns.iter().find(|(n, _)| *n == column)?.1;
            (ty == FieldType::Double).then(|| {
                let message = format!(
                    "{column:?} is a double, which cannot be a key (equality of doubles is \
                     not reliable): use an integer or string column"
                );
                (at, message)
            })
        })
        .collect()
}

fn issue(config: &Config, key: &str, message: String) -> ConfigIssue {
    ConfigIssue {
        key: key.to_string(),
        line: config.lines.get(key).copied(),
        message,
    }
}

/// Compiles `config`, adding every problem to `issues`; `None` when a part could not be built.
fn compile(config: Config, issues: &mut Vec<ConfigIssue>) -> Option<Plan> {
    config.apply_storage();
    let lake = match LakeRoot::parse(&config.lake) {
        Ok(root) => Some(root),
        Err(e) => {
            issues.push(issue(&config, "lake", e.to_string()));
            None
        }
    };
    let silver_columns = silver::columns(&config);
    let silver_schema = silver::schema(&silver_columns);
    let mut expectations = Vec::new();
    for (i, e) in config.expectations.iter().enumerate() {
        match silver::expectation(e, &silver_schema) {
            Ok(compiled) => expectations.push(compiled),
            Err(message) => {
                issues.push(issue(&config, &format!("expectations[{i}].expr"), message))
            }
        }
    }
    let mut detectors = Vec::new();
    for (i, d) in config.gold.detectors.iter().enumerate() {
        let event_time = &config.schema.event_time;
        match gold::detector(i, d, &silver_schema, &silver_columns, event_time) {
            Ok(plan) => detectors.push(plan),
            Err((key, message)) => issues.push(issue(&config, &key, message)),
        }
    }
    for (key, message) in key_type_issues(&config, &detectors, &silver_columns) {
        issues.push(issue(&config, &key, message));
    }
    let lake = lake?;
    let default_registry = lake.default_registry();
    if let Some(model) = &config.gold.model
        && model.registry.is_none()
        && default_registry.is_none()
        && std::env::var_os("MLFLOW_TRACKING_URI").is_none()
    {
        let message = "the lake is on object storage, where the local registry cannot live: \
                       set gold.model.registry to a local directory or an MLflow server \
                       (or MLFLOW_TRACKING_URI)";
        issues.push(issue(&config, "gold.model", message.into()));
        return None;
    }
    let default_registry = default_registry.unwrap_or_default();
    let gold = config
        .gold
        .enabled()
        .then(|| gold::plan(&config.gold, detectors, &default_registry, &silver_columns));
    Some(Plan {
        config,
        lake,
        silver_columns,
        silver_schema,
        expectations,
        gold,
    })
}
