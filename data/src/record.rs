//! The canonical transaction record: what `isolake-gen` writes and what the pipeline expects
//! when its config declares no other schema.

use serde::{Deserialize, Serialize};

/// One card transaction, exactly as it appears on a line of a landed NDJSON file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub transaction_id: String,
    pub account_id: String,
    pub user_id: String,
    pub product_id: String,
    /// RFC 3339, UTC, millisecond precision: `2024-01-01T00:04:08.278Z`.
    pub event_time: String,
    pub amount: f64,
    pub quantity: i64,
    pub unit_cost: f64,
    pub merchant_category: String,
    pub channel: String,
    pub country: String,
    pub distance_from_home_km: f64,
    pub seconds_since_last_txn: f64,
    pub account_age_days: i64,
}

/// The logical type of a field of a landed record, as the pipeline's config names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Integer,
    Double,
    Boolean,
    Timestamp,
}

/// The canonical record's fields, in file order, with their types.
pub const CANONICAL_FIELDS: [(&str, FieldType); 14] = [
    ("transaction_id", FieldType::String),
    ("account_id", FieldType::String),
    ("user_id", FieldType::String),
    ("product_id", FieldType::String),
    ("event_time", FieldType::Timestamp),
    ("amount", FieldType::Double),
    ("quantity", FieldType::Integer),
    ("unit_cost", FieldType::Double),
    ("merchant_category", FieldType::String),
    ("channel", FieldType::String),
    ("country", FieldType::String),
    ("distance_from_home_km", FieldType::Double),
    ("seconds_since_last_txn", FieldType::Double),
    ("account_age_days", FieldType::Integer),
];

/// The canonical record's numeric fields: the default features of the isolation forest.
pub const NUMERIC_FEATURES: [&str; 6] = [
    "amount",
    "quantity",
    "unit_cost",
    "distance_from_home_km",
    "seconds_since_last_txn",
    "account_age_days",
];

/// The canonical event-time column.
pub const EVENT_TIME: &str = "event_time";
/// The canonical dedup key.
pub const KEY: &str = "transaction_id";

/// The polars schema of a typed (silver-like) canonical record: timestamps as UTC microseconds.
#[cfg(feature = "lake")]
pub fn canonical_schema() -> polars::prelude::Schema {
    use polars::prelude::*;
    CANONICAL_FIELDS
        .iter()
        .map(|(name, ty)| Field::new((*name).into(), ty.polars_dtype()))
        .collect()
}

#[cfg(feature = "lake")]
impl FieldType {
    /// The polars type a typed column of this field type has in isolake's tables.
    pub fn polars_dtype(self) -> polars::prelude::DataType {
        use polars::prelude::{DataType, TimeUnit, TimeZone};
        match self {
            FieldType::String => DataType::String,
            FieldType::Integer => DataType::Int64,
            FieldType::Double => DataType::Float64,
            FieldType::Boolean => DataType::Boolean,
            FieldType::Timestamp => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        }
    }
}

/// Typed canonical records as a frame of [`canonical_schema`]: event times parsed from
/// RFC 3339 into UTC microseconds.
#[cfg(feature = "lake")]
pub fn transactions_to_frame(txns: &[Transaction]) -> crate::Result<polars::prelude::DataFrame> {
    use polars::prelude::*;
    let mut times = Vec::with_capacity(txns.len());
    for t in txns {
        let parsed = chrono::DateTime::parse_from_rfc3339(&t.event_time).map_err(|e| {
            crate::Error::InvalidArgument {
                name: "event_time",
                reason: format!(
                    "{:?} of {} is not RFC 3339: {e}",
                    t.event_time, t.transaction_id
                ),
            }
        })?;
        times.push(parsed.timestamp_micros());
    }
    let strings = |f: fn(&Transaction) -> &str| -> Vec<&str> { txns.iter().map(f).collect() };
    let columns: Vec<Column> = vec![
        Column::new("transaction_id".into(), strings(|t| &t.transaction_id)),
        Column::new("account_id".into(), strings(|t| &t.account_id)),
        Column::new("user_id".into(), strings(|t| &t.user_id)),
        Column::new("product_id".into(), strings(|t| &t.product_id)),
        Column::new("event_time".into(), times).cast(&FieldType::Timestamp.polars_dtype())?,
        Column::new(
            "amount".into(),
            txns.iter().map(|t| t.amount).collect::<Vec<_>>(),
        ),
        Column::new(
            "quantity".into(),
            txns.iter().map(|t| t.quantity).collect::<Vec<_>>(),
        ),
        Column::new(
            "unit_cost".into(),
            txns.iter().map(|t| t.unit_cost).collect::<Vec<_>>(),
        ),
        Column::new(
            "merchant_category".into(),
            strings(|t| &t.merchant_category),
        ),
        Column::new("channel".into(), strings(|t| &t.channel)),
        Column::new("country".into(), strings(|t| &t.country)),
        Column::new(
            "distance_from_home_km".into(),
            txns.iter()
                .map(|t| t.distance_from_home_km)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "seconds_since_last_txn".into(),
            txns.iter()
                .map(|t| t.seconds_since_last_txn)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "account_age_days".into(),
            txns.iter().map(|t| t.account_age_days).collect::<Vec<_>>(),
        ),
    ];
    Ok(DataFrame::new(txns.len(), columns)?)
}
