//! One shard of a MATCH_RECOGNIZE detector: its partitions, matched in event-time order
//! (see the module above for the semantics).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::expr::{Scope, truth};
use super::pattern::{Horizon, Outcome};
use super::query::{Query, Skip};
use super::value::{Ty, Value};
use crate::bronze::utc_micros;
use crate::error::{Inconsistency, Result};
use crate::gold::alerts::{Alert, AlertKind, Measures};
use crate::gold::detectors::{Context, Detector, Progress, RowIds, micros};

/// At most this many row errors are kept per batch for the event log.
const MAX_ERRORS: usize = 20;

/// The rows of one partition from its earliest undecided start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Partition {
    key: Vec<Value>,
    /// Row-major values, `query.slots.len()` per row.
    values: VecDeque<Value>,
    times: VecDeque<i64>,
    ids: VecDeque<Value>,
    /// Rows arrived since it was last resolved (not saved: a restored partition is resolved
    /// again on its next rows, the end of input or the expiry of its pending start).
    #[serde(skip)]
    fresh: bool,
}

impl Partition {
    /// Whether resolving could decide something: a pending start only changes with new rows,
    /// the end of the input, or its WITHIN expiring (the same test as `Program::run`'s).
    fn due(&self, progress: Progress, within: Option<i64>) -> bool {
        let expired = match (within, progress.watermark, self.times.front()) {
            (Some(w), Some(mark), Some(first)) => mark - first >= w,
            _ => false,
        };
        self.fresh || progress.ended || expired
    }
}

/// One shard of a detector's partitions (see [`MatchRecognize`]).
pub(super) struct Engine {
    name: String,
    query: Arc<Query>,
    output_table: bool,
    pub(super) partitions: PlHashMap<String, Partition>,
    errors: Vec<String>,
    error_count: usize,
    output: Vec<Vec<Value>>,
}

impl Engine {
    pub(super) fn new(name: &str, query: Arc<Query>, output_table: bool) -> Self {
        Self {
            name: name.to_string(),
            query,
            output_table,
            partitions: PlHashMap::default(),
            errors: Vec::new(),
            error_count: 0,
            output: Vec::new(),
        }
    }

    /// Decides starts in `p` until one is pending.
    fn resolve(&mut self, key: &str, progress: Progress, out: &mut Vec<Alert>) {
        let Some(mut p) = self.partitions.remove(key) else {
            return;
        };
        let q = Arc::clone(&self.query);
        let horizon = Horizon {
            ended: progress.ended,
            watermark: progress.watermark,
            within: q.within,
        };
        let width = q.slots.len().max(1);
        while !p.times.is_empty() {
            let times = p.times.make_contiguous();
            let values = p.values.make_contiguous();
            let mut errors = Vec::new();
            let outcome = q.program.run(times, horizon, &mut |classes: &[u8]| {
                let var = classes[classes.len() - 1] as usize;
                let Some(define) = &q.defines[var] else {
                    return true;
                };
                let scope = Scope {
                    values: &values[..classes.len() * width],
                    width,
                    classes,
                };
                match define.eval(&scope).and_then(truth) {
                    Ok(t) => t == Some(true),
                    Err(e) => {
                        errors.push(format!(
                            "DEFINE {}: {e} (the row counts as not matching)",
                            q.program.vars[var]
                        ));
                        false
                    }
                }
            });
            self.error_count += errors.len();
            for e in errors {
                if self.errors.len() < MAX_ERRORS && !self.errors.contains(&e) {
                    self.errors.push(e);
                }
            }
            let advance = match outcome {
                Outcome::Pending => break,
                Outcome::NoMatch => 1,
                Outcome::Match(classes) => self.emit(&p, width, &classes, out),
            };
            let advance = advance.clamp(1, p.times.len());
            p.values.drain(..advance * width);
            p.times.drain(..advance);
            p.ids.drain(..advance);
        }
        if !p.times.is_empty() {
            p.fresh = false;
            self.partitions.insert(key.to_string(), p);
        }
    }

    /// Emits one match; returns how many rows the next start is after this one's.
    fn emit(&mut self, p: &Partition, width: usize, classes: &[u8], out: &mut Vec<Alert>) -> usize {
        let q = &self.query;
        let (front, back) = p.values.as_slices();
        debug_assert!(back.is_empty(), "resolve made the values contiguous");
        let scope = Scope {
            values: &front[..(classes.len() * width).min(front.len())],
            width,
            classes,
        };
        let mut values: Vec<Value> = p.key.clone();
        let mut measures: Vec<(String, serde_json::Value)> = q
            .partition
            .iter()
            .zip(&p.key)
            .map(|((name, _), v)| (name.clone(), v.to_json()))
            .collect();
        for (name, e) in &q.measures {
            let v = e.eval(&scope).unwrap_or_else(|err| {
                self.error_count += 1;
                if self.errors.len() < MAX_ERRORS {
                    self.errors
                        .push(format!("MEASURES {name}: {err} (written as NULL)"));
                }
                Value::Null
            });
            measures.push((name.clone(), v.to_json()));
            values.push(v);
        }
        let n = classes.len();
        let ids: Vec<String> = p.ids.iter().take(n).map(Value::flink_text).collect();
        let mut counts: Vec<(usize, usize)> = Vec::new();
        for c in classes {
            match counts.last_mut() {
                Some((v, k)) if *v == *c as usize => *k += 1,
                _ => counts.push((*c as usize, 1)),
            }
        }
        let shape = counts
            .iter()
            .map(|(v, k)| {
                if *k == 1 {
                    q.program.vars[*v].clone()
                } else {
                    format!("{} ×{k}", q.program.vars[*v])
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let key = p
            .key
            .iter()
            .map(Value::flink_text)
            .collect::<Vec<_>>()
            .join(",");
        out.push(Alert {
            detector: self.name.clone(),
            kind: AlertKind::MatchRecognize,
            key_column: (!q.partition.is_empty()).then(|| {
                q.partition
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            key: (!q.partition.is_empty()).then(|| key.clone()),
            reason: format!(
                "pattern {} matched {n} row(s){}: {shape}",
                self.name,
                if key.is_empty() {
                    String::new()
                } else {
                    format!(" of {key}")
                }
            ),
            transaction_ids: ids,
            event_time: p.times.get(n - 1).copied(),
            score: None,
            measures: Measures::Match(measures),
            model_version: None,
        });
        if self.output_table {
            self.output.push(values);
        }
        let position = |v: u8, last: bool| {
            let mut at = classes
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == v)
                .map(|(i, _)| i);
            if last { at.next_back() } else { at.next() }
        };
        match q.skip {
            Skip::PastLastRow => n,
            Skip::ToNextRow => 1,
            // Skipping to the match's own first row would loop: move on by one, as TO NEXT ROW.
            Skip::ToFirst(v) => position(v, false).unwrap_or(1).max(1),
            Skip::ToLast(v) => position(v, true).unwrap_or(1).max(1),
        }
    }
}

/// The text a partition is known by (its values, joined).
pub(super) fn partition_key<'a>(values: impl Iterator<Item = &'a Value>, key: &mut String) {
    key.clear();
    for (n, value) in values.enumerate() {
        if n > 0 {
            key.push('\u{1f}');
        }
        match value {
            Value::Str(s) => key.push_str(s),
            Value::Null => key.push('\u{0}'),
            other => key.push_str(&other.flink_text()),
        }
    }
}

/// Which shard a partition lives in (stable across runs: std's SipHash with fixed keys).
pub(super) fn shard_of(key: &str, shards: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % shards as u64) as usize
}

/// A silver column's values as query values.
pub(super) fn values(rows: &DataFrame, name: &str, ty: Ty) -> Result<Vec<Value>> {
    let c = rows.column(name)?;
    Ok(match ty {
        Ty::Str => {
            // Repeated texts (user ids, small quantities) share one allocation; a column that
            // turns out mostly distinct stops being interned.
            let text = c.cast(&DataType::String)?;
            let text = text.str()?;
            let mut shared: PlHashMap<&str, Arc<str>> = PlHashMap::default();
            let limit = text.len() / 4 + 16;
            text.iter()
                .map(|v| match v {
                    None => Value::Null,
                    Some(s) if shared.len() < limit => {
                        Value::Str(shared.entry(s).or_insert_with(|| Arc::from(s)).clone())
                    }
                    Some(s) => Value::Str(s.into()),
                })
                .collect()
        }
        Ty::Int => c
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .map(|v| v.map_or(Value::Null, Value::Int))
            .collect(),
        Ty::Float => c
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .map(|v| v.map_or(Value::Null, Value::Float))
            .collect(),
        Ty::Bool => c
            .cast(&DataType::Boolean)?
            .bool()?
            .iter()
            .map(|v| v.map_or(Value::Null, Value::Bool))
            .collect(),
        Ty::Time => micros(rows, name)?
            .iter()
            .map(|v| v.map_or(Value::Null, Value::Time))
            .collect(),
    })
}

pub(super) fn dtype(ty: Option<Ty>) -> DataType {
    match ty {
        Some(Ty::Bool) => DataType::Boolean,
        Some(Ty::Int) => DataType::Int64,
        Some(Ty::Float) => DataType::Float64,
        Some(Ty::Time) => utc_micros(),
        Some(Ty::Str) | None => DataType::String,
    }
}

impl Detector for Engine {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_ordered(
        &mut self,
        rows: &DataFrame,
        ctx: &Context,
        progress: Progress,
        out: &mut Vec<Alert>,
    ) -> Result<()> {
        let q = Arc::clone(&self.query);
        let mut columns: Vec<Vec<Value>> = q
            .slots
            .iter()
            .map(|(name, ty)| values(rows, name, *ty))
            .collect::<Result<_>>()?;
        let times = micros(rows, &ctx.event_time)?;
        let ids = RowIds::new(rows, ctx)?;
        // The id column is often one the query reads: share its values.
        let id_slot = ctx
            .id_column
            .as_ref()
            .and_then(|c| q.slots.iter().position(|(name, _)| name == c));
        let mut key = String::new();
        for (i, t) in times.iter().enumerate() {
            let Some(t) = t else { continue };
            partition_key(
                q.partition.iter().map(|(_, slot)| &columns[*slot][i]),
                &mut key,
            );
            let p = match self.partitions.get_mut(key.as_str()) {
                Some(p) => p,
                None => self
                    .partitions
                    .entry(key.clone())
                    .or_insert_with(|| Partition {
                        key: q
                            .partition
                            .iter()
                            .map(|(_, s)| columns[*s][i].clone())
                            .collect(),
                        ..Default::default()
                    }),
            };
            let id = match id_slot {
                Some(slot) => columns[slot][i].clone(),
                None => Value::Str(ids.get(i).into()),
            };
            for c in columns.iter_mut() {
                p.values
                    .push_back(std::mem::replace(&mut c[i], Value::Null));
            }
            if columns.is_empty() {
                // A query that reads no column still has rows: one placeholder each.
                p.values.push_back(Value::Null);
            }
            p.times.push_back(t);
            p.ids.push_back(id);
            p.fresh = true;
        }
        // Partitions that got no rows and cannot expire would come out pending again.
        let within = q.within;
        let keys: Vec<String> = self
            .partitions
            .iter()
            .filter(|(_, p)| p.due(progress, within))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.resolve(&key, progress, out);
        }
        Ok(())
    }

    fn save(&self) -> Result<serde_json::Value> {
        // Sorted, so the same state always saves the same bytes.
        let sorted: BTreeMap<&String, &Partition> = self.partitions.iter().collect();
        Ok(serde_json::to_value(sorted)?)
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.partitions = if state.is_null() {
            PlHashMap::default()
        } else {
            serde_json::from_value(state).map_err(|e| Inconsistency::DetectorState {
                detector: self.name.clone(),
                reason: e.to_string(),
            })?
        };
        Ok(())
    }

    fn take_errors(&mut self) -> Vec<String> {
        if self.error_count > self.errors.len() {
            self.errors.push(format!(
                "{} row error(s) in all, the first {} listed",
                self.error_count,
                self.errors.len()
            ));
        }
        self.error_count = 0;
        std::mem::take(&mut self.errors)
    }

    fn output_schema(&self) -> Option<Schema> {
        if !self.output_table {
            return None;
        }
        let q = &self.query;
        let slot_type = |s: usize| q.slots[s].1;
        let mut schema = Schema::default();
        for (name, slot) in &q.partition {
            schema.with_column(name.as_str().into(), dtype(Some(slot_type(*slot))));
        }
        for (name, e) in &q.measures {
            schema.with_column(name.as_str().into(), dtype(e.ty(&slot_type)));
        }
        Some(schema)
    }

    fn take_output(&mut self) -> Result<Option<DataFrame>> {
        let Some(schema) = self.output_schema() else {
            return Ok(None);
        };
        let rows = std::mem::take(&mut self.output);
        let n = rows.len();
        let mut columns = Vec::with_capacity(schema.len());
        for (i, (name, dt)) in schema.iter().enumerate() {
            // One typed vector per column, straight from the cells (no clones).
            fn typed<T>(
                rows: &[Vec<Value>],
                i: usize,
                f: impl Fn(&Value) -> Option<T>,
            ) -> Vec<Option<T>> {
                rows.iter().map(|r| f(&r[i])).collect()
            }
            let name = name.clone();
            let column = match dt {
                DataType::Boolean => Column::new(
                    name,
                    typed(&rows, i, |v| match v {
                        Value::Bool(b) => Some(*b),
                        _ => None,
                    }),
                ),
                DataType::Int64 => Column::new(
                    name,
                    typed(&rows, i, |v| match v {
                        Value::Int(n) => Some(*n),
                        _ => None,
                    }),
                ),
                DataType::Float64 => Column::new(
                    name,
                    typed(&rows, i, |v| match v {
                        Value::Float(f) => Some(*f),
                        Value::Int(n) => Some(*n as f64),
                        _ => None,
                    }),
                ),
                DataType::String => Column::new(
                    name,
                    typed(&rows, i, |v| match v {
                        Value::Null => None,
                        v => Some(v.flink_text()),
                    }),
                ),
                _ => Column::new(
                    name,
                    typed(&rows, i, |v| match v {
                        Value::Time(t) => Some(*t),
                        _ => None,
                    }),
                )
                .cast(&utc_micros())?,
            };
            columns.push(column);
        }
        Ok(Some(DataFrame::new(n, columns)?))
    }
}
