//! Values as Flink SQL sees them, and its coercions: a STRING compared with a number is cast
//! to that number (BIGINT truncates: `'3.9' > 3` is false), a CAST that fails is an error for
//! that row, INT arithmetic and `AVG` stay INT.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::sync::Arc;

use crate::gold::detectors::show_time;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Shared text: evaluating `X.col` clones a value, and a string clone must not allocate.
    Str(#[serde(with = "shared_str")] Arc<str>),
    /// Microseconds since the epoch (Flink's TIMESTAMP(3), no zone).
    Time(i64),
}

/// A value's static type (for the output table's columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int,
    Float,
    Str,
    Time,
}

impl Ty {
    /// The type a silver column of `field` type has in a query.
    pub fn of(field: isolake_data::record::FieldType) -> Self {
        use isolake_data::record::FieldType;
        match field {
            FieldType::String => Ty::Str,
            FieldType::Integer => Ty::Int,
            FieldType::Double => Ty::Float,
            FieldType::Boolean => Ty::Bool,
            FieldType::Timestamp => Ty::Time,
        }
    }
}

pub type EvalResult<T> = Result<T, String>;

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// `CAST(self AS ty)` with Flink's rules.
    pub fn cast(&self, ty: Ty) -> EvalResult<Value> {
        Ok(match (self, ty) {
            (Value::Null, _) => Value::Null,
            (Value::Int(i), Ty::Int) => Value::Int(*i),
            (Value::Float(f), Ty::Int) => Value::Int(f.trunc() as i64),
            (Value::Str(s), Ty::Int) => Value::Int(parse_bigint(s)?),
            (Value::Bool(b), Ty::Int) => Value::Int(i64::from(*b)),
            (Value::Int(i), Ty::Float) => Value::Float(*i as f64),
            (Value::Float(f), Ty::Float) => Value::Float(*f),
            (Value::Str(s), Ty::Float) => Value::Float(
                s.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("cannot cast {s:?} to DOUBLE"))?,
            ),
            (Value::Str(s), Ty::Str) => Value::Str(Arc::clone(s)),
            (v, Ty::Str) => Value::Str(v.flink_text().into()),
            (Value::Bool(b), Ty::Bool) => Value::Bool(*b),
            (Value::Str(s), Ty::Bool) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(format!("cannot cast {s:?} to BOOLEAN")),
            },
            (Value::Time(t), Ty::Time) => Value::Time(*t),
            (Value::Str(s), Ty::Time) => Value::Time(
                crate::silver::typing::parse_event_time(s.trim(), Some("%Y-%m-%d %H:%M:%S%.f"))
                    .or_else(|| crate::silver::typing::parse_event_time(s.trim(), None))
                    .ok_or_else(|| format!("cannot cast {s:?} to TIMESTAMP"))?,
            ),
            (v, ty) => return Err(format!("cannot cast {} to {ty:?}", v.flink_text())),
        })
    }

    /// How Flink prints the value (TIMESTAMP(3) as `2025-07-10 14:00:04.000`).
    pub fn flink_text(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format!("{f:?}"),
            Value::Str(s) => s.to_string(),
            Value::Time(t) => show_time(*t),
        }
    }

    /// The value in an alert's `measures` JSON, as Flink prints it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => s.to_string().into(),
            Value::Time(t) => show_time(*t).into(),
        }
    }

    /// SQL comparison; `None` when either side is NULL.
    pub fn compare(&self, other: &Value) -> EvalResult<Option<Ordering>> {
        use Value::*;
        Ok(match (self, other) {
            (Null, _) | (_, Null) => None,
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Int(_) | Float(_), Int(_) | Float(_)) => self.as_f64().partial_cmp(&other.as_f64()),
            (Str(a), Str(b)) => Some(a.cmp(b)),
            (Str(_), Int(_)) => self.cast(Ty::Int)?.compare(other)?,
            (Int(_), Str(_)) => self.compare(&other.cast(Ty::Int)?)?,
            (Str(_), Float(_)) => self.cast(Ty::Float)?.compare(other)?,
            (Float(_), Str(_)) => self.compare(&other.cast(Ty::Float)?)?,
            (Time(a), Time(b)) => Some(a.cmp(b)),
            (Time(_), Str(_)) => self.compare(&other.cast(Ty::Time)?)?,
            (Str(_), Time(_)) => self.cast(Ty::Time)?.compare(other)?,
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (a, b) => {
                return Err(format!(
                    "cannot compare {} with {}",
                    a.flink_text(),
                    b.flink_text()
                ));
            }
        })
    }

    fn as_f64(&self) -> f64 {
        match self {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            _ => f64::NAN,
        }
    }

    /// `+ - * / %` with INT staying INT (division truncates) and a STRING operand cast to the
    /// other side's number type.
    pub fn arithmetic(&self, op: char, other: &Value) -> EvalResult<Value> {
        use Value::*;
        match (self, other) {
            (Null, _) | (_, Null) => Ok(Null),
            (Str(_), Int(_)) => self.cast(Ty::Int)?.arithmetic(op, other),
            (Int(_), Str(_)) => self.arithmetic(op, &other.cast(Ty::Int)?),
            (Str(_), _) => self.cast(Ty::Float)?.arithmetic(op, other),
            (_, Str(_)) => self.arithmetic(op, &other.cast(Ty::Float)?),
            (Int(a), Int(b)) => {
                let (a, b) = (*a, *b);
                let r = match op {
                    '+' => a.checked_add(b),
                    '-' => a.checked_sub(b),
                    '*' => a.checked_mul(b),
                    '/' if b == 0 => return Err("division by zero".into()),
                    '/' => a.checked_div(b),
                    '%' if b == 0 => return Err("division by zero".into()),
                    _ => a.checked_rem(b),
                };
                r.map(Int).ok_or_else(|| "INT overflow".into())
            }
            (Int(_) | Float(_), Int(_) | Float(_)) => {
                let (a, b) = (self.as_f64(), other.as_f64());
                Ok(Float(match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    '/' => a / b,
                    _ => a % b,
                }))
            }
            (a, b) => Err(format!(
                "cannot compute {} {op} {}",
                a.flink_text(),
                b.flink_text()
            )),
        }
    }
}

/// Serde for `Arc<str>` as a plain string (serde's `rc` feature is not enabled).
mod shared_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        Ok(String::deserialize(d)?.into())
    }
}

/// Flink's STRING → BIGINT: spaces trimmed, `+` and leading zeros accepted, a fraction
/// truncated; anything else (`abc`, ``, `1e1`) is an error.
pub fn parse_bigint(text: &str) -> EvalResult<i64> {
    let t = text.trim();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let valid = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err(format!("cannot cast {text:?} to BIGINT"));
    }
    let n: i64 = whole
        .parse()
        .map_err(|_| format!("{text:?} is out of BIGINT range"))?;
    Ok(if negative { -n } else { n })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strings_compare_numerically_like_flink() {
        let ten = Value::Str("10".into());
        assert_eq!(ten.compare(&Value::Int(3)), Ok(Some(Ordering::Greater)));
        let frac = Value::Str("3.9".into());
        assert_eq!(frac.compare(&Value::Int(3)), Ok(Some(Ordering::Equal)));
        assert_eq!(parse_bigint(" +007 "), Ok(7));
        for bad in ["abc", "", "1e1", "--1"] {
            assert!(parse_bigint(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Value::Int(3).arithmetic('/', &Value::Int(2)),
            Ok(Value::Int(1))
        );
        assert_eq!(show_time(1_752_156_017_999_999), "2025-07-10 14:00:17.999");
    }
}
