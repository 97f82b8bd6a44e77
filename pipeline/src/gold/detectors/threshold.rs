//! A per-row rule: every row for which a SQL predicate holds raises an alert.

use polars::prelude::*;

use super::{Context, Detector, RowIds, as_strings, micros};
use crate::error::Result;
use crate::gold::alerts::{Alert, AlertKind, Measures};

pub struct Threshold {
    name: String,
    expr: Expr,
    key: Option<String>,
    /// The same for every alert of the rule: built once.
    measures: Measures,
    reason: String,
}

impl Threshold {
    /// `expr`: the plan's compiled predicate (checked against silver's schema at start-up).
    pub fn new(name: &str, expr: Expr, text: &str, key: Option<String>) -> Self {
        Self {
            name: name.to_string(),
            expr,
            key,
            measures: Measures::Rule { rule: text.into() },
            reason: format!("rule {text:?} holds"),
        }
    }
}

impl Detector for Threshold {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_rows(&mut self, rows: &DataFrame, ctx: &Context, out: &mut Vec<Alert>) -> Result<()> {
        if rows.height() == 0 {
            return Ok(());
        }
        let hit = rows
            .clone()
            .lazy()
            .select([self.expr.clone().fill_null(lit(false)).alias("hit")])
            .collect()?;
        let hit = hit.column("hit")?.bool()?;
        let ids = RowIds::new(rows, ctx)?;
        let times = micros(rows, &ctx.event_time)?;
        let keys = match &self.key {
            Some(k) => Some(as_strings(rows, k)?),
            None => None,
        };
        for (i, flag) in hit.iter().enumerate() {
            if flag != Some(true) {
                continue;
            }
            let key = keys.as_ref().and_then(|k| k.get(i)).map(str::to_string);
            out.push(Alert {
                detector: self.name.clone(),
                kind: AlertKind::Threshold,
                key_column: self.key.clone(),
                key,
                transaction_ids: vec![ids.get(i)],
                event_time: times.get(i),
                score: None,
                measures: self.measures.clone(),
                reason: self.reason.clone(),
                model_version: None,
            });
        }
        Ok(())
    }
}
