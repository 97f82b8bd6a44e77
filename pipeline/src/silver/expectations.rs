//! Expectations: SQL predicates compiled to polars expressions, evaluated per row.

use polars::prelude::*;

use crate::config::{Action, Expectation};
use crate::error::{Error, Result};

/// Parses a SQL predicate (`amount >= 0 AND country IS NOT NULL`) into a polars expression.
pub fn compile(text: &str) -> Result<Expr> {
    polars::sql::sql_expr(text).map_err(|e| Error::Expression {
        expr: text.to_string(),
        reason: e.to_string(),
    })
}

/// An expectation ready to evaluate.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub name: String,
    pub action: Action,
    pub expr: Expr,
    pub text: String,
}

/// Compiles a SQL predicate and checks that it evaluates to a boolean on `schema`; `what`
/// names it in the error (an expectation, a threshold rule).
pub fn compile_predicate(what: &str, text: &str, schema: &Schema) -> Result<Expr> {
    let expr = compile(text)?;
    let probe = DataFrame::empty_with_schema(schema)
        .lazy()
        .select([expr.clone().alias("probe")])
        .collect()
        .map_err(|err| Error::Expression {
            expr: text.to_string(),
            reason: format!("{what}: {err}"),
        })?;
    let dtype = probe.column("probe")?.dtype().clone();
    if dtype != DataType::Boolean {
        return Err(Error::Expression {
            expr: text.to_string(),
            reason: format!("{what} gives {dtype}, not a boolean"),
        });
    }
    Ok(expr)
}

/// Compiles every expectation and checks that each evaluates to a boolean on `schema`
/// (unknown columns and type errors are found at start-up, not in the middle of a batch).
pub fn compile_all(expectations: &[Expectation], schema: &Schema) -> Result<Vec<Compiled>> {
    expectations
        .iter()
        .map(|e| {
            let expr = compile_predicate(&format!("expectation {:?}", e.name), &e.expr, schema)?;
            Ok(Compiled {
                name: e.name.clone(),
                action: e.action,
                expr,
                text: e.expr.clone(),
            })
        })
        .collect()
}

/// For each expectation, which rows pass (a NULL result fails: a check that cannot be
/// evaluated did not pass).
pub fn evaluate(frame: &DataFrame, compiled: &[Compiled]) -> Result<Vec<Vec<bool>>> {
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
