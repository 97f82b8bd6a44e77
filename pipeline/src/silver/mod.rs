//! Silver: typed, checked and deduplicated rows; what fails goes to quarantine with reasons.
//!
//! ```text
//! typing        event time → UTC timestamp, silver casts; a value that cannot be typed is a
//!               failure of the implicit `valid_types` expectation (never a crash)
//! expectations  named SQL predicates with warn / drop / quarantine / fail
//! dedup         on the key, within the batch and against the last dedup_window of silver
//! ```

pub mod dedup;
pub mod expectations;
mod typing;

use polars::prelude::*;
use serde::Serialize;

use crate::bronze::{
    CORRUPT, LINEAGE, RESCUED, SOURCE_FILE, SOURCE_LINE, utc_micros, with_metadata,
};
use crate::config::{Action, Config};
use crate::error::{Error, Result};
use dedup::DedupIndex;
use expectations::Compiled;

pub use typing::parse_event_time;

/// Reason given to a quarantined corrupt line.
pub const CORRUPT_REASON: &str = "corrupt_record";
/// Implicit expectation for values that could not be typed.
pub const TYPE_REASON: &str = "valid_types";
/// Reason given to a row whose key silver already holds.
pub const DUPLICATE_REASON: &str = "duplicate_key";
pub const FAILED_EXPECTATIONS: &str = "_failed_expectations";

/// Passed/failed counts of one expectation in one batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectationCount {
    pub name: String,
    pub action: &'static str,
    pub passed: usize,
    pub failed: usize,
}

/// What silver did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SilverStats {
    pub rows_in: usize,
    pub rows_out: usize,
    pub dropped: usize,
    pub quarantined: usize,
    pub duplicates: usize,
    pub rescued: usize,
    pub corrupt: usize,
    pub expectations: Vec<ExpectationCount>,
}

/// Silver's output for one batch.
pub struct SilverBatch {
    pub silver: DataFrame,
    pub quarantine: DataFrame,
    pub stats: SilverStats,
}

/// Silver's table schema.
pub fn schema(config: &Config) -> Schema {
    let mut schema: Schema = config
        .schema
        .fields
        .iter()
        .map(|(name, _)| {
            let ty = config
                .silver_type(name)
                .unwrap_or(isolake_data::record::FieldType::String);
            Field::new(name.as_str().into(), ty.polars_dtype())
        })
        .collect();
    if config.schema.event_time_from.is_some() {
        schema.with_column(config.schema.event_time.as_str().into(), utc_micros());
    }
    with_metadata(schema, &LINEAGE)
}

/// Quarantine's table schema: bronze's plus the reasons.
pub fn quarantine_schema(bronze: &Schema) -> Schema {
    let mut schema = bronze.clone();
    schema.with_column(
        FAILED_EXPECTATIONS.into(),
        DataType::List(Box::new(DataType::String)),
    );
    schema
}

/// Turns a bronze batch into silver and quarantine rows. `dedup` is updated only when the
/// batch passes (a `fail` expectation leaves every piece of state as it was).
pub fn process(
    bronze: &DataFrame,
    config: &Config,
    compiled: &[Compiled],
    dedup: &mut DedupIndex,
    batch: u64,
) -> Result<SilverBatch> {
    let rows = bronze.height();
    let typed = typing::type_frame(bronze, config)?;
    let corrupt: Vec<bool> = bronze
        .column(CORRUPT)?
        .is_not_null()
        .iter()
        .map(|v| v == Some(true))
        .collect();
    let rescued_count = bronze.column(RESCUED)?.is_not_null().sum().unwrap_or(0) as usize;

    let corrupt_rows = corrupt.iter().filter(|c| **c).count();

    let mut verdicts = Verdicts::new(rows);
    for row in (0..rows).filter(|r| corrupt[*r]) {
        verdicts.note(row, CORRUPT_REASON, Action::Quarantine);
    }
    let mut counts = Vec::new();
    let mut type_failed = 0;
    for (row, errors) in typed.type_errors.iter().enumerate() {
        if !corrupt[row] && !errors.is_empty() {
            type_failed += 1;
            let reason = format!("{TYPE_REASON}({})", errors.join(","));
            verdicts.note(row, &reason, config.silver.on_type_error);
        }
    }
    counts.push(ExpectationCount {
        name: TYPE_REASON.into(),
        action: config.silver.on_type_error.as_str(),
        passed: rows - type_failed - corrupt_rows,
        failed: type_failed,
    });
    let results = expectations::evaluate(&typed.frame, compiled)?;
    for (expectation, passes) in compiled.iter().zip(&results) {
        let mut failed = 0;
        let mut first_failure = None;
        for row in (0..rows).filter(|r| !corrupt[*r] && !passes[*r]) {
            failed += 1;
            first_failure.get_or_insert(row);
            verdicts.note(row, &expectation.name, expectation.action);
        }
        if expectation.action == Action::Fail
            && let Some(row) = first_failure
        {
            return Err(Error::ExpectationFailed {
                name: expectation.name.clone(),
                batch,
                failed,
                row: describe_row(bronze, row),
            });
        }
        counts.push(ExpectationCount {
            name: expectation.name.clone(),
            action: expectation.action.as_str(),
            passed: rows - failed - corrupt_rows,
            failed,
        });
    }

    // Dedup among the rows that stay in silver: first occurrence (in file/line order) wins.
    let mut duplicates = 0;
    let mut accepted: Vec<(&str, i64)> = Vec::new();
    let key_column = match &config.schema.key {
        Some(key) => Some(typed.frame.column(key)?.cast(&DataType::String)?),
        None => None,
    };
    if let Some(keys) = &key_column {
        let keys = keys.str()?;
        let times = typed
            .frame
            .column(&config.schema.event_time)?
            .cast(&DataType::Int64)?;
        let times = times.i64()?;
        let mut in_batch: PlHashSet<&str> =
            PlHashSet::with_capacity_and_hasher(rows, Default::default());
        for row in 0..rows {
            if matches!(
                verdicts.action[row],
                Some(Action::Drop | Action::Quarantine)
            ) {
                continue;
            }
            let Some(k) = keys.get(row) else { continue };
            if dedup.contains(k) || !in_batch.insert(k) {
                duplicates += 1;
                verdicts.note(row, DUPLICATE_REASON, Action::Quarantine);
            } else {
                accepted.push((k, times.get(row).unwrap_or(i64::MIN)));
            }
        }
    }

    let Verdicts { reasons, action } = verdicts;
    let keep: BooleanChunked = action
        .iter()
        .map(|a| matches!(a, None | Some(Action::Warn)))
        .collect();
    let quarantine_mask: BooleanChunked = action
        .iter()
        .map(|a| *a == Some(Action::Quarantine))
        .collect();
    let dropped = action.iter().filter(|a| **a == Some(Action::Drop)).count();

    let silver = typed.frame.filter(&keep)?;
    let mut quarantine = bronze.filter(&quarantine_mask)?;
    let reason_lists: ListChunked = reasons
        .iter()
        .zip(&action)
        .filter(|(_, a)| **a == Some(Action::Quarantine))
        .map(|(r, _)| Some(Series::new(PlSmallStr::EMPTY, r.as_slice())))
        .collect();
    let reason_lists = reason_lists
        .into_series()
        .cast(&DataType::List(Box::new(DataType::String)))?;
    let mut reason_column = Column::from(reason_lists);
    reason_column.rename(FAILED_EXPECTATIONS.into());
    quarantine.with_column(reason_column)?;

    for (k, t) in accepted {
        dedup.insert(k, t);
    }
    dedup.prune();

    let stats = SilverStats {
        rows_in: rows,
        rows_out: silver.height(),
        dropped,
        quarantined: quarantine.height(),
        duplicates,
        rescued: rescued_count,
        corrupt: corrupt_rows,
        expectations: counts,
    };
    Ok(SilverBatch {
        silver,
        quarantine,
        stats,
    })
}

/// Per row: the reasons it failed, and the strongest action among them.
struct Verdicts {
    reasons: Vec<Vec<String>>,
    action: Vec<Option<Action>>,
}

impl Verdicts {
    fn new(rows: usize) -> Self {
        Self {
            reasons: vec![Vec::new(); rows],
            action: vec![None; rows],
        }
    }

    fn note(&mut self, row: usize, reason: &str, action: Action) {
        self.reasons[row].push(reason.to_string());
        self.action[row] = Some(self.action[row].map_or(action, |old| old.max(action)));
    }
}

/// One row as `file:line {json-ish}` for error messages (long values cut).
fn describe_row(frame: &DataFrame, row: usize) -> String {
    let mut parts = Vec::new();
    let mut place = String::new();
    for column in frame.columns() {
        let value = column.get(row).map(|v| v.to_string()).unwrap_or_default();
        let value: String = value.chars().take(80).collect();
        match column.name().as_str() {
            SOURCE_FILE => place.insert_str(0, value.trim_matches('"')),
            SOURCE_LINE => place.push_str(&format!(":{value}")),
            name if name.starts_with('_') => {}
            name => parts.push(format!("{name}={value}")),
        }
    }
    format!("{place} {{{}}}", parts.join(", "))
}
