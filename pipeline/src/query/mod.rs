//! `isolake-pipeline query`: SQL (polars SQL) over the pipeline's tables, registered by name,
//! read through the data layer (so projections and filters reach the parquet reader), at the
//! latest version or as of a version or a time.

use std::ops::ControlFlow;
use std::path::Path;

use isolake_data::lake::LakeTable;
use polars::prelude::*;
use polars::sql::SQLContext;
use sqlparser::ast::{Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::config::Config;

pub mod error;
pub use error::QueryError;

type Result<T, E = QueryError> = std::result::Result<T, E>;

/// Which version of the tables a query reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsOf {
    pub version: Option<u64>,
    pub timestamp: Option<chrono::DateTime<chrono::Utc>>,
}

/// Finds the first thing in a query that reads outside the lake: a table function such as
/// `read_csv('/any/file')` (polars SQL reads files through them).
struct OutsideTheLake;

impl Visitor for OutsideTheLake {
    type Break = String;

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => {
                ControlFlow::Break(format!("the table function {name}(…)"))
            }
            TableFactor::TableFunction { expr, .. } => {
                ControlFlow::Break(format!("the table function {expr}"))
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

/// Only queries of the lake's tables run: other statements (CREATE, COPY, DROP, …) and table
/// functions, which read or write paths the user names, are refused.
fn confine(statements: &[Statement]) -> Result<()> {
    if let Some(other) = statements
        .iter()
        .find(|s| !matches!(s, Statement::Query(_)))
    {
        let text = other.to_string();
        let word = text.split_whitespace().next().unwrap_or("").to_uppercase();
        return Err(QueryError::Refused(format!(
            "{word} statements (only SELECT queries of the lake's tables run here)"
        )));
    }
    let found = statements
        .iter()
        .map(|s| s.visit(&mut OutsideTheLake))
        .find(ControlFlow::is_break);
    match found.unwrap_or(ControlFlow::Continue(())) {
        ControlFlow::Break(what) => Err(QueryError::Refused(format!(
            "{what}: it reads outside the lake (only the lake's tables can be queried)"
        ))),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The table names a SQL text reads (lower case), after [`confine`].
fn referenced(sql: &str) -> Result<Vec<String>> {
    let statements = Parser::parse_sql(&GenericDialect {}, sql)
        .map_err(|e| QueryError::InvalidSql(e.to_string()))?;
    confine(&statements)?;
    let mut names = Vec::new();
    let _ = sqlparser::ast::visit_relations(&statements, |name| {
        let text = name
            .to_string()
            .trim_matches('"')
            .trim_matches('`')
            .to_lowercase();
        if !names.contains(&text) {
            names.push(text);
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(names)
}

/// Runs `sql` and returns its result.
pub async fn run(config: &Config, sql: &str, as_of: AsOf) -> Result<DataFrame> {
    let available = crate::tables::by_name(config).await?;
    let mut ctx = SQLContext::new();
    for name in referenced(sql)? {
        let Some(location) = available.get(&name) else {
            // CTE names and the like are not tables: let polars judge unknown names.
            continue;
        };
        if !LakeTable::exists(location).await? {
            return Err(QueryError::NotCreated(name));
        }
        let mut table = LakeTable::open(location).await?;
        if let Some(version) = as_of.version {
            table
                .load_version(version)
                .await
                .map_err(|source| QueryError::TimeTravel {
                    name: name.clone(),
                    when: String::new(),
                    source: Box::new(source),
                })?;
        } else if let Some(timestamp) = as_of.timestamp {
            table
                .load_as_of(timestamp)
                .await
                .map_err(|source| QueryError::TimeTravel {
                    name: name.clone(),
                    when: format!(" as of {timestamp}"),
                    source: Box::new(source),
                })?;
        }
        ctx.register(&name, table.scan()?);
    }
    let plan = ctx.execute(sql).map_err(|e| QueryError::Plan {
        reason: e.to_string(),
        tables: available.keys().cloned().collect::<Vec<_>>().join(", "),
    })?;
    tokio::task::block_in_place(|| plan.collect()).map_err(QueryError::Run)
}

/// Output formats of `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

/// Writes `df` as `format` to `out`.
pub fn write(df: &mut DataFrame, format: Format, out: &mut dyn std::io::Write) -> Result<()> {
    match format {
        Format::Table => {
            let text = render_table(df, 100);
            out.write_all(text.as_bytes())
                .map_err(|source| QueryError::Output {
                    path: Path::new("<stdout>").to_path_buf(),
                    source,
                })?;
        }
        Format::Csv => CsvWriter::new(out).include_header(true).finish(df)?,
        Format::Json => JsonWriter::new(out)
            .with_json_format(JsonFormat::JsonLines)
            .finish(df)?,
        Format::Parquet => {
            ParquetWriter::new(out).finish(df)?;
        }
    }
    Ok(())
}

/// A plain text table of the first `limit` rows, every column shown in full.
pub fn render_table(df: &DataFrame, limit: usize) -> String {
    let shown = df.head(Some(limit));
    let mut cells: Vec<Vec<String>> = Vec::new();
    for column in shown.columns() {
        let mut values = vec![column.name().to_string()];
        let series = column.as_materialized_series();
        for i in 0..shown.height() {
            let text = match series.get(i) {
                Ok(AnyValue::Null) => "null".to_string(),
                Ok(AnyValue::String(s)) => s.to_string(),
                Ok(AnyValue::StringOwned(s)) => s.to_string(),
                Ok(v) => v.to_string(),
                Err(_) => "?".to_string(),
            };
            values.push(text.replace('\n', " "));
        }
        cells.push(values);
    }
    let widths: Vec<usize> = cells
        .iter()
        .map(|c| {
            c.iter()
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
                .min(60)
        })
        .collect();
    let mut out = String::new();
    for row in 0..=shown.height() {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let v: String = c[row].chars().take(*w).collect();
                format!("{v:<w$}")
            })
            .collect();
        out.push_str(line.join(" | ").trim_end());
        out.push('\n');
        if row == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("-+-"));
            out.push('\n');
        }
    }
    let more = df.height().saturating_sub(shown.height());
    out.push_str(&format!(
        "({} row{}{})\n",
        df.height(),
        if df.height() == 1 { "" } else { "s" },
        if more > 0 {
            format!(", first {limit} shown; use --format csv for all")
        } else {
            String::new()
        }
    ));
    out
}
