//! Zero-copy hand-over of columns between polars and arrow-rs (the arrow deltalake speaks).
//!
//! polars has its own arrow implementation, so the two crates share no Rust types. Both
//! implement the Arrow C Data Interface, whose structs are `#[repr(C)]` with one layout
//! fixed by the Arrow specification: a column exported by one library is imported by the
//! other without copying its buffers, and the exporter's release callback travels with it.
//! No maintained crate does this for polars 0.55 (`df-interchange` stops at 0.53).
#![allow(unsafe_code)]

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, make_array};
use arrow::datatypes::{Field as ArrowField, Schema as ArrowSchema};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi};
use polars::prelude::{CompatLevel, DataFrame, DataType, Field, Schema, SchemaExt};
use polars_arrow::ffi as pa_ffi;

use crate::error::Result;

// The C Data Interface structs of both libraries must have one size, or the transmutes below
// would not compile; these make a future layout change fail loudly at build time.
const _: () = assert!(size_of::<pa_ffi::ArrowArray>() == size_of::<FFI_ArrowArray>());
const _: () = assert!(size_of::<pa_ffi::ArrowSchema>() == size_of::<FFI_ArrowSchema>());

/// The arrow-rs field of a polars field (strings become `Utf8View`, datetimes keep their zone).
pub fn field_to_arrow(field: &Field) -> Result<ArrowField> {
    let exported = pa_ffi::export_field_to_c(&field.to_arrow(CompatLevel::newest()));
    // SAFETY: both types are the C Data Interface's `ArrowSchema` (same repr(C) layout, checked
    // in size above); ownership, and with it the release callback, moves to arrow-rs.
    let ffi = unsafe { std::mem::transmute::<pa_ffi::ArrowSchema, FFI_ArrowSchema>(exported) };
    Ok(ArrowField::try_from(&ffi)?)
}

/// The polars field of an arrow-rs field.
pub fn field_from_arrow(field: &ArrowField) -> Result<Field> {
    let ffi = FFI_ArrowSchema::try_from(field)?;
    // SAFETY: as in `field_to_arrow`, in the other direction.
    let exported = unsafe { std::mem::transmute::<FFI_ArrowSchema, pa_ffi::ArrowSchema>(ffi) };
    // SAFETY: `exported` was produced by arrow-rs's exporter just above, so it is valid.
    let pa_field = unsafe { pa_ffi::import_field_from_c(&exported) }?;
    Ok(Field::new(
        pa_field.name.clone(),
        DataType::from_arrow_field(&pa_field),
    ))
}

/// The polars schema of an arrow-rs schema.
pub fn schema_from_arrow(schema: &ArrowSchema) -> Result<Schema> {
    schema
        .fields()
        .iter()
        .map(|f| field_from_arrow(f))
        .collect()
}

/// The arrow-rs schema of a polars schema.
pub fn schema_to_arrow(schema: &Schema) -> Result<ArrowSchema> {
    let fields = schema
        .iter_fields()
        .map(|f| field_to_arrow(&f))
        .collect::<Result<Vec<_>>>()?;
    Ok(ArrowSchema::new(fields))
}

/// The frame as arrow-rs record batches (one per polars chunk), without copying buffers.
pub fn dataframe_to_batches(df: &DataFrame) -> Result<(Arc<ArrowSchema>, Vec<RecordBatch>)> {
    let mut df = df.clone();
    df.align_chunks();
    let fields: Vec<Field> = df.schema().iter_fields().collect();
    let arrow_fields = fields
        .iter()
        .map(field_to_arrow)
        .collect::<Result<Vec<_>>>()?;
    let schema = Arc::new(ArrowSchema::new(arrow_fields));
    let mut batches = Vec::new();
    for chunk in df.iter_chunks(CompatLevel::newest(), false) {
        let columns = chunk
            .into_arrays()
            .into_iter()
            .zip(&fields)
            .map(|(array, field)| array_to_arrow(array, field))
            .collect::<Result<Vec<_>>>()?;
        batches.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok((schema, batches))
}

fn array_to_arrow(array: Box<dyn polars_arrow::array::Array>, field: &Field) -> Result<ArrayRef> {
    let schema = pa_ffi::export_field_to_c(&field.to_arrow(CompatLevel::newest()));
    let array = pa_ffi::export_array_to_c(array);
    // SAFETY: same-layout C Data Interface structs (sizes checked above); arrow-rs takes over
    // the release callbacks, so polars' buffers live exactly as long as the arrow-rs array.
    let (schema, array) = unsafe {
        (
            std::mem::transmute::<pa_ffi::ArrowSchema, FFI_ArrowSchema>(schema),
            std::mem::transmute::<pa_ffi::ArrowArray, FFI_ArrowArray>(array),
        )
    };
    // SAFETY: `array` and `schema` were exported together by polars just above.
    let data = unsafe { from_ffi(array, &schema) }?;
    Ok(make_array(data))
}
