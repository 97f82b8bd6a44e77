//! Flink's DataStream fraud detector: per key, an amount below `small` immediately followed
//! (the key's next row in event time) by one above `large` — within `window` when one is set
//! (inclusive, like the tutorial's one-minute timer). Amounts equal to `small` or `large`
//! never count.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Context, Detector, Progress, RowIds, as_strings, micros, show_time};
use crate::config::SmallThenLargeRule;
use crate::error::{Inconsistency, Result};
use crate::gold::alerts::{Alert, AlertKind, Measures};

/// The small row a key is waiting on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    id: String,
    time: i64,
    amount: f64,
}

pub struct SmallThenLarge {
    name: String,
    key: String,
    amount: String,
    small: f64,
    large: f64,
    window_us: Option<i64>,
    /// Keys whose latest row was small.
    pending: PlHashMap<String, Pending>,
}

impl SmallThenLarge {
    /// The rule of detector `name` with the plan's parameters.
    pub fn new(name: &str, rule: &SmallThenLargeRule) -> Self {
        Self {
            name: name.to_string(),
            key: rule.key.clone(),
            amount: rule.amount.clone(),
            small: rule.small,
            large: rule.large,
            window_us: rule.window.map(|w| w.as_micros() as i64),
            pending: PlHashMap::default(),
        }
    }
}

impl Detector for SmallThenLarge {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_ordered(
        &mut self,
        rows: &DataFrame,
        ctx: &Context,
        _progress: Progress,
        out: &mut Vec<Alert>,
    ) -> Result<()> {
        let keys = as_strings(rows, &self.key)?;
        let amounts = rows.column(&self.amount)?.cast(&DataType::Float64)?;
        let amounts = amounts.f64()?;
        let times = micros(rows, &ctx.event_time)?;
        let ids = RowIds::new(rows, ctx)?;
        for (i, ((key, amount), time)) in keys
            .iter()
            .zip(amounts.iter())
            .zip(times.iter())
            .enumerate()
        {
            let (Some(key), Some(time)) = (key, time) else {
                continue;
            };
            // A row without an amount still ends "immediately followed".
            let amount = amount.unwrap_or(f64::NAN);
            if amount > self.large
                && let Some(small) = self.pending.get(key)
                && self.window_us.is_none_or(|w| time - small.time <= w)
            {
                let large_id = ids.get(i);
                out.push(Alert {
                    detector: self.name.clone(),
                    kind: AlertKind::SmallThenLarge,
                    key_column: Some(self.key.clone()),
                    key: Some(key.to_string()),
                    transaction_ids: vec![small.id.clone(), large_id],
                    event_time: Some(time),
                    score: None,
                    measures: Measures::SmallThenLarge {
                        large_amount: amount,
                        large_ts: time.div_euclid(1000),
                        small_amount: small.amount,
                        small_ts: small.time.div_euclid(1000),
                    },
                    reason: format!(
                        "{} {key}: {} at {} then {} at {} ({:.3} s later; small < {}, large > {})",
                        self.key,
                        small.amount,
                        show_time(small.time),
                        amount,
                        show_time(time),
                        (time - small.time) as f64 / 1e6,
                        self.small,
                        self.large
                    ),
                    model_version: None,
                });
            }
            if amount < self.small {
                let pending = Pending {
                    id: ids.get(i),
                    time,
                    amount,
                };
                match self.pending.get_mut(key) {
                    Some(slot) => *slot = pending,
                    None => {
                        self.pending.insert(key.to_string(), pending);
                    }
                }
            } else {
                self.pending.remove(key);
            }
        }
        Ok(())
    }

    fn save(&self) -> Result<serde_json::Value> {
        let sorted: BTreeMap<&String, &Pending> = self.pending.iter().collect();
        Ok(serde_json::to_value(sorted)?)
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        if state.is_null() {
            self.pending.clear();
            return Ok(());
        }
        self.pending = serde_json::from_value(state).map_err(|e| Inconsistency::DetectorState {
            detector: self.name.clone(),
            reason: e.to_string(),
        })?;
        Ok(())
    }
}
