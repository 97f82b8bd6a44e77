//! A detector's query text → a compiled MATCH_RECOGNIZE: `SELECT * FROM <table>
//! MATCH_RECOGNIZE (...)`, parsed with sqlparser and checked against the silver columns.
//! Anything outside the supported subset is refused with an error naming the construct.

use sqlparser::ast::{
    self, AfterMatchSkip, GroupByExpr, RowsPerMatch, SelectItem, SetExpr, Statement, TableFactor,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::expr::{self, Expr, Names};
use super::pattern::Program;
use super::value::Ty;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    PastLastRow,
    ToNextRow,
    ToFirst(u8),
    ToLast(u8),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Partition columns: names and slots.
    pub partition: Vec<(String, usize)>,
    pub measures: Vec<(String, Expr)>,
    /// DEFINE per pattern variable (`None`: every row matches).
    pub defines: Vec<Option<Expr>>,
    pub program: Program,
    pub skip: Skip,
    /// WITHIN, µs.
    pub within: Option<i64>,
    /// Slot → silver column name and type.
    pub slots: Vec<(String, Ty)>,
}

/// Why a query cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The text is not SQL that the parser reads.
    #[error("SQL: {0}")]
    Syntax(String),
    /// SQL outside the supported subset (the message names the construct).
    #[error("{0}")]
    Unsupported(String),
    /// A clause names something that does not exist, or uses it wrongly.
    #[error("{0}")]
    Invalid(String),
}

/// The clauses of `FROM <table> MATCH_RECOGNIZE (...)` that the compiled query is built from.
struct Clauses<'a> {
    partition_by: &'a [ast::Expr],
    measures: &'a [ast::Measure],
    after_match_skip: &'a Option<AfterMatchSkip>,
    pattern: &'a ast::MatchRecognizePattern,
    symbols: &'a [ast::SymbolDefinition],
}

/// Compiles `sql` for the stream named `table`, over `columns`, ordered by `event_time`.
pub fn compile(
    sql: &str,
    table: &str,
    columns: &[(String, Ty)],
    event_time: &str,
) -> Result<Query, QueryError> {
    let (sql, within) = strip_within(sql).map_err(QueryError::Syntax)?;
    let statements = Parser::parse_sql(&GenericDialect {}, &sql)
        .map_err(|e| QueryError::Syntax(e.to_string()))?;
    let [Statement::Query(query)] = statements.as_slice() else {
        return Err(unsupported(format!(
            "expected one SELECT * FROM <table> MATCH_RECOGNIZE (...), found {} statement(s)",
            statements.len()
        )));
    };
    let relation = single_relation(query)?;
    let clauses = clauses(relation, table, event_time)?;
    build(&clauses, columns, within).map_err(QueryError::Invalid)
}

fn unsupported(message: impl Into<String>) -> QueryError {
    QueryError::Unsupported(message.into())
}

/// The one FROM item of a plain `SELECT *` (anything around it is refused).
fn single_relation(query: &ast::Query) -> Result<&TableFactor, QueryError> {
    if query.with.is_some()
        || query.order_by.is_some()
        || query.limit_clause.is_some()
        || query.fetch.is_some()
    {
        return Err(unsupported(
            "WITH, ORDER BY, LIMIT and FETCH around MATCH_RECOGNIZE are not supported",
        ));
    }
    let SetExpr::Select(select) = &*query.body else {
        return Err(unsupported(
            "expected a single SELECT (UNION and other set operations are not supported)",
        ));
    };
    if !matches!(select.projection.as_slice(), [SelectItem::Wildcard(_)]) {
        return Err(unsupported(
            "only SELECT * is supported: name the output columns in MEASURES",
        ));
    }
    let no_grouping =
        matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    if select.selection.is_some()
        || select.having.is_some()
        || !no_grouping
        || select.distinct.is_some()
    {
        return Err(unsupported(
            "WHERE, GROUP BY, HAVING and DISTINCT are not supported",
        ));
    }
    let [from] = select.from.as_slice() else {
        return Err(unsupported("expected exactly one FROM item"));
    };
    if !from.joins.is_empty() {
        return Err(unsupported("JOIN is not supported"));
    }
    Ok(&from.relation)
}

/// The MATCH_RECOGNIZE clauses, after checking its source table, rows per match and order.
fn clauses<'a>(
    relation: &'a TableFactor,
    table: &str,
    event_time: &str,
) -> Result<Clauses<'a>, QueryError> {
    let TableFactor::MatchRecognize {
        table: source,
        partition_by,
        order_by,
        measures,
        rows_per_match,
        after_match_skip,
        pattern,
        symbols,
        ..
    } = relation
    else {
        return Err(unsupported("expected FROM <table> MATCH_RECOGNIZE (...)"));
    };
    match &**source {
        TableFactor::Table { name, .. } if name.to_string() == table => {}
        TableFactor::Table { name, .. } => {
            return Err(QueryError::Invalid(format!(
                "the query reads {name}, but this detector's table is {table:?} (the silver stream)"
            )));
        }
        _ => return Err(unsupported("MATCH_RECOGNIZE must read a table name")),
    }
    if matches!(rows_per_match, Some(RowsPerMatch::AllRows(_))) {
        return Err(unsupported(
            "ALL ROWS PER MATCH is not supported (use ONE ROW PER MATCH)",
        ));
    }
    let [order] = order_by.as_slice() else {
        return Err(unsupported(format!(
            "ORDER BY must name the event-time column {event_time:?} only"
        )));
    };
    let ordered_by_time = matches!(&order.expr, ast::Expr::Identifier(id) if id.value.eq_ignore_ascii_case(event_time));
    if !ordered_by_time || order.options.asc == Some(false) {
        return Err(unsupported(format!(
            "ORDER BY must be the event-time column {event_time:?}, ascending (found {order})"
        )));
    }
    Ok(Clauses {
        partition_by,
        measures,
        after_match_skip,
        pattern,
        symbols,
    })
}

/// The compiled query: pattern program, partition slots, DEFINEs, MEASURES, skip.
fn build(c: &Clauses<'_>, columns: &[(String, Ty)], within: Option<i64>) -> Result<Query, String> {
    let program = Program::compile(c.pattern)?;
    let mut names = Names {
        vars: &program.vars,
        columns,
        slots: Vec::new(),
    };
    let partition = partition(c.partition_by, &mut names)?;
    let mut defines: Vec<Option<Expr>> = vec![None; program.vars.len()];
    for d in c.symbols {
        let index = program
            .vars
            .iter()
            .position(|v| *v == d.symbol.value)
            .ok_or_else(|| format!("DEFINE {}: not a variable of the PATTERN", d.symbol.value))?;
        defines[index] = Some(
            expr::compile(&d.definition, &mut names, false)
                .map_err(|e| format!("DEFINE {}: {e}", d.symbol.value))?,
        );
    }
    let mut out_names: Vec<String> = partition.iter().map(|(n, _)| n.clone()).collect();
    let mut compiled_measures = Vec::new();
    for m in c.measures {
        let e = expr::compile(&m.expr, &mut names, false)
            .map_err(|e| format!("MEASURES {}: {e}", m.alias.value))?;
        if out_names.contains(&m.alias.value) {
            return Err(format!("output column {} is defined twice", m.alias.value));
        }
        out_names.push(m.alias.value.clone());
        compiled_measures.push((m.alias.value.clone(), e));
    }
    let skip = skip(c.after_match_skip, &program.vars)?;
    let slots = names.slots.iter().map(|c| columns[*c].clone()).collect();
    Ok(Query {
        partition,
        measures: compiled_measures,
        defines,
        program,
        skip,
        within,
        slots,
    })
}

/// PARTITION BY columns with their slots.
fn partition(exprs: &[ast::Expr], names: &mut Names<'_>) -> Result<Vec<(String, usize)>, String> {
    let mut partition = Vec::new();
    for p in exprs {
        let ast::Expr::Identifier(id) = p else {
            return Err(format!("PARTITION BY {p}: only column names are supported"));
        };
        let slot = match expr::compile(p, names, false)? {
            Expr::Col { slot, .. } => slot,
            _ => unreachable!("an identifier compiles to a column"),
        };
        partition.push((id.value.clone(), slot));
    }
    Ok(partition)
}

fn skip(after: &Option<AfterMatchSkip>, vars: &[String]) -> Result<Skip, String> {
    let var = |id: &ast::Ident| -> Result<u8, String> {
        vars.iter()
            .position(|v| *v == id.value)
            .map(|i| i as u8)
            .ok_or_else(|| {
                format!(
                    "AFTER MATCH SKIP TO {}: not a variable of the PATTERN",
                    id.value
                )
            })
    };
    Ok(match after {
        None | Some(AfterMatchSkip::ToNextRow) => Skip::ToNextRow,
        Some(AfterMatchSkip::PastLastRow) => Skip::PastLastRow,
        Some(AfterMatchSkip::ToFirst(id)) => Skip::ToFirst(var(id)?),
        Some(AfterMatchSkip::ToLast(id)) => Skip::ToLast(var(id)?),
    })
}

/// Removes Flink's `WITHIN INTERVAL '<n>' <unit>` (sqlparser does not know it) and returns
/// it in µs.
fn strip_within(sql: &str) -> Result<(String, Option<i64>), String> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| format!("SQL: {e}"))?;
    let significant: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t, Token::Whitespace(_)))
        .map(|(i, _)| i)
        .collect();
    let word = |i: usize| match &tokens[i] {
        Token::Word(w) => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    let Some(pos) = significant
        .iter()
        .position(|&i| matches!(&tokens[i], Token::Word(w) if w.keyword == Keyword::WITHIN || w.value.eq_ignore_ascii_case("WITHIN")))
    else {
        return Ok((sql.to_string(), None));
    };
    let at = |k: usize| significant.get(pos + k).copied();
    let (Some(interval), Some(amount), Some(unit)) = (at(1), at(2), at(3)) else {
        return Err("WITHIN must be followed by INTERVAL '<n>' SECOND|MINUTE|HOUR|DAY".into());
    };
    if word(interval).as_deref() != Some("INTERVAL") {
        return Err("WITHIN must be followed by INTERVAL '<n>' <unit>".into());
    }
    let Token::SingleQuotedString(n) = &tokens[amount] else {
        return Err("WITHIN INTERVAL needs a quoted amount, e.g. INTERVAL '10' SECOND".into());
    };
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("WITHIN INTERVAL '{n}': not a number"))?;
    let seconds = match word(unit).as_deref() {
        Some("MILLISECOND" | "MILLISECONDS") => n / 1000.0,
        Some("SECOND" | "SECONDS") => n,
        Some("MINUTE" | "MINUTES") => n * 60.0,
        Some("HOUR" | "HOURS") => n * 3600.0,
        Some("DAY" | "DAYS") => n * 86_400.0,
        _ => return Err("WITHIN INTERVAL: the unit must be SECOND, MINUTE, HOUR or DAY".into()),
    };
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err("WITHIN must be a positive interval".into());
    }
    let cut = significant[pos]..=unit;
    let text: String = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| !cut.contains(i))
        .map(|(_, t)| t.to_string())
        .collect();
    Ok((text, Some((seconds * 1e6).round() as i64)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn columns() -> Vec<(String, Ty)> {
        [
            ("invoice_id", Ty::Str),
            ("user_id", Ty::Str),
            ("quantity", Ty::Str),
            ("purchase_time", Ty::Time),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), *t))
        .collect()
    }

    fn err(sql: &str) -> String {
        compile(sql, "T", &columns(), "purchase_time")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn within_is_read_and_removed() {
        let q = compile(
            "SELECT * FROM T MATCH_RECOGNIZE (PARTITION BY user_id ORDER BY purchase_time \
             MEASURES A.invoice_id AS id PATTERN (A B+?) WITHIN INTERVAL '10' SECOND \
             DEFINE B AS B.quantity > 3)",
            "T",
            &columns(),
            "purchase_time",
        )
        .unwrap();
        assert_eq!(q.within, Some(10_000_000));
        assert_eq!(q.program.vars, vec!["A", "B"]);
        assert!(q.defines[0].is_none() && q.defines[1].is_some());
    }

    #[test]
    fn unsupported_syntax_is_named() {
        let base =
            "ORDER BY purchase_time MEASURES A.invoice_id AS id PATTERN (A) DEFINE A AS true";
        assert!(
            err(&format!(
                "SELECT invoice_id FROM T MATCH_RECOGNIZE ({base})"
            ))
            .contains("SELECT *")
        );
        assert!(err(&format!("SELECT * FROM U MATCH_RECOGNIZE ({base})")).contains("reads U"));
        assert!(
            err(&format!(
                "SELECT * FROM T MATCH_RECOGNIZE ({base}) WHERE 1 = 1"
            ))
            .contains("WHERE")
        );
        assert!(err("SELECT * FROM T MATCH_RECOGNIZE (ORDER BY purchase_time MEASURES A.x AS x PATTERN (A) DEFINE A AS true)").contains("unknown column \"x\""));
        assert!(
            err("SELECT * FROM T MATCH_RECOGNIZE (ORDER BY user_id PATTERN (A) DEFINE A AS true)")
                .contains("event-time")
        );
        assert!(err("SELECT * FROM T MATCH_RECOGNIZE (ORDER BY purchase_time ALL ROWS PER MATCH PATTERN (A) DEFINE A AS true)").contains("ALL ROWS"));
        assert!(err("SELECT * FROM T MATCH_RECOGNIZE (ORDER BY purchase_time PATTERN (A) DEFINE A AS LOWER(A.quantity) = 'x')").contains("LOWER"));
        assert!(err("SELECT * FROM T MATCH_RECOGNIZE (ORDER BY purchase_time PATTERN (A) DEFINE B AS true)").contains("DEFINE B"));
        assert!(err("SELECT * FROM T MATCH_RECOGNIZE (ORDER BY purchase_time PATTERN (A B) WITHIN 10 DEFINE A AS true)").contains("WITHIN"));
        assert!(err("SELECT * FROM T MATCH_RECOGNIZE (ORDER BY purchase_time PATTERN (^ A) DEFINE A AS true)").contains("anchor"));
        assert!(err("SELECT * FROM T MATCH_RECOGNIZE (").starts_with("SQL"));
    }
}
