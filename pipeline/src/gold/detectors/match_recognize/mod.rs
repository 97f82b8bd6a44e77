//! MATCH_RECOGNIZE detectors: a Flink SQL query in the config, run as an automaton over each
//! partition's rows in event-time order, with Flink's semantics (see `value` for its
//! coercions, `pattern` for preference and streaming, `query` for the supported subset).
//!
//! Per partition, rows are kept from the earliest start that is not decided yet. A start is
//! decided when its preferred match is known (emitted, then AFTER MATCH SKIP picks the next
//! start), when no match can start there, or when WITHIN expired. So a match from a later
//! start waits for every earlier start, and the matches do not depend on how rows were cut
//! into batches: the partial state is saved with each gold commit.

mod engine;
mod expr;
mod pattern;
pub mod query;
#[cfg(test)]
mod tests;
pub mod value;

use std::collections::BTreeMap;
use std::sync::Arc;

use polars::prelude::*;
use rayon::prelude::*;

use super::{Context, Detector, Progress};
use crate::error::{Inconsistency, Result};
use crate::gold::alerts::Alert;
use engine::{Engine, Partition, partition_key, shard_of, values};
use query::Query;
use value::Value;

/// Partitions are spread over this many shards, matched in parallel.
const SHARDS: usize = 2;

/// Below this many rows a batch is matched on one thread.
const PARALLEL_ROWS: usize = 4096;

/// A MATCH_RECOGNIZE detector: its partitions in [`SHARDS`] engines that match in parallel
/// (partitions are independent; each lives in one shard, chosen by its key).
pub struct MatchRecognize {
    query: Arc<Query>,
    engines: Vec<Engine>,
}

impl MatchRecognize {
    pub fn new(name: &str, query: Arc<Query>, output_table: bool) -> Self {
        let engines = (0..SHARDS)
            .map(|_| Engine::new(name, Arc::clone(&query), output_table))
            .collect();
        Self { query, engines }
    }

    /// Each row's shard, from its partition key.
    fn shards(&self, rows: &DataFrame) -> Result<Vec<usize>> {
        let q = &self.query;
        let keys: Vec<Vec<Value>> = q
            .partition
            .iter()
            .map(|(_, slot)| {
                let (name, ty) = &q.slots[*slot];
                values(rows, name, *ty)
            })
            .collect::<Result<_>>()?;
        let mut key = String::new();
        Ok((0..rows.height())
            .map(|i| {
                partition_key(keys.iter().map(|k| &k[i]), &mut key);
                shard_of(&key, SHARDS)
            })
            .collect())
    }
}

impl Detector for MatchRecognize {
    fn name(&self) -> &str {
        self.engines[0].name()
    }

    fn on_ordered(
        &mut self,
        rows: &DataFrame,
        ctx: &Context,
        progress: Progress,
        out: &mut Vec<Alert>,
    ) -> Result<()> {
        // Every shard is visited, rows or not: the watermark may decide its pending starts.
        let shard = self.shards(rows)?;
        let parts: Vec<DataFrame> = (0..SHARDS)
            .map(|n| {
                let mask: BooleanChunked = shard.iter().map(|s| *s == n).collect();
                rows.filter(&mask)
            })
            .collect::<std::result::Result<_, _>>()?;
        let run = |(engine, part): (&mut Engine, &DataFrame)| -> Result<Vec<Alert>> {
            let mut alerts = Vec::new();
            engine.on_ordered(part, ctx, progress, &mut alerts)?;
            Ok(alerts)
        };
        let results: Vec<Result<Vec<Alert>>> = if rows.height() >= PARALLEL_ROWS {
            self.engines
                .par_iter_mut()
                .zip(parts.par_iter())
                .map(run)
                .collect()
        } else {
            self.engines.iter_mut().zip(parts.iter()).map(run).collect()
        };
        for r in results {
            out.extend(r?);
        }
        Ok(())
    }

    fn save(&self) -> Result<serde_json::Value> {
        // One sorted map whatever the shard count, so the same state saves the same bytes.
        let sorted: BTreeMap<&String, &Partition> = self
            .engines
            .iter()
            .flat_map(|e| e.partitions.iter())
            .collect();
        Ok(serde_json::to_value(sorted)?)
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        let all: BTreeMap<String, Partition> = if state.is_null() {
            BTreeMap::new()
        } else {
            serde_json::from_value(state).map_err(|e| Inconsistency::DetectorState {
                detector: self.name().to_string(),
                reason: e.to_string(),
            })?
        };
        for engine in &mut self.engines {
            engine.partitions.clear();
        }
        for (key, partition) in all {
            let n = shard_of(&key, SHARDS);
            self.engines[n].partitions.insert(key, partition);
        }
        Ok(())
    }

    fn take_errors(&mut self) -> Vec<String> {
        self.engines
            .iter_mut()
            .flat_map(|e| e.take_errors())
            .collect()
    }

    fn output_schema(&self) -> Option<Schema> {
        self.engines[0].output_schema()
    }

    fn take_output(&mut self) -> Result<Option<DataFrame>> {
        let mut merged: Option<DataFrame> = None;
        for engine in &mut self.engines {
            if let Some(rows) = engine.take_output()? {
                match &mut merged {
                    Some(m) => {
                        m.vstack_mut(&rows)?;
                    }
                    None => merged = Some(rows),
                }
            }
        }
        Ok(merged)
    }
}
