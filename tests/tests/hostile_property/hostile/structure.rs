//! Hostile structure: nesting past serde_json's limit of 128, lines that are not one JSON
//! object, records missing fields, values of the wrong JSON type.

use super::Base;
use crate::line::{Fate, Line, quarantined, quarantined_without_id};
use crate::record::{insert, json_string, nested, object, set};
use crate::rng::Rng;

/// Nesting deeper than serde_json's limit (corrupt), a nested array as the amount
/// (`valid_types(amount)`), or an unknown field nested below the limit (valid).
pub fn nesting(rng: &mut Rng, mut base: Base<'_>) -> Line {
    match rng.below(6) {
        0 => Line::new(
            "deep_array",
            nested(rng.range(200, 3000), ""),
            Fate::Corrupt,
        ),
        1 => {
            let depth = rng.range(200, 3000);
            let text = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            Line::new("deep_object", text, Fate::Corrupt)
        }
        2 => {
            let depth = rng.range(200, 3000);
            insert(rng, &mut base.bad_fields, "deep", nested(depth, "1"));
            base.bad_line("deep_field", Fate::Corrupt)
        }
        3 => Line::new(
            "deep_unclosed",
            "[".repeat(rng.range(1000, 20000)),
            Fate::Corrupt,
        ),
        4 => {
            let amount = nested(rng.range(1, 60), "1");
            base.quarantined_with("nested_amount", "amount", amount, "valid_types(amount)")
        }
        _ => {
            let depth = rng.range(1, 100);
            insert(rng, &mut base.good_fields, "deep", nested(depth, "1"));
            base.good_line("nested_extra")
        }
    }
}

/// A line that is not one JSON object: truncated, an array or a scalar, NaN, a trailing
/// comma, a control character or a lone surrogate in a string, two objects — corrupt. Now
/// and then an object with its fields missing instead.
pub fn malformed(rng: &mut Rng, base: Base<'_>) -> Line {
    if rng.chance(20) {
        return missing_fields(rng, &base);
    }
    let (record, id) = (base.bad.line(), &base.bad_id);
    let truncated = record.as_bytes()[..rng.range(1, record.len() - 1)].to_vec();
    let text: Vec<u8> = match rng.below(17) {
        0 => truncated,
        1 => "[]".into(),
        2 => r#"[{"id":"x"}]"#.into(),
        3 => r#""text""#.into(),
        4 => "42".into(),
        5 => "null".into(),
        6 => "true".into(),
        7 => format!(r#"{{"id":"{id}","amount":NaN}}"#).into(),
        8 => "Infinity".into(),
        9 => format!(r#"{{"id":"{id}",}}"#).into(),
        10 => format!("{{\"id\":\"{id}\x01\"}}").into(),
        11 => r#"{"id":"\ud800"}"#.into(),
        12 => "\u{a0}".into(),
        13 => "\x0b".into(),
        14 => format!("{record} {record}").into(),
        15 => format!("{{'id':'{id}'}}").into(),
        _ => format!("{record}}}").into(),
    };
    Line::new("malformed", text, Fate::Corrupt)
}

/// An empty object (no id: `has_id`), or one with only an id (no time: `ts_sane`).
fn missing_fields(rng: &mut Rng, base: &Base<'_>) -> Line {
    let (text, fate) = if rng.chance(50) {
        ("{}".to_string(), quarantined_without_id())
    } else {
        let only_id = [("id".into(), json_string(&base.bad_id))];
        (object(&only_id, ":"), quarantined(&base.bad_id, "ts_sane"))
    };
    Line::new("missing_fields", text, fate)
}

/// A value of the wrong JSON type for its field (a number as the time, text as a number, a
/// null id): quarantined for `valid_types(...)`, or `has_id`.
pub fn wrong_type(rng: &mut Rng, mut base: Base<'_>) -> Line {
    let (key, value, reason) = *rng.pick(&[
        ("ts", "12345", "valid_types(ts)"),
        ("ts", r#""yesterday""#, "valid_types(ts)"),
        ("ts", r#""2021-13-45T99:00:00Z""#, "valid_types(ts)"),
        ("ts", r#""2021-02-30T00:00:00Z""#, "valid_types(ts)"),
        ("ts", r#""2021-01-01T00:00:00""#, "valid_types(ts)"),
        ("amount", r#""abc""#, "valid_types(amount)"),
        ("amount", "false", "valid_types(amount)"),
        ("amount", r#"{"v":1}"#, "valid_types(amount)"),
        ("qty", r#""7""#, "valid_types(qty)"),
        ("qty", "true", "valid_types(qty)"),
        ("id", "null", "has_id"),
    ]);
    set(&mut base.bad_fields, key, value.to_string());
    let id = (key != "id").then(|| base.bad_id.clone());
    base.bad_line("wrong_type", Fate::Quarantine { id, reason })
}
