//! Hostile keys: names of bronze's own columns, keys repeated in one object, odd names.

use serde_json::Value;

use super::Base;
use crate::line::{Line, quarantined, quarantined_without_id};
use crate::record::{insert, json_string, set, time};
use crate::rng::Rng;

/// Landed keys named like bronze's own columns, with hostile values.
const RESERVED: [(&str, &str); 6] = [
    ("_source_file", r#""evil.json""#),
    ("_source_line", "-1"),
    ("_ingested_at", r#""2999-01-01T00:00:00Z""#),
    ("_batch_id", "99999"),
    ("_rescued_data", r#"{"amount":"stolen"}"#),
    ("_corrupt_record", r#""not really corrupt""#),
];

/// Extra keys a valid record may carry: new bronze columns under `add_new_columns`, however
/// they are named (the first five differ from a declared column, a bronze column or each
/// other only in case; the last holds a NUL).
const ODD_KEYS: [&str; 16] = [
    "ID",
    "Amount",
    "_Source_File",
    "NOTE",
    "note",
    "",
    "a.b",
    "a/b",
    "a=b",
    "with space",
    "_source_file ",
    "a\nb",
    "a\u{1}b",
    "ünï",
    "𝔘nicode",
    "x\u{0}y",
];

/// Keys named like bronze's columns: rescued under their own names, lineage untouched. On
/// a valid record (one to three of them) it reaches silver; alone, it has no id.
pub fn reserved(rng: &mut Rng, mut base: Base<'_>) -> Line {
    if rng.chance(15) {
        let text = r#"{"_corrupt_record":"junk","_source_line":0}"#;
        let mut line = Line::new("reserved_only", text, quarantined_without_id());
        line.rescued = vec![
            ("_corrupt_record".into(), Value::from("junk")),
            ("_source_line".into(), Value::from(0)),
        ];
        return line;
    }
    let mut names: Vec<usize> = (0..RESERVED.len()).collect();
    rng.shuffle(&mut names);
    let mut rescued = Vec::new();
    for &i in &names[..rng.range(1, 3)] {
        let (key, value) = RESERVED[i];
        insert(rng, &mut base.good_fields, key, value.to_string());
        rescued.push((key.to_string(), serde_json::from_str(value).unwrap()));
    }
    let mut line = base.good_line("reserved_names");
    line.rescued = rescued;
    line
}

/// A key repeated in one object. The last value wins (as in the reader), so a hostile last
/// value quarantines the row with the last id, and a good last value keeps it valid.
pub fn duplicates(rng: &mut Rng, mut base: Base<'_>) -> Line {
    match rng.below(4) {
        0 => {
            let value = json_string("12.5");
            repeated(
                base,
                "duplicate_amount",
                "amount",
                value,
                "valid_types(amount)",
            )
        }
        1 => {
            let year = rng.range(1, 1999);
            let value = json_string(&time(rng, year));
            repeated(base, "duplicate_ts", "ts", value, "ts_sane")
        }
        2 => {
            // The first id is another (valid) record's, the last this one's own.
            let first = rng.pick(base.valid_ids).clone();
            set(&mut base.bad_fields, "id", json_string(&first));
            let own = json_string(&base.own_id);
            base.bad_fields.push(("id".into(), own));
            base.bad_fields.push(("amount".into(), "true".into()));
            let fate = quarantined(&base.own_id, "valid_types(amount)");
            base.bad_line("duplicate_id", fate)
        }
        _ => {
            // The first value is of the wrong type, the last is good: last wins, valid.
            let wrong = ("qty".into(), json_string("seven"));
            base.good_fields.insert(0, wrong);
            base.good_line("duplicate_last_good")
        }
    }
}

/// `bad` with `key` repeated last as `value`, quarantined with `bad_id` for `reason`.
fn repeated(
    mut base: Base<'_>,
    kind: &'static str,
    key: &str,
    value: String,
    reason: &'static str,
) -> Line {
    base.bad_fields.push((key.into(), value));
    base.bad_line(kind, quarantined(&base.bad_id, reason))
}

/// A valid record with one odd extra key: a new bronze column, silver does not carry it.
pub fn odd_key(rng: &mut Rng, mut base: Base<'_>) -> Line {
    let key = *rng.pick(&ODD_KEYS);
    insert(rng, &mut base.good_fields, key, "1".to_string());
    base.good_line("odd_key")
}
