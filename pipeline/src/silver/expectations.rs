//! Expectations, evaluated per row (the plan compiled them: `plan::silver`).

use polars::prelude::*;

use crate::error::Result;
use crate::plan::silver::CompiledExpectation;

/// For each expectation, which rows pass (a NULL result fails: a check that cannot be
/// evaluated did not pass).
pub fn evaluate(frame: &DataFrame, compiled: &[CompiledExpectation]) -> Result<Vec<Vec<bool>>> {
    if compiled.is_empty() {
        return Ok(Vec::new());
    }
    let exprs: Vec<Expr> = compiled
        .iter()
        .enumerate()
        .map(|(i, c)| c.expr.clone().alias(format!("e{i}")))
        .collect();
    let out = frame.clone().lazy().select(exprs).collect()?;
    out.columns()
        .iter()
        .map(|c| {
            let mask = c.bool()?;
            Ok(mask.iter().map(|v| v == Some(true)).collect())
        })
        .collect()
}
