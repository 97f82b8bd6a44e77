//! How a batch's columns are encoded in parquet: dictionary encoding only where it pays.
//!
//! The parquet writer tries a dictionary for every column by default: it hashes and compares
//! each value against the dictionary until the dictionary outgrows its page limit (1 MiB),
//! then falls back to plain. For columns of mostly distinct values (ids, amounts, scores,
//! event times) that is pure cost, and on the pipeline's tables it was a tenth of the CPU.
//! A sample of each column decides instead, as polars' own writer does: a column whose sample
//! holds more than [`MAX_DISTINCT_SHARE`] distinct values is written plain (still compressed).
//! Readers see no difference but the encoding.

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::schema::types::ColumnPath;

/// Values of a column looked at to decide its encoding.
const SAMPLE: usize = 4096;

/// Above this share of distinct values in the sample, a column is written without dictionary.
const MAX_DISTINCT_SHARE: f64 = 0.5;

/// Writer properties for `batches` (one table's rows): deltalake's defaults (snappy) with
/// the dictionary turned off for each top-level column of mostly distinct values.
pub(super) fn writer_properties(batches: &[RecordBatch]) -> WriterProperties {
    let mut builder = WriterProperties::builder().set_compression(Compression::SNAPPY);
    let Some(first) = batches.iter().max_by_key(|b| b.num_rows()) else {
        return builder.build();
    };
    for (field, column) in first.schema().fields().iter().zip(first.columns()) {
        if mostly_distinct(column) {
            let path = ColumnPath::from(field.name().as_str());
            builder = builder.set_column_dictionary_enabled(path, false);
        }
    }
    builder.build()
}

/// Whether the first [`SAMPLE`] values of `column` are mostly distinct (nulls not counted).
/// Only flat columns are judged; nested ones keep the default.
fn mostly_distinct(column: &ArrayRef) -> bool {
    let sample = column.slice(0, column.len().min(SAMPLE));
    let present = sample.len() - sample.null_count();
    if present < 64 {
        return false;
    }
    let distinct = match sample.data_type() {
        DataType::Utf8 => distinct(sample.as_string::<i32>().iter()),
        DataType::LargeUtf8 => distinct(sample.as_string::<i64>().iter()),
        DataType::Utf8View => distinct(sample.as_string_view().iter()),
        DataType::Float64 => {
            distinct((sample.as_primitive::<Float64Type>().iter()).map(|v| v.map(f64::to_bits)))
        }
        DataType::Int64 => distinct(sample.as_primitive::<Int64Type>().iter()),
        DataType::Int32 => distinct(sample.as_primitive::<Int32Type>().iter()),
        DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _) => {
            distinct(sample.as_primitive::<TimestampMicrosecondType>().iter())
        }
        _ => return false,
    };
    distinct as f64 > MAX_DISTINCT_SHARE * present as f64
}

/// Distinct non-null values of `values`.
fn distinct<T: std::hash::Hash + Eq>(values: impl Iterator<Item = Option<T>>) -> usize {
    values.flatten().collect::<HashSet<T>>().len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn only_columns_of_mostly_distinct_values_lose_the_dictionary() {
        let n = 1000;
        let ids: Vec<String> = (0..n).map(|i| format!("t{i:06}")).collect();
        let countries: Vec<&str> = (0..n).map(|i| ["DE", "FR", "US"][i % 3]).collect();
        let amounts: Vec<f64> = (0..n).map(|i| i as f64 * 1.5).collect();
        let schema = Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("country", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("few", DataType::Float64, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(StringArray::from(countries)),
                Arc::new(Float64Array::from(amounts)),
                Arc::new(Float64Array::from(vec![1.0; n])),
            ],
        )
        .unwrap();
        let props = writer_properties(&[batch]);
        let dictionary = |c: &str| props.dictionary_enabled(&ColumnPath::from(c));
        assert!(!dictionary("id"));
        assert!(dictionary("country"));
        assert!(!dictionary("amount"));
        assert!(dictionary("few"));
        assert_eq!(
            props.compression(&ColumnPath::from("id")),
            Compression::SNAPPY
        );
        assert!(writer_properties(&[]).dictionary_enabled(&ColumnPath::from("id")));
    }
}
