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

/// Bronze's schema for a declared record (evolved columns are added by later commits).
pub fn schema(fields: &[(String, FieldType)]) -> Schema {
    let mut schema: Schema = fields
        .iter()
        .map(|(n, t)| Field::new(n.as_str().into(), bronze_dtype(*t)))
        .collect();
    for (name, dtype) in [
        (SOURCE_FILE, DataType::String),
        (SOURCE_LINE, DataType::Int64),
        (INGESTED_AT, utc_micros()),
        (BATCH_ID, DataType::Int64),
        (RESCUED, DataType::String),
        (CORRUPT, DataType::String),
    ] {
        schema.with_column(name.into(), dtype);
    }
    schema
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
        .map(|(_, ty)| match bronze_dtype(*ty) {
            DataType::Int64 => Cells::Int(Vec::with_capacity(rows)),
            DataType::Float64 => Cells::F64(Vec::with_capacity(rows)),
            DataType::Boolean => Cells::Bool(Vec::with_capacity(rows)),
            _ => Cells::Str(Vec::with_capacity(rows)),
        })
        .collect();
    let mut extra: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    let mut source = Vec::with_capacity(rows);
    let mut line = Vec::with_capacity(rows);
    let mut rescued = Vec::with_capacity(rows);
    let mut corrupt = Vec::with_capacity(rows);
    for (file, read) in files {
        let before = line.len();
        let n = read.rows();
        for (all, cells) in declared.iter_mut().zip(read.declared) {
            append(all, cells);
        }
        for (name, values) in read.extra {
            let column = extra.entry(name).or_default();
            column.resize(before, None);
            column.extend(values);
        }
        source.extend(std::iter::repeat_n(file.path.as_str().to_owned(), n));
        line.extend(read.line);
        rescued.extend(read.rescued);
        corrupt.extend(read.corrupt);
    }
    let mut columns: Vec<Column> = read_schema
        .fields
        .iter()
        .zip(declared)
        .map(|((name, _), cells)| cells_column(name, cells))
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

fn append(all: &mut Cells, cells: Cells) {
    match (all, cells) {
        (Cells::Str(a), Cells::Str(b)) => a.extend(b),
        (Cells::Int(a), Cells::Int(b)) => a.extend(b),
        (Cells::F64(a), Cells::F64(b)) => a.extend(b),
        (Cells::Bool(a), Cells::Bool(b)) => a.extend(b),
        // Same schema on both sides: the kinds always match.
        (a, b) => {
            let n = b.len();
            for _ in 0..n {
                match a {
                    Cells::Str(v) => v.push(None),
                    Cells::Int(v) => v.push(None),
                    Cells::F64(v) => v.push(None),
                    Cells::Bool(v) => v.push(None),
                }
            }
        }
    }
}

fn cells_column(name: &str, cells: Cells) -> Column {
    match cells {
        Cells::Str(v) => Column::new(name.into(), v),
        Cells::Int(v) => Column::new(name.into(), v),
        Cells::F64(v) => Column::new(name.into(), v),
        Cells::Bool(v) => Column::new(name.into(), v),
    }
}
