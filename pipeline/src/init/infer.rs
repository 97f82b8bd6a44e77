//! From the sample to a proposal: each field's type, the event-time column, the dedup key,
//! the model's features and silver casts for numeric text.
//!
//! Types follow what bronze's reader accepts for a declared type (`source::reader`): a
//! string field takes any value as its text (objects and arrays as their JSON), a double
//! takes integers, and anything else of the wrong JSON type is rescued and its row
//! quarantined by silver. So mixed kinds become string, integers mixed with doubles become
//! double, and a few values of another kind among numbers or booleans (bad data, at most 1
//! in 20) leave the type of the rest, noted.

use isolake_data::record::FieldType;

use super::error::InitError;
use super::sample::Sample;
use super::stats::{FieldStats, TimeFormat, ValueKind};

/// At most this share of a field's values (1 in N) may be of another kind than numbers or
/// booleans and still leave the field that type.
const OUTLIER_ONE_IN: usize = 20;

/// A field's proposed type and what the sample said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    /// Non-null values in the sample; the rest of the sample's objects had null or nothing.
    pub values: usize,
    pub nulls: usize,
    /// A timestamp field's format, or `EpochMs` for an integer field that can be the event
    /// time's source.
    pub time: Option<TimeFormat>,
    /// Non-null in every object, every value a distinct string or integer.
    pub unique: bool,
    pub note: Option<Note>,
}

/// Why a field got its type, when that is worth saying.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// Values of several kinds (first-seen order): kept as text.
    Mixed(Vec<ValueKind>),
    /// A few values of other kinds among the rest: bad data, rescued in bronze and
    /// quarantined by silver.
    Outliers {
        count: usize,
        kinds: Vec<ValueKind>,
        example: String,
    },
    /// Objects or arrays: kept as their JSON text.
    Json,
    /// Numeric text: kept as landed; silver could cast it to this type.
    NumericText(FieldType),
    /// Date-times in another format than the event time's: one `event_time_format`
    /// applies to every timestamp field, so it stays text.
    OtherTimeFormat(TimeFormat),
    /// Epoch milliseconds that the event time is computed from (`event_time_from`).
    EventTimeSource,
    /// Null or missing in every sampled object.
    AlwaysNull,
}

impl Note {
    /// One line, for the summary and the config's comment.
    pub fn describe(&self, ty: FieldType) -> String {
        let names = |kinds: &[ValueKind]| {
            kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Note::Mixed(kinds) => {
                let json = kinds
                    .iter()
                    .any(|k| matches!(k, ValueKind::Object | ValueKind::Array));
                let text = if json { ", objects as JSON text" } else { "" };
                format!("mixed: {} → string (kept as text{text})", names(kinds))
            }
            Note::Outliers {
                count,
                kinds,
                example,
            } => format!(
                "{count} value(s) of another kind ({}, e.g. {example}): bad data, rescued in \
                 bronze and quarantined by silver (valid_types)",
                names(kinds)
            ),
            Note::Json => "objects/arrays: kept as their JSON text".to_string(),
            Note::NumericText(cast) => format!(
                "numeric text, kept as landed ([silver] casts could make it {})",
                type_name(*cast)
            ),
            Note::OtherTimeFormat(format) => format!(
                "date-times ({}), kept as text: one event_time_format applies to every \
                 timestamp field",
                format.describe()
            ),
            Note::EventTimeSource => format!(
                "epoch milliseconds: the event time is computed from it, the field stays {}",
                type_name(ty)
            ),
            Note::AlwaysNull => "always null in the sample: typed string".to_string(),
        }
    }
}

/// The config's name of a type.
pub fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "string",
        FieldType::Integer => "integer",
        FieldType::Double => "double",
        FieldType::Boolean => "boolean",
        FieldType::Timestamp => "timestamp",
    }
}

/// The event-time column: a declared timestamp field, or computed from an epoch field.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTime {
    pub column: String,
    /// `schema.event_time_from`: the declared field the column is computed from.
    pub from: Option<String>,
    pub format: TimeFormat,
}

/// Everything init proposes.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub fields: Vec<Field>,
    pub event_time: EventTime,
    pub key: Option<String>,
    /// Numeric fields for the model (not the key, ids or times).
    pub features: Vec<String>,
    /// Numeric text fields and the type every sampled value parses as.
    pub casts: Vec<(String, FieldType)>,
}

impl Proposal {
    /// What to say of a field besides its type: its role, its note, its nulls.
    pub fn remarks(&self, field: &Field) -> Vec<String> {
        let mut out = Vec::new();
        if self.key.as_ref() == Some(&field.name) {
            out.push("the key (unique, never null in the sample)".to_string());
        }
        if self.event_time.column == field.name {
            out.push(format!(
                "the event time ({})",
                self.event_time.format.describe()
            ));
        }
        if let Some(note) = &field.note {
            out.push(note.describe(field.ty));
        }
        if field.nulls > 0 && field.values > 0 {
            let objects = field.values + field.nulls;
            out.push(format!("null or missing in {} of {objects}", field.nulls));
        }
        out
    }
}

/// The proposal for a sample; fails only when no field can be the event time.
pub fn propose(sample: &Sample) -> Result<Proposal, InitError> {
    let objects = sample.stats.objects;
    let mut fields: Vec<Field> = sample.fields.iter().map(|s| field(s, objects)).collect();
    let event_time = choose_event_time(&mut fields)?;
    let key = choose_key(&fields, &event_time);
    let features = fields
        .iter()
        .filter(|f| matches!(f.ty, FieldType::Integer | FieldType::Double))
        .filter(|f| Some(&f.name) != key.as_ref() && f.time.is_none() && !id_like(&f.name))
        .map(|f| f.name.clone())
        .collect();
    let casts = fields
        .iter()
        .filter_map(|f| match f.note {
            Some(Note::NumericText(ty)) => Some((f.name.clone(), ty)),
            _ => None,
        })
        .collect();
    Ok(Proposal {
        fields,
        event_time,
        key,
        features,
        casts,
    })
}

/// One field's type from its values' kinds.
fn field(stats: &FieldStats, objects: usize) -> Field {
    let kinds = stats.kinds();
    let only = |allowed: &[ValueKind]| kinds.iter().all(|k| allowed.contains(k));
    let (ty, note) = if stats.values == 0 {
        (FieldType::String, Some(Note::AlwaysNull))
    } else if only(&[ValueKind::Integer]) {
        (FieldType::Integer, None)
    } else if only(&[ValueKind::Integer, ValueKind::Double]) {
        (FieldType::Double, None)
    } else if only(&[ValueKind::Boolean]) {
        (FieldType::Boolean, None)
    } else if only(&[ValueKind::String]) {
        text_type(stats)
    } else if only(&[ValueKind::Object, ValueKind::Array]) {
        (FieldType::String, Some(Note::Json))
    } else {
        mixed_type(stats, &kinds)
    };
    let time = match ty {
        FieldType::Timestamp => stats.time_format(),
        FieldType::Integer
            if note.is_none() && stats.epoch_ms() && time_name_rank(&stats.name) < 4 =>
        {
            Some(TimeFormat::EpochMs)
        }
        _ => None,
    };
    let pure = note.is_none() || matches!(note, Some(Note::NumericText(_)));
    Field {
        name: stats.name.clone(),
        ty,
        values: stats.values,
        nulls: objects.saturating_sub(stats.values),
        time,
        unique: pure && stats.distinct() && stats.values == objects,
        note,
    }
}

/// Text: a date-time if every value parses with one format, else string (numeric text noted).
fn text_type(stats: &FieldStats) -> (FieldType, Option<Note>) {
    if stats.time_format().is_some() {
        (FieldType::Timestamp, None)
    } else if stats.text_integers() {
        (
            FieldType::String,
            Some(Note::NumericText(FieldType::Integer)),
        )
    } else if stats.text_numbers() {
        (
            FieldType::String,
            Some(Note::NumericText(FieldType::Double)),
        )
    } else {
        (FieldType::String, None)
    }
}

/// Several kinds: numbers or booleans with a few strays keep their type; else string.
fn mixed_type(stats: &FieldStats, kinds: &[ValueKind]) -> (FieldType, Option<Note>) {
    let numbers = stats.count(ValueKind::Integer) + stats.count(ValueKind::Double);
    let booleans = stats.count(ValueKind::Boolean);
    let (ty, main, own): (_, _, &[ValueKind]) = if numbers >= booleans {
        let ty = match stats.count(ValueKind::Double) {
            0 => FieldType::Integer,
            _ => FieldType::Double,
        };
        (ty, numbers, &[ValueKind::Integer, ValueKind::Double])
    } else {
        (FieldType::Boolean, booleans, &[ValueKind::Boolean])
    };
    let strays = stats.values - main;
    if main > 0 && strays * OUTLIER_ONE_IN <= stats.values {
        let others: Vec<ValueKind> = kinds.iter().filter(|k| !own.contains(k)).copied().collect();
        let example = others
            .first()
            .and_then(|k| stats.example(*k))
            .unwrap_or_default()
            .to_string();
        let note = Note::Outliers {
            count: strays,
            kinds: others,
            example,
        };
        return (ty, Some(note));
    }
    (FieldType::String, Some(Note::Mixed(kinds.to_vec())))
}

/// How much a name looks like an event time: 0 best; 4 not at all (text date-times may still
/// be the event time, integers not: a 13-digit number could as well be an id).
fn time_name_rank(name: &str) -> u8 {
    let lower = name.to_ascii_lowercase();
    let ends = |suffixes: &[&str]| suffixes.iter().any(|s| lower.ends_with(s));
    if lower == "event_time" || lower == "eventtime" {
        0
    } else if ends(&["_time", "_timestamp", "_ts"]) || (lower.len() > 4 && ends(&["time"])) {
        1
    } else if matches!(lower.as_str(), "timestamp" | "ts" | "time" | "datetime") {
        2
    } else if lower.ends_with("_at") || name.ends_with("At") {
        3
    } else {
        4
    }
}

/// Prefers a text date-time, then epoch milliseconds, by name then field order. Timestamp
/// fields in another format stay text (one format per schema).
fn choose_event_time(fields: &mut [Field]) -> Result<EventTime, InitError> {
    let candidate = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.time.is_some())
        .min_by_key(|(i, f)| (time_name_rank(&f.name), f.ty != FieldType::Timestamp, *i))
        .map(|(i, f)| (i, f.ty, f.time));
    let Some((chosen, ty, Some(format))) = candidate else {
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        return Err(InitError::NoEventTime {
            fields: names.join(", "),
        });
    };
    for (i, f) in fields.iter_mut().enumerate() {
        if i != chosen && f.ty == FieldType::Timestamp && f.time != Some(format) {
            f.note = f.time.map(Note::OtherTimeFormat);
            f.ty = FieldType::String;
            f.time = None;
        }
    }
    if ty == FieldType::Timestamp {
        return Ok(EventTime {
            column: fields[chosen].name.clone(),
            from: None,
            format,
        });
    }
    fields[chosen].note = Some(Note::EventTimeSource);
    // The computed column must not be a declared field.
    let mut column = "event_time".to_string();
    while fields.iter().any(|f| f.name == column) {
        column.push_str("_utc");
    }
    Ok(EventTime {
        column,
        from: Some(fields[chosen].name.clone()),
        format,
    })
}

/// A name that says it identifies something (`id`, `*_id`, `invoiceId`, `uuid`).
pub fn id_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "id"
        || lower.ends_with("_id")
        || name.ends_with("Id")
        || name.ends_with("ID")
        || matches!(lower.as_str(), "uuid" | "guid")
}

/// A unique, never-null string or integer field, id-like names first; text fields may be
/// keys without such a name, numbers not (a count can be unique in a small sample).
fn choose_key(fields: &[Field], event_time: &EventTime) -> Option<String> {
    let eligible = |f: &&Field| {
        f.unique
            && matches!(f.note, None | Some(Note::NumericText(_)))
            && matches!(f.ty, FieldType::String | FieldType::Integer)
            && f.name != event_time.column
            && Some(&f.name) != event_time.from.as_ref()
    };
    let by_name = fields.iter().filter(eligible).find(|f| id_like(&f.name));
    let text = || {
        fields
            .iter()
            .filter(eligible)
            .find(|f| f.ty == FieldType::String)
    };
    by_name.or_else(text).map(|f| f.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn stats(name: &str, values: &[Value]) -> FieldStats {
        let mut s = FieldStats::new(name);
        values.iter().for_each(|v| s.observe(v));
        s
    }

    #[test]
    fn types_from_kinds() {
        let ty = |values: &[Value]| {
            let f = field(&stats("x", values), values.len());
            (f.ty, f.note)
        };
        assert_eq!(ty(&[json!(1), json!(2.5)]), (FieldType::Double, None));
        assert_eq!(ty(&[json!(true), Value::Null]), (FieldType::Boolean, None));
        assert_eq!(ty(&[json!({"a": 1}), json!([1])]).1, Some(Note::Json));
        let mixed = ty(&[json!("a"), json!(1)]);
        assert_eq!(
            mixed,
            (
                FieldType::String,
                Some(Note::Mixed(vec![ValueKind::String, ValueKind::Integer]))
            )
        );
        let mut many: Vec<Value> = (0..19).map(|i| json!(i as f64 + 0.5)).collect();
        many.push(json!("12EUR"));
        let (t, note) = ty(&many);
        assert_eq!(t, FieldType::Double);
        assert!(
            matches!(note, Some(Note::Outliers { count: 1, .. })),
            "{note:?}"
        );
        assert_eq!(
            ty(&[json!("1"), json!("2")]).1,
            Some(Note::NumericText(FieldType::Integer))
        );
    }

    fn sample(fields: Vec<FieldStats>, objects: usize) -> Sample {
        let stats = super::super::sample::SampleStats {
            objects,
            ..Default::default()
        };
        Sample { stats, fields }
    }

    #[test]
    fn one_time_format_per_schema() {
        let fields = vec![
            stats(
                "created",
                &[json!("2025-07-10T14:00:00Z"), json!("2025-07-10T14:00:01Z")],
            ),
            stats(
                "event_time",
                &[
                    json!("2025-07-10 14:00:00.000"),
                    json!("2025-07-10 14:00:00.000"),
                ],
            ),
            stats(
                "at_ms",
                &[json!(1_752_156_000_000_i64), json!(1_752_156_000_001_i64)],
            ),
        ];
        let p = propose(&sample(fields, 2)).expect("a proposal");
        assert_eq!(p.event_time.column, "event_time");
        assert_eq!(
            p.event_time.format,
            TimeFormat::Chrono("%Y-%m-%d %H:%M:%S%.3f")
        );
        assert_eq!(p.fields[0].ty, FieldType::String);
        assert_eq!(
            p.fields[0].note,
            Some(Note::OtherTimeFormat(TimeFormat::Rfc3339))
        );
        // A 13-digit integer without a time's name is no time: a feature. The other
        // date-times are unique, but no key (a time says when, not which).
        assert_eq!(p.fields[2].time, None);
        assert_eq!(p.features, ["at_ms"]);
        assert_eq!(p.key, None);
        let none = propose(&sample(vec![stats("n", &[json!(1)])], 1));
        assert!(matches!(none, Err(InitError::NoEventTime { .. })));
    }

    #[test]
    fn names_rank_as_times() {
        let ranks: Vec<u8> = ["event_time", "purchase_time", "ts", "created_at", "amount"]
            .iter()
            .map(|n| time_name_rank(n))
            .collect();
        assert_eq!(ranks, [0, 1, 2, 3, 4]);
        assert!(id_like("invoice_id") && id_like("invoiceId") && !id_like("paid"));
    }
}
