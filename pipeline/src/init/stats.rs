//! What the sample showed of one field: how many values of each JSON kind, which date-time
//! formats every text value parses with, whether every value was distinct. Kept as counts
//! and flags, so that memory follows the number of fields, not of lines (distinct values
//! aside, which are dropped at the first repeat).

use std::collections::HashSet;

use serde_json::Value;

use crate::silver::typing::parse_event_time;

/// A JSON value's kind, as bronze's reader tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValueKind {
    Boolean,
    Integer,
    /// A number with a fraction or exponent, or an integer beyond `i64`.
    Double,
    String,
    Object,
    Array,
}

impl ValueKind {
    /// `None` for null: a null says nothing of the type.
    pub fn of(value: &Value) -> Option<Self> {
        Some(match value {
            Value::Null => return None,
            Value::Bool(_) => ValueKind::Boolean,
            Value::Number(n) if n.is_i64() => ValueKind::Integer,
            Value::Number(_) => ValueKind::Double,
            Value::String(_) => ValueKind::String,
            Value::Object(_) => ValueKind::Object,
            Value::Array(_) => ValueKind::Array,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Boolean => "boolean",
            ValueKind::Integer => "integer",
            ValueKind::Double => "double",
            ValueKind::String => "string",
            ValueKind::Object => "object",
            ValueKind::Array => "array",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a date-time is written, as `schema.event_time_format` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// The default (no `event_time_format`).
    Rfc3339,
    /// Integer milliseconds since the epoch (`"epoch_ms"`).
    EpochMs,
    /// A chrono format without zone (UTC).
    Chrono(&'static str),
}

impl TimeFormat {
    /// The value of `schema.event_time_format` (`None`: leave it out, RFC 3339).
    pub fn config_value(self) -> Option<&'static str> {
        match self {
            TimeFormat::Rfc3339 => None,
            TimeFormat::EpochMs => Some("epoch_ms"),
            TimeFormat::Chrono(format) => Some(format),
        }
    }

    pub fn describe(self) -> String {
        match self {
            TimeFormat::Rfc3339 => "RFC 3339".to_string(),
            TimeFormat::EpochMs => "epoch milliseconds".to_string(),
            TimeFormat::Chrono(format) => format!("format {format:?}"),
        }
    }
}

/// The formats a text value may be a date-time in, most specific first: the first one every
/// sampled value parses with is proposed (each checked with silver's own parser).
const TEXT_TIME_FORMATS: [TimeFormat; 11] = [
    TimeFormat::Rfc3339,
    TimeFormat::Chrono("%Y-%m-%d %H:%M:%S%.3f"),
    TimeFormat::Chrono("%Y-%m-%dT%H:%M:%S%.3f"),
    TimeFormat::Chrono("%Y-%m-%d %H:%M:%S%.6f"),
    TimeFormat::Chrono("%Y-%m-%dT%H:%M:%S%.6f"),
    TimeFormat::Chrono("%Y-%m-%d %H:%M:%S%.f"),
    TimeFormat::Chrono("%Y-%m-%dT%H:%M:%S%.f"),
    TimeFormat::Chrono("%Y-%m-%d %H:%M:%S"),
    TimeFormat::Chrono("%Y-%m-%dT%H:%M:%S"),
    TimeFormat::Chrono("%Y-%m-%d %H:%M:%S%.f%:z"),
    TimeFormat::Chrono("%Y/%m/%d %H:%M:%S"),
];

/// Epoch milliseconds of 2001-09-09 to 2286-11-20: an integer in this range that is named
/// like a time is taken for one (seconds or microseconds fall outside).
const EPOCH_MS: std::ops::Range<i64> = 1_000_000_000_000..10_000_000_000_000;

/// Longest example value kept for a note.
const EXAMPLE_CHARS: usize = 40;

/// One field's values over the sample.
#[derive(Debug, Clone)]
pub struct FieldStats {
    pub name: String,
    /// Non-null values (a missing key counts as null).
    pub values: usize,
    counts: [usize; 6],
    /// The kinds in the order they were first seen, with the first value of each.
    seen: Vec<(ValueKind, String)>,
    /// The formats every text value so far parses with.
    time_formats: Vec<TimeFormat>,
    /// Every text value is an integer / a finite number (trimmed, as silver's casts trim).
    text_integers: bool,
    text_numbers: bool,
    /// Every integer is in the epoch-milliseconds range.
    epoch_ms: bool,
    /// The values so far, while every one was a distinct string or integer.
    distinct: Option<HashSet<String>>,
}

impl FieldStats {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            values: 0,
            counts: [0; 6],
            seen: Vec::new(),
            time_formats: TEXT_TIME_FORMATS.to_vec(),
            text_integers: true,
            text_numbers: true,
            epoch_ms: true,
            distinct: Some(HashSet::new()),
        }
    }

    pub fn observe(&mut self, value: &Value) {
        let Some(kind) = ValueKind::of(value) else {
            return;
        };
        self.values += 1;
        self.counts[kind.index()] += 1;
        if !self.seen.iter().any(|(k, _)| *k == kind) {
            self.seen.push((kind, example(value)));
        }
        let key = match value {
            Value::String(text) => {
                self.observe_text(text);
                Some(text.clone())
            }
            Value::Number(n) => n.as_i64().map(|i| {
                self.epoch_ms &= EPOCH_MS.contains(&i);
                i.to_string()
            }),
            _ => None,
        };
        let repeated = match (&mut self.distinct, key) {
            (Some(set), Some(key)) => !set.insert(key),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if repeated {
            self.distinct = None;
        }
    }

    fn observe_text(&mut self, text: &str) {
        self.time_formats
            .retain(|f| parse_event_time(text, f.config_value()).is_some());
        let trimmed = text.trim();
        self.text_integers &= trimmed.parse::<i64>().is_ok();
        self.text_numbers &= trimmed.parse::<f64>().is_ok_and(f64::is_finite);
    }

    pub fn count(&self, kind: ValueKind) -> usize {
        self.counts[kind.index()]
    }

    /// The kinds seen, in first-seen order.
    pub fn kinds(&self) -> Vec<ValueKind> {
        self.seen.iter().map(|(k, _)| *k).collect()
    }

    /// The first value of `kind` seen, as JSON text (shortened).
    pub fn example(&self, kind: ValueKind) -> Option<&str> {
        self.seen
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, e)| e.as_str())
    }

    /// The first date-time format every text value parses with.
    pub fn time_format(&self) -> Option<TimeFormat> {
        self.time_formats.first().copied()
    }

    pub fn text_integers(&self) -> bool {
        self.text_integers
    }

    pub fn text_numbers(&self) -> bool {
        self.text_numbers
    }

    pub fn epoch_ms(&self) -> bool {
        self.epoch_ms
    }

    /// Every non-null value was a distinct string or integer.
    pub fn distinct(&self) -> bool {
        self.distinct.is_some()
    }
}

fn example(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(EXAMPLE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_formats_and_distinctness() {
        let mut t = FieldStats::new("t");
        for v in [
            json!("2025-07-10 14:00:00.000"),
            json!("2025-07-10 14:00:17.999"),
        ] {
            t.observe(&v);
        }
        assert_eq!(
            t.time_format(),
            Some(TimeFormat::Chrono("%Y-%m-%d %H:%M:%S%.3f"))
        );
        let mut r = FieldStats::new("r");
        r.observe(&json!("2024-01-01T00:04:08.278Z"));
        r.observe(&Value::Null);
        assert_eq!((r.time_format(), r.values), (Some(TimeFormat::Rfc3339), 1));
        let mut q = FieldStats::new("q");
        for v in [json!("1"), json!(" 2"), json!("1")] {
            q.observe(&v);
        }
        assert!(q.text_integers() && !q.distinct() && q.time_format().is_none());
        let mut m = FieldStats::new("m");
        for v in [json!("a"), json!(7), json!({"x": 1})] {
            m.observe(&v);
        }
        assert_eq!(
            m.kinds(),
            vec![ValueKind::String, ValueKind::Integer, ValueKind::Object]
        );
        assert_eq!(m.example(ValueKind::Object), Some("{\"x\":1}"));
        assert!(!m.distinct(), "an object is never a key");
    }
}
