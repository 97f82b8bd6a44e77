//! Silver's part of the plan: its schema (worked out once, here) and the expectations
//! compiled to polars expressions that are known to give a boolean on that schema.

use isolake_data::record::FieldType;
use polars::prelude::*;

use crate::bronze::{LINEAGE, with_metadata};
use crate::config::{Action, Config, Expectation};

/// An expectation ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledExpectation {
    pub name: String,
    pub action: Action,
    pub expr: Expr,
    pub text: String,
}

/// Silver's columns (declared fields after casts, then the computed event time) with their
/// types: the one place silver's typing is decided.
pub fn columns(config: &Config) -> Vec<(String, FieldType)> {
    let mut out: Vec<(String, FieldType)> = config
        .schema
        .fields
        .iter()
        .map(|(name, declared)| (name.clone(), config.silver_type(name).unwrap_or(*declared)))
        .collect();
    if config.schema.event_time_from.is_some() {
        out.push((config.schema.event_time.clone(), FieldType::Timestamp));
    }
    out
}

/// Silver's table schema: its columns, then the lineage columns.
pub fn schema(columns: &[(String, FieldType)]) -> Schema {
    let schema: Schema = columns
        .iter()
        .map(|(name, ty)| Field::new(name.as_str().into(), ty.polars_dtype()))
        .collect();
    with_metadata(schema, &LINEAGE)
}

/// Parses a SQL predicate (`amount >= 0 AND country IS NOT NULL`) and checks that it gives a
/// boolean on `schema` (unknown columns and type errors show at start-up, not mid-batch).
/// The error is the message for the config issue; `what` names the predicate's owner.
pub fn predicate(what: &str, text: &str, schema: &Schema) -> Result<Expr, String> {
    let invalid = |reason: String| format!("{what}: invalid expression {text:?}: {reason}");
    let expr = polars::sql::sql_expr(text).map_err(|e| invalid(e.to_string()))?;
    let probe = DataFrame::empty_with_schema(schema)
        .lazy()
        .select([expr.clone().alias("probe")])
        .collect()
        .map_err(|e| invalid(e.to_string()))?;
    let dtype = probe
        .column("probe")
        .map_err(|e| invalid(e.to_string()))?
        .dtype()
        .clone();
    if dtype != DataType::Boolean {
        return Err(invalid(format!("gives {dtype}, not a boolean")));
    }
    Ok(expr)
}

/// Compiles one expectation against silver's schema.
pub fn expectation(e: &Expectation, schema: &Schema) -> Result<CompiledExpectation, String> {
    let expr = predicate(&format!("expectation {:?}", e.name), &e.expr, schema)?;
    Ok(CompiledExpectation {
        name: e.name.clone(),
        action: e.action,
        expr,
        text: e.expr.clone(),
    })
}
