//! Dedup on the record key, within a batch and against the recent past of silver.

use std::time::Duration;

use polars::prelude::*;

use crate::bronze::BATCH_ID;
use crate::error::Result;

/// Keys silver holds from the last `window` of event time (by the newest event seen).
///
/// A key is kept as a 128-bit hash (two independently seeded hashes), not as a string: a day
/// of millions of keys then takes ~25 bytes each instead of ~125, and no allocation per row.
/// Two different keys collide with probability ~n²/2¹²⁹ — nil for any real window.
#[derive(Debug, Clone)]
pub struct DedupIndex {
    window_us: i64,
    keys: PlHashMap<u128, i64>,
    newest_us: i64,
    seeds: (PlRandomState, PlRandomState),
}

impl DedupIndex {
    pub fn new(window: Duration) -> Self {
        Self {
            window_us: window.as_micros().min(i64::MAX as u128) as i64,
            keys: PlHashMap::default(),
            newest_us: i64::MIN,
            seeds: (PlRandomState::default(), PlRandomState::default()),
        }
    }

    fn hash(&self, key: &str) -> u128 {
        use std::hash::BuildHasher;
        (u128::from(self.seeds.0.hash_one(key)) << 64) | u128::from(self.seeds.1.hash_one(key))
    }

    /// Loads the keys of silver rows of batches before `before_batch` within the window.
    pub fn load(
        silver: LazyFrame,
        key: &str,
        event_time: &str,
        window: Duration,
        before_batch: u64,
    ) -> Result<Self> {
        let mut index = Self::new(window);
        let earlier = silver.filter(col(BATCH_ID).lt(lit(before_batch as i64)));
        let newest = earlier
            .clone()
            .select([col(event_time).cast(DataType::Int64).max().alias("newest")])
            .collect()?;
        let Some(newest) = newest.column("newest")?.i64()?.get(0) else {
            return Ok(index);
        };
        let rows = earlier
            .select([col(key), col(event_time).cast(DataType::Int64).alias("t")])
            .filter(col("t").gt_eq(lit(newest.saturating_sub(index.window_us))))
            .collect()?;
        let keys = rows.column(key)?.cast(&DataType::String)?;
        let keys = keys.str()?;
        let times = rows.column("t")?.i64()?;
        for (k, t) in keys.iter().zip(times.iter()) {
            if let (Some(k), Some(t)) = (k, t) {
                index.insert(k, t);
            }
        }
        Ok(index)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains_key(&self.hash(key))
    }

    pub fn insert(&mut self, key: &str, time_us: i64) {
        self.newest_us = self.newest_us.max(time_us);
        let hash = self.hash(key);
        self.keys.insert(hash, time_us);
    }

    /// Forgets keys older than the window.
    pub fn prune(&mut self) {
        let horizon = self.newest_us.saturating_sub(self.window_us);
        self.keys.retain(|_, t| *t >= horizon);
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
