//! Bronze: every landed line, as read, with where it came from.

use std::collections::BTreeMap;

use isolake_data::record::FieldType;
use polars::prelude::*;

use crate::error::Result;
use crate::source::SourceFile;
use crate::source::reader::{Cells, ReadFile, ReadSchema};

pub const SOURCE_FILE: &str = "_source_file";
pub const SOURCE_LINE: &str = "_source_line";
pub const INGESTED_AT: &str = "_ingested_at";
pub const BATCH_ID: &str = "_batch_id";
pub const RESCUED: &str = "_rescued_data";
pub const CORRUPT: &str = "_corrupt_record";

/// The type a declared field has in bronze (timestamps stay as landed text).
pub fn bronze_dtype(ty: FieldType) -> DataType {
    match ty {
        FieldType::Timestamp => DataType::String,
        other => other.polars_dtype(),
    }
}

pub fn utc_micros() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

/// The lineage columns silver carries over from bronze, in table order.
pub const LINEAGE: [&str; 5] = [SOURCE_FILE, SOURCE_LINE, INGESTED_AT, BATCH_ID, RESCUED];

/// The type of a lineage or `_corrupt_record` column.
pub fn metadata_dtype(name: &str) -> DataType {
    match name {
        SOURCE_LINE | BATCH_ID => DataType::Int64,
        INGESTED_AT => utc_micros(),
        _ => DataType::String,
    }
}

/// Appends `names` with their [`metadata_dtype`] to `schema`.
pub fn with_metadata(mut schema: Schema, names: &[&str]) -> Schema {
    for name in names {
        schema.with_column((*name).into(), metadata_dtype(name));
    }
    schema
}

/// The declared fields as bronze stores them, given bronze's columns so far: a field declared
/// after it was an evolved (text) column keeps landing as text, and silver types it (a value
/// that does not parse is a `valid_types` failure there, not a change to bronze's rows).
pub fn stored_fields(
    declared: &[(String, FieldType)],
    bronze: &Schema,
) -> Vec<(String, FieldType)> {
    declared
        .iter()
        .map(|(name, ty)| match bronze.get(name) {
            Some(DataType::String) => (name.clone(), FieldType::String),
            _ => (name.clone(), *ty),
        })
        .collect()
}

/// Bronze's schema for a declared record (evolved columns are added by later commits).
pub fn schema(fields: &[(String, FieldType)]) -> Schema {
    let schema: Schema = fields
        .iter()
        .map(|(n, t)| Field::new(n.as_str().into(), bronze_dtype(*t)))
        .collect();
    let schema = with_metadata(schema, &LINEAGE);
    with_metadata(schema, &[CORRUPT])
}

/// The rows of one batch's files as one frame of bronze's shape.
pub fn frame(
    files: Vec<(SourceFile, ReadFile)>,
    read_schema: &ReadSchema,
    batch: u64,
    ingested_at_us: i64,
) -> Result<DataFrame> {
    let rows: usize = files.iter().map(|(_, f)| f.rows()).sum();
    let mut declared: Vec<Cells> = read_schema
        .fields
        .iter()
        .map(|(_, ty)| Cells::for_type(*ty, rows))
        .collect();
    let mut extra: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    // File names are borrowed per row (one copy into the column, not one String per row).
    let mut sources: Vec<(String, usize)> = Vec::with_capacity(files.len());
    let mut line = Vec::with_capacity(rows);
    let mut rescued = Vec::with_capacity(rows);
    let mut corrupt = Vec::with_capacity(rows);
    for (file, read) in files {
        let before = line.len();
        sources.push((file.path, read.rows()));
        for (all, cells) in declared.iter_mut().zip(read.declared) {
            all.extend(cells);
        }
        for (name, values) in read.extra {
            let column = extra.entry(name).or_default();
            column.resize(before, None);
            column.extend(values);
        }
        line.extend(read.line);
        rescued.extend(read.rescued);
        corrupt.extend(read.corrupt);
    }
    let source: Vec<&str> = sources
        .iter()
        .flat_map(|(path, n)| std::iter::repeat_n(path.as_str(), *n))
        .collect();
    let mut columns: Vec<Column> = read_schema
        .fields
        .iter()
        .zip(declared)
        .map(|((name, _), cells)| cells.into_column(name))
        .collect();
    for (name, mut values) in extra {
        values.resize(rows, None);
        columns.push(Column::new(name.into(), values));
    }
    columns.push(Column::new(SOURCE_FILE.into(), source));
    columns.push(Column::new(SOURCE_LINE.into(), line));
    columns.push(Column::new(INGESTED_AT.into(), vec![ingested_at_us; rows]).cast(&utc_micros())?);
    columns.push(Column::new(BATCH_ID.into(), vec![batch as i64; rows]));
    columns.push(Column::new(RESCUED.into(), rescued));
    columns.push(Column::new(CORRUPT.into(), corrupt));
    Ok(DataFrame::new(rows, columns)?)
}
