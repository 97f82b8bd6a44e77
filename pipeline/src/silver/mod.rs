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
pub mod refused;
pub mod typing;

use isolake_data::lake::LakeTable;
use polars::prelude::*;
use serde::Serialize;

use crate::bronze::{CORRUPT, INGESTED_AT, RESCUED, SOURCE_FILE, SOURCE_LINE};
use crate::config::{Action, Config};
use crate::error::Result;
use crate::plan::Plan;
use crate::plan::silver::CompiledExpectation;
use crate::source::reader::CORRUPT_REASON_KEY;
use dedup::DedupIndex;
use refused::Refused;

/// Reason given to a quarantined corrupt line.
pub const CORRUPT_REASON: &str = "corrupt_record";
/// Implicit expectation for values that could not be typed.
pub const TYPE_REASON: &str = "valid_types";
/// Implicit expectation for event times too far after the row's ingestion.
pub const FUTURE_REASON: &str = "event_time_in_future";
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

/// Quarantine's table schema: bronze's plus the reasons.
pub fn quarantine_schema(bronze: &Schema) -> Schema {
    let mut schema = bronze.clone();
    schema.with_column(
        FAILED_EXPECTATIONS.into(),
        DataType::List(Box::new(DataType::String)),
    );
    schema
}

/// Silver as a stage of the batch: the compiled expectations and the dedup index it owns.
pub struct SilverStage {
    config: Config,
    expectations: Vec<CompiledExpectation>,
    dedup: DedupIndex,
}

impl SilverStage {
    pub fn new(plan: &Plan) -> Self {
        Self {
            config: plan.config.clone(),
            expectations: plan.expectations.clone(),
            dedup: DedupIndex::new(plan.config.silver.dedup_window),
        }
    }

    /// Reloads the dedup index from the silver rows of batches before `before_batch`.
    pub fn load_dedup(&mut self, silver: &LakeTable, before_batch: u64) -> Result<()> {
        let window = self.config.silver.dedup_window;
        self.dedup = match &self.config.schema.key {
            Some(key) => DedupIndex::load(
                silver.scan()?,
                key,
                &self.config.schema.event_time,
                window,
                before_batch,
            )?,
            None => DedupIndex::new(window),
        };
        Ok(())
    }

    /// Turns a bronze batch into silver and quarantine rows. The dedup index is updated
    /// only when the batch passes (a `fail` expectation leaves every piece of state as it was).
    pub fn process(&mut self, bronze: &DataFrame, batch: u64) -> Result<SilverBatch> {
        let rows = bronze.height();
        let typed = typing::type_frame(bronze, &self.config)?;
        let corrupt: Vec<bool> = bronze
            .column(CORRUPT)?
            .is_not_null()
            .iter()
            .map(|v| v == Some(true))
            .collect();
        // A corrupt row's `_rescued_data` only says why it is corrupt.
        let rescued = bronze
            .column(RESCUED)?
            .is_not_null()
            .iter()
            .zip(&corrupt)
            .filter(|(r, c)| *r == Some(true) && !**c)
            .count();
        let mut verdicts = Verdicts::new(rows);
        let mut counts = vec![
            self.type_checks(
                &typed,
                &corrupt,
                &corrupt_reasons(bronze, &corrupt)?,
                &mut verdicts,
            ),
            self.future_checks(&typed.frame, &corrupt, &mut verdicts)?,
        ];
        counts.extend(self.expectations(bronze, &typed.frame, &corrupt, &mut verdicts, batch)?);
        let keyed = self.keys_and_times(&typed.frame)?;
        let (duplicates, accepted) = match &keyed {
            Some((keys, times)) => self.dedup_rows(keys.str()?, &mut verdicts, times.i64()?),
            None => (0, Vec::new()),
        };
        let out = split(bronze, &typed.frame, verdicts)?;
        if let Some((keys, _)) = &keyed {
            let keys = keys.str()?;
            for (row, time) in accepted {
                if let Some(k) = keys.get(row) {
                    self.dedup.insert(k, time);
                }
            }
        }
        self.dedup.prune();
        let stats = SilverStats {
            rows_in: rows,
            rows_out: out.0.height(),
            dropped: out.2,
            quarantined: out.1.height(),
            duplicates,
            rescued,
            corrupt: corrupt.iter().filter(|c| **c).count(),
            expectations: counts,
        };
        Ok(SilverBatch {
            silver: out.0,
            quarantine: out.1,
            stats,
        })
    }

    /// Corrupt lines and values that could not be typed (the implicit `valid_types`).
    fn type_checks(
        &self,
        typed: &typing::Typed,
        corrupt: &[bool],
        reasons: &[(usize, String)],
        verdicts: &mut Verdicts,
    ) -> ExpectationCount {
        let corrupt_rows = corrupt.iter().filter(|c| **c).count();
        let mut named = reasons.iter().peekable();
        for row in (0..corrupt.len()).filter(|r| corrupt[*r]) {
            match named.next_if(|(r, _)| *r == row) {
                Some((_, reason)) => verdicts.note(row, reason, Action::Quarantine),
                None => verdicts.note(row, CORRUPT_REASON, Action::Quarantine),
            }
        }
        let mut failed = 0;
        for (row, errors) in typed.type_errors.iter().enumerate() {
            if !corrupt[row] && !errors.is_empty() {
                failed += 1;
                let reason = format!("{TYPE_REASON}({})", errors.join(","));
                verdicts.note(row, &reason, self.config.silver.on_type_error);
            }
        }
        ExpectationCount {
            name: TYPE_REASON.into(),
            action: self.config.silver.on_type_error.as_str(),
            passed: corrupt.len() - failed - corrupt_rows,
            failed,
        }
    }

    /// Event times later than the row's ingestion plus `schema.max_future_skew` (the implicit
    /// `event_time_in_future`). Measured against `_ingested_at`, which bronze keeps, so a
    /// replay from bronze decides every row the same way.
    fn future_checks(
        &self,
        typed: &DataFrame,
        corrupt: &[bool],
        verdicts: &mut Verdicts,
    ) -> Result<ExpectationCount> {
        let skew = self
            .config
            .schema
            .max_future_skew
            .as_micros()
            .min(i64::MAX as u128) as i64;
        let times = typed
            .column(&self.config.schema.event_time)?
            .cast(&DataType::Int64)?;
        let ingested = typed.column(INGESTED_AT)?.cast(&DataType::Int64)?;
        let action = self.config.silver.on_future_event_time;
        let mut failed = 0;
        for (row, (t, at)) in times.i64()?.iter().zip(ingested.i64()?.iter()).enumerate() {
            if let (Some(t), Some(at)) = (t, at)
                && !corrupt[row]
                && t > at.saturating_add(skew)
            {
                failed += 1;
                verdicts.note(row, FUTURE_REASON, action);
            }
        }
        let corrupt_rows = corrupt.iter().filter(|c| **c).count();
        Ok(ExpectationCount {
            name: FUTURE_REASON.into(),
            action: action.as_str(),
            passed: corrupt.len() - failed - corrupt_rows,
            failed,
        })
    }

    /// Every declared expectation; a failed `fail` expectation refuses the batch.
    fn expectations(
        &self,
        bronze: &DataFrame,
        typed: &DataFrame,
        corrupt: &[bool],
        verdicts: &mut Verdicts,
        batch: u64,
    ) -> Result<Vec<ExpectationCount>> {
        let rows = corrupt.len();
        let corrupt_rows = corrupt.iter().filter(|c| **c).count();
        let results = expectations::evaluate(typed, &self.expectations)?;
        let mut counts = Vec::new();
        for (expectation, passes) in self.expectations.iter().zip(&results) {
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
                return Err(Refused::ExpectationFailed {
                    name: expectation.name.clone(),
                    batch,
                    failed,
                    row: describe_row(bronze, row),
                }
                .into());
            }
            counts.push(ExpectationCount {
                name: expectation.name.clone(),
                action: expectation.action.as_str(),
                passed: rows - failed - corrupt_rows,
                failed,
            });
        }
        Ok(counts)
    }

    /// The dedup key as text and the event time in µs (`None` without a key).
    fn keys_and_times(&self, typed: &DataFrame) -> Result<Option<(Column, Column)>> {
        let Some(key) = &self.config.schema.key else {
            return Ok(None);
        };
        let keys = typed.column(key)?.cast(&DataType::String)?;
        let times = typed
            .column(&self.config.schema.event_time)?
            .cast(&DataType::Int64)?;
        Ok(Some((keys, times)))
    }

    /// Dedup among the rows that stay in silver: the first occurrence (in file/line order)
    /// wins. Returns the duplicates' count and the accepted rows with their event times.
    fn dedup_rows(
        &self,
        keys: &StringChunked,
        verdicts: &mut Verdicts,
        times: &Int64Chunked,
    ) -> (usize, Vec<(usize, i64)>) {
        let mut in_batch: PlHashSet<&str> =
            PlHashSet::with_capacity_and_hasher(keys.len(), Default::default());
        let mut duplicates = 0;
        let mut accepted = Vec::new();
        for row in 0..keys.len() {
            if matches!(
                verdicts.action[row],
                Some(Action::Drop | Action::Quarantine)
            ) {
                continue;
            }
            let Some(k) = keys.get(row) else { continue };
            if self.dedup.contains(k) || !in_batch.insert(k) {
                duplicates += 1;
                verdicts.note(row, DUPLICATE_REASON, Action::Quarantine);
            } else {
                accepted.push((row, times.get(row).unwrap_or(i64::MIN)));
            }
        }
        (duplicates, accepted)
    }
}

/// The corrupt rows whose bronze row names a reason other than bad JSON (`line_too_long`,
/// `gzip_broken`: the reader's `{"_corrupt_reason": ...}` in `_rescued_data`), in row order.
fn corrupt_reasons(bronze: &DataFrame, corrupt: &[bool]) -> Result<Vec<(usize, String)>> {
    let rescued = bronze.column(RESCUED)?.str()?;
    let mut out = Vec::new();
    for row in (0..corrupt.len()).filter(|r| corrupt[*r]) {
        let reason = rescued
            .get(row)
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .and_then(|v| v.get(CORRUPT_REASON_KEY)?.as_str().map(str::to_string));
        if let Some(reason) = reason {
            out.push((row, reason));
        }
    }
    Ok(out)
}

/// Silver rows (kept or warned), quarantine rows with their reasons, and the dropped count.
fn split(
    bronze: &DataFrame,
    typed: &DataFrame,
    verdicts: Verdicts,
) -> Result<(DataFrame, DataFrame, usize)> {
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
    let silver = typed.filter(&keep)?;
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
    Ok((silver, quarantine, dropped))
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
