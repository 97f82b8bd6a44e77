//! The pipeline's declaration (`isolake.toml`) as plain data: what to load, where to, how to
//! type and check it. Nothing here is compiled: expressions and queries stay text, and
//! [`crate::plan`] compiles them (so `validate` and `run` accept exactly the same files).
//!
//! ```text
//! mod         the data types and their defaults
//! walker      TOML values with their positions → typed values or issues
//! parse       the document → Config (every problem with key and line, not the first only)
//! parse_gold  [model], [[detectors]], [gold], [dimensions.*]
//! ```
//!
//! Defaults make the canonical transaction record work from a three-key file.

mod parse;
mod parse_gold;
mod parse_ops;
mod walker;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use isolake_data::record::{CANONICAL_FIELDS, EVENT_TIME, FieldType, KEY, NUMERIC_FEATURES};

/// A whole pipeline declaration, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Pipeline id: the app id of every Delta app transaction this pipeline writes.
    pub id: String,
    /// Table root: `<lake>/bronze`, `<lake>/silver`, `<lake>/quarantine`, `<lake>/event_log`.
    pub lake: String,
    pub source: SourceConfig,
    pub schema: SchemaConfig,
    pub silver: SilverConfig,
    pub expectations: Vec<Expectation>,
    pub batch: BatchLimits,
    /// Continuous mode: how often the landing directory is listed in full, as a safety net
    /// for watcher events the OS dropped.
    pub trigger_interval: Duration,
    /// Gold: the model, the rule detectors, dimension tables.
    pub gold: GoldConfig,
    pub maintenance: Maintenance,
    /// The pipeline lock (`[lock]`).
    pub lock: LockConfig,
    /// Object-store options (`[storage]`), over the `AWS_*` variables.
    pub storage: StorageOptions,
    /// Where each key's value stands in the file (dotted key path → 1-based line), so that a
    /// problem found when the plan compiles a value still names its line.
    pub lines: BTreeMap<String, usize>,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path, e.g. `source.stability_ms` or `expectations[2].action`.
    pub key: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: `{}`: {}", self.key, self.message),
            None => write!(f, "`{}`: {}", self.key, self.message),
        }
    }
}

/// Why a config cannot be used: it cannot be read, or it has problems (every one of them).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} has {} problem(s):\n{}", path.display(), issues.len(), list(issues))]
    Invalid {
        path: PathBuf,
        issues: Vec<ConfigIssue>,
    },
}

fn list(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("  {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The pipeline lock (`[lock]`). Local lakes use an OS file lock; object-store lakes a lease
/// object that the holder renews, which a standby takes over once it stops being renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockConfig {
    /// How long an unrenewed lease keeps others out (default 15 s); the holder renews it
    /// every quarter of it and stops committing when it could not for three quarters.
    pub lease_ttl: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(15),
        }
    }
}

/// Storage options (`[storage]`): object_store's S3 keys (`aws_endpoint_url`,
/// `aws_access_key_id`, `aws_secret_access_key`, `aws_region`, `aws_allow_http`, …) and
/// `unsafe_single_writer`. Values never appear in `Debug`, logs or errors: only keys do.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct StorageOptions(pub BTreeMap<String, String>);

impl fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

/// Table upkeep while the pipeline runs (`[maintenance]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Maintenance {
    /// Continuous runs compact the small files of the pipeline's tables after this many
    /// batches (`None`: [`crate::auto_compact::DEFAULT_EVERY`]; `Some(0)`: never).
    pub auto_compact_every: Option<u64>,
    /// Files below this size are small: auto compaction rewrites them (`None`: 64 MiB).
    pub target_file_bytes: Option<u64>,
    /// `delta.checkpointInterval` of tables the pipeline creates (`None`: deltalake's 100).
    pub checkpoint_interval: Option<u64>,
    /// Bronze commits between checkpoints of the seen-files index (`None`:
    /// [`crate::source::seen::CHECKPOINT_EVERY`]): start-up reads at most this many commits.
    pub progress_checkpoint_every: Option<u64>,
}

/// What to do with landed files that were read (`source.clean_source`), so a landing zone
/// does not grow forever. Only a file whose exact version (size, mtime) a committed batch
/// read is touched; others (unread, refused, changed since) stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanSource {
    #[default]
    Off,
    /// Move to `<landing>/_archived/<path>` (an ignored name: never read again).
    Move,
    Delete,
}

/// Where files land and how they are picked.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// The landing directory (for an object-store landing zone, its URL as a path; see
    /// `remote_landing`).
    pub landing: PathBuf,
    /// The landing zone's URL when it is on an object store (`s3://bucket/landing/`):
    /// listed by prefix, objects complete once visible (no stability wait).
    pub remote_landing: Option<String>,
    /// Object-store landing zones: list only keys after the last one seen (S3's
    /// `start-after`), so a poll does not list history again. Safe only when producers
    /// write keys in increasing order (e.g. time-prefixed names); off by default.
    pub list_after_last_seen: bool,
    /// What happens to a landed file once the bronze commit that read it is
    /// `clean_source_retention` old (`source.clean_source`).
    pub clean_source: CleanSource,
    pub clean_source_retention: Duration,
    /// Glob patterns on the file name (`*` and `?`); `.gz` variants are decompressed.
    pub patterns: Vec<String>,
    /// A file counts as complete when its size and mtime did not change for this long
    /// (or when it was renamed into place while the watcher looked).
    pub stability: Duration,
    pub include_existing_files: bool,
    pub allow_overwrites: bool,
    /// A longer line is a corrupt record (`line_too_long`) keeping its first KiB.
    pub max_line_bytes: usize,
    /// A larger file (decompressed) is refused, with an event, and never read again.
    pub max_file_bytes: u64,
}

/// What happens to fields a landed record has but the schema does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evolution {
    /// The bronze table grows a column (in the same commit as the rows).
    AddNewColumns,
    /// Unknown fields go to `_rescued_data`.
    Rescue,
    /// The batch fails, naming the column and file; nothing is committed.
    FailOnNewColumns,
    /// Unknown fields are ignored.
    None,
}

/// The record's declared shape.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaConfig {
    /// Declared fields in order, with their types (hints: they win over inference).
    pub fields: Vec<(String, FieldType)>,
    pub event_time: String,
    /// Compute the event-time column from this declared field (which keeps its own type),
    /// like a Flink computed rowtime column `ts AS TO_TIMESTAMP_LTZ(timestamp, 3)`.
    pub event_time_from: Option<String>,
    /// `None`: RFC 3339. `Some("epoch_ms")`: integer milliseconds. Otherwise a chrono format;
    /// a time without zone is UTC.
    pub event_time_format: Option<String>,
    /// Dedup key; `None` turns dedup off.
    pub key: Option<String>,
    pub evolution: Evolution,
    /// A row whose event time is later than its ingestion time plus this fails the implicit
    /// `event_time_in_future` expectation (a clock or unit error, or a hostile row), so one
    /// outlier cannot move the dedup window or the watermark past everything else.
    pub max_future_skew: Duration,
    /// How many columns schema evolution may add to bronze in all; further unknown keys go
    /// to `_rescued_data`.
    pub max_new_columns: usize,
}

/// Silver: extra casts and dedup window.
#[derive(Debug, Clone, PartialEq)]
pub struct SilverConfig {
    /// Columns cast to another type in silver (failures are expectation failures).
    pub casts: Vec<(String, FieldType)>,
    /// A key seen in silver within this event-time window is a duplicate.
    pub dedup_window: Duration,
    /// What happens to a row whose value could not be typed (`quarantine` by default).
    pub on_type_error: Action,
    /// What happens to a row whose event time is too far in the future (`quarantine`).
    pub on_future_event_time: Action,
}

/// What an expectation does to a row that fails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Kept, counted.
    Warn,
    /// Removed, counted.
    Drop,
    /// Removed to the quarantine table with the reasons.
    Quarantine,
    /// The batch is not committed and the run stops.
    Fail,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Warn => "warn",
            Action::Drop => "drop",
            Action::Quarantine => "quarantine",
            Action::Fail => "fail",
        }
    }
}

/// A named predicate rows must satisfy (SQL syntax, evaluated by polars). A row for which it
/// is false or NULL fails it.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub name: String,
    pub expr: String,
    pub action: Action,
}

/// How much one micro-batch may take: memory is bounded by these, not by the backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_files: usize,
    pub max_bytes: u64,
}

impl Config {
    /// Makes `[storage]` the options of every object store this process opens from now on.
    pub fn apply_storage(&self) {
        if !self.storage.0.is_empty() {
            let options = self.storage.0.clone().into_iter().collect();
            isolake_data::lake::s3_store::configure(options);
        }
    }

    pub fn table_location(&self, table: &str) -> String {
        format!("{}/{}", self.lake.trim_end_matches('/'), table)
    }

    /// The type of a declared field after silver's casts.
    pub fn silver_type(&self, field: &str) -> Option<FieldType> {
        self.silver
            .casts
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, ty)| *ty)
            .or_else(|| {
                self.schema
                    .fields
                    .iter()
                    .find(|(name, _)| name == field)
                    .map(|(_, ty)| *ty)
            })
    }
}

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

/// Flink's DataStream fraud rule: per key, an amount below `small` immediately followed (the
/// key's next row in event time) by one above `large`, within `window` (inclusive). Its
/// parameters need no compiling: the plan uses them as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct SmallThenLargeRule {
    pub key: String,
    pub amount: String,
    pub small: f64,
    pub large: f64,
    pub window: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DetectorKind {
    SmallThenLarge(SmallThenLargeRule),
    /// A per-row SQL predicate.
    Threshold {
        expr: String,
        key: Option<String>,
    },
    /// A Flink SQL `MATCH_RECOGNIZE` query over the silver stream, named `table` in the query.
    MatchRecognize {
        table: String,
        sql: String,
        /// Also write `gold/<name>` with the measures as typed columns.
        output_table: bool,
    },
}

impl DetectorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DetectorKind::SmallThenLarge(_) => "small_then_large",
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

/// `schema.max_future_skew`'s default: clocks drift by seconds, not minutes.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(300);

impl Default for SchemaConfig {
    fn default() -> Self {
        Self {
            fields: CANONICAL_FIELDS
                .iter()
                .map(|(n, t)| ((*n).to_string(), *t))
                .collect(),
            event_time: EVENT_TIME.to_string(),
            event_time_from: None,
            event_time_format: None,
            key: Some(KEY.to_string()),
            evolution: Evolution::AddNewColumns,
            max_future_skew: DEFAULT_MAX_FUTURE_SKEW,
            max_new_columns: 200,
        }
    }
}

/// Expectations of the canonical record when the config declares none: every row the model
/// scores must have an id, an event time and all numeric features, and amounts are not negative.
pub fn canonical_expectations() -> Vec<Expectation> {
    let features = NUMERIC_FEATURES
        .iter()
        .map(|f| format!("{f} IS NOT NULL"))
        .collect::<Vec<_>>()
        .join(" AND ");
    vec![
        Expectation {
            name: "has_transaction_id".into(),
            expr: "transaction_id IS NOT NULL".into(),
            action: Action::Quarantine,
        },
        Expectation {
            name: "has_event_time".into(),
            expr: "event_time IS NOT NULL".into(),
            action: Action::Quarantine,
        },
        Expectation {
            name: "has_features".into(),
            expr: features,
            action: Action::Quarantine,
        },
        Expectation {
            name: "non_negative_amount".into(),
            expr: "amount >= 0".into(),
            action: Action::Quarantine,
        },
    ]
}

/// Paths are made absolute against the config's directory; URLs are kept.
pub fn resolve_location(location: &str, base: &Path) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let path = Path::new(location);
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    joined.to_string_lossy().into_owned()
}

/// Parses `500ms`, `30s`, `15m`, `24h`, `7d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1 week"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
