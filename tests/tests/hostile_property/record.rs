//! Valid records of the declared schema, and the JSON text lines are written in.
//!
//! Lines are built as text from (key, JSON text) pairs rather than through `serde_json`, so
//! that they can hold what a JSON value cannot: repeated keys, numbers beyond f64, raw escapes.

use serde_json::Value;

use crate::rng::Rng;

/// A record of the declared schema.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub account: String,
    pub ts: String,
    pub amount: f64,
    pub qty: i64,
}

impl Record {
    /// A valid record: a time in 2015–2023, an amount in 0..10000, a quantity in 1..100.
    pub fn random(rng: &mut Rng, id: String) -> Self {
        let year = rng.range(2015, 2023);
        Self {
            id,
            account: format!("a{:02}", rng.below(20)),
            ts: time(rng, year),
            amount: rng.below(1_000_000) as f64 / 100.0,
            qty: rng.range(1, 99) as i64,
        }
    }

    /// Its fields as (key, JSON text), in schema order.
    pub fn fields(&self) -> Vec<(String, String)> {
        vec![
            ("id".into(), json_string(&self.id)),
            ("account".into(), json_string(&self.account)),
            ("ts".into(), json_string(&self.ts)),
            ("amount".into(), Value::from(self.amount).to_string()),
            ("qty".into(), self.qty.to_string()),
        ]
    }

    /// The record as one NDJSON line, fields in schema order.
    pub fn line(&self) -> String {
        object(&self.fields(), ":")
    }
}

/// An RFC 3339 time in `year`, with a random fraction and offset.
pub fn time(rng: &mut Rng, year: usize) -> String {
    let fraction = *rng.pick(&["", ".5", ".123", ".123456"]);
    let zone = *rng.pick(&["Z", "Z", "+00:00", "+02:00", "-05:30"]);
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{zone}",
        rng.range(1, 12),
        rng.range(1, 28),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    )
}

/// `s` as a JSON string literal, quotes and escapes included.
pub fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A JSON object from (key, JSON text) pairs, as written (repeated keys stay repeated).
pub fn object(fields: &[(String, String)], colon: &str) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}{colon}{v}", json_string(k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Replaces the value of `key` (its first occurrence).
pub fn set(fields: &mut [(String, String)], key: &str, value: String) {
    let field = fields.iter_mut().find(|(k, _)| k == key).unwrap();
    field.1 = value;
}

/// Inserts a field at a random position.
pub fn insert(rng: &mut Rng, fields: &mut Vec<(String, String)>, key: &str, value: String) {
    let at = rng.range(0, fields.len());
    fields.insert(at, (key.to_string(), value));
}

/// `depth` nested arrays around `inner`.
pub fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
}
