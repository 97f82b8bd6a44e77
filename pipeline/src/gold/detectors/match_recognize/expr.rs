//! DEFINE and MEASURES expressions: compiled from sqlparser's AST against the pattern's
//! variables and the silver columns, then evaluated over a (partial) match.
//!
//! `X.col` is the last row mapped to `X` so far (in DEFINE, the row being tested counts as
//! mapped to its variable); a bare `col` is the current row (the last row, in MEASURES).
//! Aggregates run over the rows mapped to their variable; `FIRST`/`LAST(X.col, n)` navigate
//! them.

use std::cmp::Ordering;

use sqlparser::ast::{
    self, BinaryOperator, CastKind, DataType, FunctionArg, FunctionArgExpr, FunctionArguments,
    UnaryOperator,
};

use super::value::{EvalResult, Ty, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Avg,
    Sum,
    Count,
    Min,
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    Col {
        var: Option<u8>,
        slot: usize,
    },
    Nav {
        first: bool,
        var: Option<u8>,
        slot: usize,
        offset: usize,
    },
    Agg {
        func: Agg,
        var: Option<u8>,
        arg: Option<Box<Expr>>,
    },
    Cast(Box<Expr>, Ty),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    Arith(char, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>, bool),
}

/// What names mean while compiling.
pub struct Names<'a> {
    /// Pattern variables, by index.
    pub vars: &'a [String],
    /// Silver columns and their types.
    pub columns: &'a [(String, Ty)],
    /// Columns used so far (slot → column index); grows as expressions compile.
    pub slots: Vec<usize>,
}

impl Names<'_> {
    fn var(&self, name: &str) -> Option<u8> {
        self.vars
            .iter()
            .position(|v| v == name)
            .or_else(|| self.vars.iter().position(|v| v.eq_ignore_ascii_case(name)))
            .map(|i| i as u8)
    }

    fn slot(&mut self, name: &str) -> Result<usize, String> {
        let column = self
            .columns
            .iter()
            .position(|(c, _)| c == name)
            .or_else(|| {
                self.columns
                    .iter()
                    .position(|(c, _)| c.eq_ignore_ascii_case(name))
            })
            .ok_or_else(|| {
                format!(
                    "unknown column {name:?} (the table has: {})",
                    self.columns
                        .iter()
                        .map(|(c, _)| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        Ok(match self.slots.iter().position(|c| *c == column) {
            Some(s) => s,
            None => {
                self.slots.push(column);
                self.slots.len() - 1
            }
        })
    }
}

/// Compiles an expression; `in_agg` forbids nested aggregates and navigation.
pub fn compile(e: &ast::Expr, names: &mut Names<'_>, in_agg: bool) -> Result<Expr, String> {
    use ast::Expr as E;
    let bx = |e: Expr| Box::new(e);
    Ok(match e {
        E::Nested(inner) => compile(inner, names, in_agg)?,
        E::Identifier(id) => Expr::Col {
            var: None,
            slot: names.slot(&id.value)?,
        },
        E::CompoundIdentifier(parts) if parts.len() == 2 => {
            let var = names.var(&parts[0].value).ok_or_else(|| {
                format!(
                    "{} is not a pattern variable (PATTERN has: {})",
                    parts[0].value,
                    names.vars.join(", ")
                )
            })?;
            Expr::Col {
                var: Some(var),
                slot: names.slot(&parts[1].value)?,
            }
        }
        E::Value(v) => Expr::Lit(literal(&v.value)?),
        E::Cast {
            kind,
            expr,
            data_type,
            ..
        } => {
            if !matches!(kind, CastKind::Cast) {
                return Err(format!("{kind:?} is not supported, use CAST"));
            }
            Expr::Cast(bx(compile(expr, names, in_agg)?), sql_type(data_type)?)
        }
        E::UnaryOp { op, expr } => {
            let inner = bx(compile(expr, names, in_agg)?);
            match op {
                UnaryOperator::Not => Expr::Not(inner),
                UnaryOperator::Minus => Expr::Neg(inner),
                UnaryOperator::Plus => *inner,
                other => return Err(format!("operator {other} is not supported")),
            }
        }
        E::IsNull(inner) => Expr::IsNull(bx(compile(inner, names, in_agg)?), false),
        E::IsNotNull(inner) => Expr::IsNull(bx(compile(inner, names, in_agg)?), true),
        E::BinaryOp { left, op, right } => {
            let l = bx(compile(left, names, in_agg)?);
            let r = bx(compile(right, names, in_agg)?);
            let cmp = |c| Expr::Cmp(c, l.clone(), r.clone());
            match op {
                BinaryOperator::Plus => Expr::Arith('+', l, r),
                BinaryOperator::Minus => Expr::Arith('-', l, r),
                BinaryOperator::Multiply => Expr::Arith('*', l, r),
                BinaryOperator::Divide => Expr::Arith('/', l, r),
                BinaryOperator::Modulo => Expr::Arith('%', l, r),
                BinaryOperator::Eq => cmp(Cmp::Eq),
                BinaryOperator::NotEq => cmp(Cmp::Ne),
                BinaryOperator::Lt => cmp(Cmp::Lt),
                BinaryOperator::LtEq => cmp(Cmp::Le),
                BinaryOperator::Gt => cmp(Cmp::Gt),
                BinaryOperator::GtEq => cmp(Cmp::Ge),
                BinaryOperator::And => Expr::And(l, r),
                BinaryOperator::Or => Expr::Or(l, r),
                other => return Err(format!("operator {other} is not supported")),
            }
        }
        E::Function(f) => function(f, names, in_agg)?,
        other => {
            return Err(format!(
                "`{other}` is not supported (use comparisons, arithmetic, AND/OR/NOT, CAST, \
                 AVG/SUM/COUNT/MIN/MAX, FIRST/LAST)"
            ));
        }
    })
}

fn literal(v: &ast::Value) -> Result<Value, String> {
    Ok(match v {
        ast::Value::Number(text, _) => match text.parse::<i64>() {
            Ok(i) if !text.contains(['.', 'e', 'E']) => Value::Int(i),
            _ => Value::Float(
                text.parse()
                    .map_err(|_| format!("{text} is not a number"))?,
            ),
        },
        ast::Value::SingleQuotedString(s) => Value::Str(s.as_str().into()),
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::Null => Value::Null,
        other => return Err(format!("literal {other} is not supported")),
    })
}

fn sql_type(t: &DataType) -> Result<Ty, String> {
    Ok(match t {
        DataType::Int(_)
        | DataType::Integer(_)
        | DataType::BigInt(_)
        | DataType::SmallInt(_)
        | DataType::TinyInt(_) => Ty::Int,
        DataType::Double(_)
        | DataType::DoublePrecision
        | DataType::Float(_)
        | DataType::Real
        | DataType::Decimal(_)
        | DataType::Numeric(_) => Ty::Float,
        DataType::Varchar(_) | DataType::String(_) | DataType::Char(_) | DataType::Text => Ty::Str,
        DataType::Boolean | DataType::Bool => Ty::Bool,
        DataType::Timestamp(..) => Ty::Time,
        other => return Err(format!("CAST to {other} is not supported")),
    })
}

fn function(f: &ast::Function, names: &mut Names<'_>, in_agg: bool) -> Result<Expr, String> {
    let name = f.name.to_string().to_ascii_uppercase();
    let FunctionArguments::List(list) = &f.args else {
        return Err(format!("{name} needs arguments"));
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() || f.filter.is_some() {
        return Err(format!(
            "{name}: DISTINCT, FILTER and other clauses are not supported"
        ));
    }
    let args: Vec<&FunctionArgExpr> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(e) => Ok(e),
            _ => Err(format!("{name}: named arguments are not supported")),
        })
        .collect::<Result<_, _>>()?;
    let agg = match name.as_str() {
        "AVG" => Some(Agg::Avg),
        "SUM" => Some(Agg::Sum),
        "COUNT" => Some(Agg::Count),
        "MIN" => Some(Agg::Min),
        "MAX" => Some(Agg::Max),
        _ => None,
    };
    if (agg.is_some() || name == "FIRST" || name == "LAST") && in_agg {
        return Err(format!("{name} inside an aggregate is not supported"));
    }
    if let Some(func) = agg {
        let [arg] = args.as_slice() else {
            return Err(format!("{name} takes one argument"));
        };
        return match arg {
            FunctionArgExpr::Wildcard if func == Agg::Count => Ok(Expr::Agg {
                func,
                var: None,
                arg: None,
            }),
            FunctionArgExpr::QualifiedWildcard(var) if func == Agg::Count => {
                let var = names
                    .var(&var.to_string())
                    .ok_or_else(|| format!("{var} is not a pattern variable"))?;
                Ok(Expr::Agg {
                    func,
                    var: Some(var),
                    arg: None,
                })
            }
            FunctionArgExpr::Expr(e) => {
                let arg = compile(e, names, true)?;
                let mut vars = Vec::new();
                arg.vars(&mut vars);
                vars.sort_unstable();
                vars.dedup();
                let var = match vars.as_slice() {
                    [] => None,
                    [v] => Some(*v),
                    _ => return Err(format!("{name} mixes pattern variables")),
                };
                Ok(Expr::Agg {
                    func,
                    var,
                    arg: Some(Box::new(arg)),
                })
            }
            _ => Err(format!("{name}(*) is not supported")),
        };
    }
    if name == "FIRST" || name == "LAST" {
        let (col, offset) = match args.as_slice() {
            [FunctionArgExpr::Expr(c)] => (c, 0),
            [
                FunctionArgExpr::Expr(c),
                FunctionArgExpr::Expr(ast::Expr::Value(v)),
            ] => {
                let offset = match &v.value {
                    ast::Value::Number(n, _) => n.parse::<usize>().ok(),
                    _ => None,
                }
                .ok_or_else(|| format!("{name}: the offset must be a whole number"))?;
                (c, offset)
            }
            _ => return Err(format!("{name} takes a column and an optional offset")),
        };
        let Expr::Col { var, slot } = compile(col, names, true)? else {
            return Err(format!("{name} navigates a column, e.g. {name}(A.price)"));
        };
        return Ok(Expr::Nav {
            first: name == "FIRST",
            var,
            slot,
            offset,
        });
    }
    Err(format!(
        "function {name} is not supported (supported: AVG, SUM, COUNT, MIN, MAX, FIRST, LAST, \
         CAST)"
    ))
}

/// A partial or complete match: its rows (row-major, `width` values each, in slot order)
/// and the variable of each row.
pub struct Scope<'a> {
    pub values: &'a [Value],
    pub width: usize,
    pub classes: &'a [u8],
}

impl Scope<'_> {
    fn row(&self, i: usize) -> &[Value] {
        &self.values[i * self.width..(i + 1) * self.width]
    }
}

impl Expr {
    fn vars(&self, out: &mut Vec<u8>) {
        match self {
            Expr::Col { var: Some(v), .. } => out.push(*v),
            Expr::Cast(e, _) | Expr::Not(e) | Expr::Neg(e) | Expr::IsNull(e, _) => e.vars(out),
            Expr::Cmp(_, a, b) | Expr::Arith(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                a.vars(out);
                b.vars(out);
            }
            _ => {}
        }
    }

    /// The value over a match (the current row is the scope's last).
    pub fn eval(&self, s: &Scope<'_>) -> EvalResult<Value> {
        self.eval_with(s, None)
    }

    /// `row`: inside an aggregate, the row being aggregated.
    fn eval_with(&self, s: &Scope<'_>, row: Option<&[Value]>) -> EvalResult<Value> {
        Ok(match self {
            Expr::Lit(v) => v.clone(),
            Expr::Col { var, slot } => {
                if let Some(row) = row {
                    return Ok(row[*slot].clone());
                }
                let found = match var {
                    None => s.classes.len().checked_sub(1),
                    Some(v) => s.classes.iter().rposition(|c| c == v),
                };
                found.map_or(Value::Null, |i| s.row(i)[*slot].clone())
            }
            Expr::Nav {
                first,
                var,
                slot,
                offset,
            } => {
                let mut mapped = s
                    .classes
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| var.is_none_or(|v| **c == v))
                    .map(|(i, _)| i);
                let index = if *first {
                    mapped.nth(*offset)
                } else {
                    mapped.rev().nth(*offset)
                };
                index.map_or(Value::Null, |i| s.row(i)[*slot].clone())
            }
            Expr::Agg { func, var, arg } => aggregate(*func, *var, arg.as_deref(), s)?,
            Expr::Cast(e, ty) => e.eval_with(s, row)?.cast(*ty)?,
            Expr::Not(e) => match e.eval_with(s, row)? {
                Value::Bool(b) => Value::Bool(!b),
                Value::Null => Value::Null,
                other => return Err(format!("NOT of {}", other.flink_text())),
            },
            Expr::Neg(e) => Value::Int(0).arithmetic('-', &e.eval_with(s, row)?)?,
            Expr::Cmp(op, a, b) => {
                let ord = a.eval_with(s, row)?.compare(&b.eval_with(s, row)?)?;
                match ord {
                    None => Value::Null,
                    Some(o) => Value::Bool(match op {
                        Cmp::Eq => o == Ordering::Equal,
                        Cmp::Ne => o != Ordering::Equal,
                        Cmp::Lt => o == Ordering::Less,
                        Cmp::Le => o != Ordering::Greater,
                        Cmp::Gt => o == Ordering::Greater,
                        Cmp::Ge => o != Ordering::Less,
                    }),
                }
            }
            Expr::Arith(op, a, b) => a
                .eval_with(s, row)?
                .arithmetic(*op, &b.eval_with(s, row)?)?,
            Expr::And(a, b) => {
                let l = truth(a.eval_with(s, row)?)?;
                if l == Some(false) {
                    return Ok(Value::Bool(false));
                }
                match (l, truth(b.eval_with(s, row)?)?) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                }
            }
            Expr::Or(a, b) => {
                let l = truth(a.eval_with(s, row)?)?;
                if l == Some(true) {
                    return Ok(Value::Bool(true));
                }
                match (l, truth(b.eval_with(s, row)?)?) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                }
            }
            Expr::IsNull(e, negated) => Value::Bool(e.eval_with(s, row)?.is_null() != *negated),
        })
    }

    /// The static type of the value (for the output table); `None`: always NULL.
    pub fn ty(&self, slot_type: &dyn Fn(usize) -> Ty) -> Option<Ty> {
        Some(match self {
            Expr::Lit(v) => match v {
                Value::Null => return None,
                Value::Bool(_) => Ty::Bool,
                Value::Int(_) => Ty::Int,
                Value::Float(_) => Ty::Float,
                Value::Str(_) => Ty::Str,
                Value::Time(_) => Ty::Time,
            },
            Expr::Col { slot, .. } | Expr::Nav { slot, .. } => slot_type(*slot),
            Expr::Agg {
                func: Agg::Count, ..
            } => Ty::Int,
            Expr::Agg { arg, .. } => arg.as_ref()?.ty(slot_type)?,
            Expr::Cast(_, t) => *t,
            Expr::Not(_) | Expr::Cmp(..) | Expr::And(..) | Expr::Or(..) | Expr::IsNull(..) => {
                Ty::Bool
            }
            Expr::Neg(e) => e.ty(slot_type)?,
            Expr::Arith(_, a, b) => match (a.ty(slot_type)?, b.ty(slot_type)?) {
                (Ty::Int, Ty::Int) | (Ty::Int, Ty::Str) | (Ty::Str, Ty::Int) => Ty::Int,
                _ => Ty::Float,
            },
        })
    }
}

/// SQL truth of a boolean value (NULL stays unknown).
pub fn truth(v: Value) -> EvalResult<Option<bool>> {
    match v {
        Value::Bool(b) => Ok(Some(b)),
        Value::Null => Ok(None),
        other => Err(format!("{} is not a boolean", other.flink_text())),
    }
}

fn aggregate(func: Agg, var: Option<u8>, arg: Option<&Expr>, s: &Scope<'_>) -> EvalResult<Value> {
    let rows = s
        .classes
        .iter()
        .enumerate()
        .filter(|(_, c)| var.is_none_or(|v| **c == v))
        .map(|(i, _)| s.row(i));
    let Some(arg) = arg else {
        return Ok(Value::Int(rows.count() as i64));
    };
    let mut count = 0i64;
    let mut acc: Option<Value> = None;
    for row in rows {
        let v = arg.eval_with(s, Some(row))?;
        if v.is_null() {
            continue;
        }
        count += 1;
        acc = Some(match (func, acc) {
            (_, None) => v,
            (Agg::Avg | Agg::Sum, Some(a)) => a.arithmetic('+', &v)?,
            (Agg::Min, Some(a)) => match v.compare(&a)? {
                Some(Ordering::Less) => v,
                _ => a,
            },
            (Agg::Max, Some(a)) => match v.compare(&a)? {
                Some(Ordering::Greater) => v,
                _ => a,
            },
            (Agg::Count, Some(a)) => a,
        });
    }
    Ok(match func {
        Agg::Count => Value::Int(count),
        Agg::Avg => match acc {
            // AVG of INT is INT (truncated), as in Flink.
            Some(sum) => sum.arithmetic('/', &Value::Int(count))?,
            None => Value::Null,
        },
        _ => acc.unwrap_or(Value::Null),
    })
}
