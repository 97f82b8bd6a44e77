//! Typing bronze rows for silver: event time parsing and casts, with failures recorded per
//! row instead of raised.

use chrono::{DateTime, NaiveDateTime};
use isolake_data::record::FieldType;
use polars::prelude::*;
use serde_json::{Map, Value};

use crate::bronze::{LINEAGE, RESCUED, utc_micros};
use crate::config::Config;
use crate::error::Result;

pub struct Typed {
    /// Silver's columns, every bronze row.
    pub frame: DataFrame,
    /// Per row: the fields whose value could not be typed.
    pub type_errors: Vec<Vec<String>>,
}

/// Parses an event time: RFC 3339 by default, `epoch_ms`, or a chrono format (no zone = UTC).
pub fn parse_event_time(text: &str, format: Option<&str>) -> Option<i64> {
    let text = text.trim();
    match format {
        None => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp_micros()),
        Some("epoch_ms") => text
            .parse::<i64>()
            .ok()
            .and_then(|ms| ms.checked_mul(1000))
            .or_else(|| {
                text.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && f.abs() < 9.2e15)
                    .map(|f| (f * 1000.0) as i64)
            }),
        Some(format) => DateTime::parse_from_str(text, format)
            .map(|t| t.timestamp_micros())
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(text, format)
                    .ok()
                    .map(|t| t.and_utc().timestamp_micros())
            }),
    }
}

pub(super) fn type_frame(bronze: &DataFrame, config: &Config) -> Result<Typed> {
    let rows = bronze.height();
    let mut type_errors: Vec<Vec<String>> = vec![Vec::new(); rows];
    let mut columns = Vec::with_capacity(config.schema.fields.len() + 5);
    for (name, declared) in &config.schema.fields {
        let target = config.silver_type(name).unwrap_or(*declared);
        let source = bronze.column(name)?;
        let typed = if target == FieldType::Timestamp {
            let text = source.cast(&DataType::String)?;
            let text = text.str()?;
            let format = config.schema.event_time_format.as_deref();
            let micros: Int64Chunked = text
                .iter()
                .map(|v| v.and_then(|s| parse_event_time(s, format)))
                .collect();
            micros.into_series().cast(&utc_micros())?.into_column()
        } else if source.dtype() == &target.polars_dtype() {
            source.clone()
        } else {
            let text_like = source.dtype() == &DataType::String;
            let input = if text_like && target != FieldType::String {
                {
                    let text = source.cast(&DataType::String)?;
                    let trimmed: StringChunked =
                        text.str()?.iter().map(|v| v.map(str::trim)).collect();
                    trimmed.into_series().into_column()
                }
            } else {
                source.clone()
            };
            input.cast(&target.polars_dtype())?
        };
        let lost = source.is_not_null() & typed.is_null();
        for (row, lost) in lost.iter().enumerate() {
            if lost == Some(true) {
                type_errors[row].push(name.clone());
            }
        }
        columns.push(typed.with_name(name.as_str().into()));
    }
    if let Some(source) = &config.schema.event_time_from {
        let name = &config.schema.event_time;
        let raw = bronze.column(source)?;
        let text = raw.cast(&DataType::String)?;
        let format = config.schema.event_time_format.as_deref();
        let micros: Int64Chunked = text
            .str()?
            .iter()
            .map(|v| v.and_then(|s| parse_event_time(s.trim(), format)))
            .collect();
        let typed = micros.into_series().cast(&utc_micros())?.into_column();
        let lost = raw.is_not_null() & typed.is_null();
        for (row, lost) in lost.iter().enumerate() {
            if lost == Some(true) {
                type_errors[row].push(name.clone());
            }
        }
        columns.push(typed.with_name(name.as_str().into()));
    }
    // A declared field whose landed value had the wrong JSON type was rescued in bronze.
    let rescued = bronze.column(RESCUED)?.str()?.clone();
    for (row, text) in rescued.iter().enumerate() {
        let Some(text) = text else { continue };
        if let Ok(object) = serde_json::from_str::<Map<String, Value>>(text) {
            for (name, _) in &config.schema.fields {
                if object.contains_key(name) && !type_errors[row].contains(name) {
                    type_errors[row].push(name.clone());
                }
            }
        }
    }
    for name in LINEAGE {
        columns.push(bronze.column(name)?.clone());
    }
    Ok(Typed {
        frame: DataFrame::new(rows, columns)?,
        type_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_formats() {
        assert_eq!(
            parse_event_time("1970-01-01T00:00:01.5Z", None),
            Some(1_500_000)
        );
        assert_eq!(parse_event_time("1970-01-01T01:00:00+01:00", None), Some(0));
        assert_eq!(parse_event_time("2000", Some("epoch_ms")), Some(2_000_000));
        assert_eq!(
            parse_event_time("1970-01-01 00:00:02.250", Some("%Y-%m-%d %H:%M:%S%.3f")),
            Some(2_250_000)
        );
        assert_eq!(parse_event_time("yesterday", None), None);
    }
}
