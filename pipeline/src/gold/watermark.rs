//! Event time for sequence rules: a watermark (latest event time seen − allowed lateness), a
//! buffer of rows not yet behind it, and the late rows it refuses.
//!
//! A row is late when its event time is below the watermark at its arrival (the running
//! maximum over every row before it, in arrival order). Rows that are not late wait in the
//! buffer until the watermark passes them, then go to the detectors sorted by event time,
//! ties in arrival order. No later non-late row can sort before a released one, so the
//! detectors see the same sequence however the input was split into files and batches.

use polars::prelude::*;

use super::detectors::micros;
use crate::error::Result;

/// Arrival order across batches: `batch << 32 | row`.
pub const ARRIVAL: &str = "_arrival";

#[derive(Debug, Clone, Default)]
pub struct EventBuffer {
    /// Latest event time seen (µs), over every batch.
    pub max_seen: Option<i64>,
    pub lateness_us: i64,
    /// Rows waiting for the watermark, with [`ARRIVAL`].
    pub pending: Option<DataFrame>,
}

/// What one batch did to the buffer.
pub struct Admitted {
    /// Rows now behind the watermark, in (event time, arrival) order.
    pub released: DataFrame,
    pub late: usize,
}

impl EventBuffer {
    pub fn new(lateness: std::time::Duration) -> Self {
        Self {
            lateness_us: lateness.as_micros() as i64,
            ..Default::default()
        }
    }

    /// The watermark: rows with an earlier event time are late.
    pub fn watermark(&self) -> Option<i64> {
        self.max_seen.map(|m| m - self.lateness_us)
    }

    /// Admits a batch (arrival order) and releases what the watermark passed; `drain`
    /// releases everything (the input has ended).
    pub fn admit(
        &mut self,
        rows: &DataFrame,
        event_time: &str,
        batch: u64,
        drain: bool,
    ) -> Result<Admitted> {
        let times = micros(rows, event_time)?;
        let mut keep = Vec::with_capacity(rows.height());
        let mut late = 0;
        for t in times.iter() {
            let on_time = match (t, self.max_seen) {
                (None, _) => false,
                (Some(t), Some(max)) => t >= max - self.lateness_us,
                (Some(_), None) => true,
            };
            if let Some(t) = t {
                self.max_seen = Some(self.max_seen.map_or(t, |m| m.max(t)));
            }
            late += usize::from(!on_time);
            keep.push(on_time);
        }
        let base = (batch as i64) << 32;
        let mut admitted = rows.clone();
        admitted.with_column(Column::new(
            ARRIVAL.into(),
            (0..rows.height() as i64)
                .map(|i| base | i)
                .collect::<Vec<_>>(),
        ))?;
        let admitted = admitted.filter(&BooleanChunked::from_slice("keep".into(), &keep))?;
        let all = match self.pending.take() {
            Some(pending) if pending.height() > 0 => {
                let mut pending = shaped_like(pending, &admitted)?;
                pending.vstack_mut(&admitted)?;
                pending
            }
            _ => admitted,
        };
        let (released, pending) = if drain {
            let empty = all.clear();
            (all, empty)
        } else {
            let watermark = self.watermark().unwrap_or(i64::MIN);
            let t = micros(&all, event_time)?;
            let behind: BooleanChunked =
                t.iter().map(|t| t.is_some_and(|t| t < watermark)).collect();
            (all.filter(&behind)?, all.filter(&!&behind)?)
        };
        let released = released.sort(
            [event_time, ARRIVAL],
            SortMultipleOptions::default().with_maintain_order(true),
        )?;
        self.pending = Some(pending);
        Ok(Admitted { released, late })
    }
}

/// Rows held back under an older schema, in `like`'s columns: a column the config added since
/// is NULL for them, a widened one is cast (see `schema_change`).
fn shaped_like(pending: DataFrame, like: &DataFrame) -> Result<DataFrame> {
    if pending.schema() == like.schema() {
        return Ok(pending);
    }
    let rows = pending.height();
    let columns = like
        .columns()
        .iter()
        .map(|c| match pending.column(c.name()) {
            Ok(old) => old.cast(c.dtype()),
            Err(_) => Ok(Column::full_null(c.name().clone(), rows, c.dtype())),
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    Ok(DataFrame::new(rows, columns)?)
}
