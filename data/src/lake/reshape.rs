//! Schema changes of a table that already holds rows: what changes ([`SchemaDiff`]), and the
//! one commit that gives the table a new schema ([`LakeTable::reshape`]).
//!
//! An append can only add nullable columns (see `Commit::evolve_schema`). A column whose type
//! widens (an integer that becomes a double) needs its existing files rewritten: Delta's own
//! type widening does not cover long → double and deltalake does not write it. A narrowed or
//! removed column cannot be applied to existing rows at all; the caller decides (a pipeline
//! refuses it, or empties the table during a full refresh).

use std::sync::Arc;

use arrow::datatypes::{DataType as ArrowType, Schema as ArrowSchema};
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use polars::prelude::{Schema, col};

use super::rewrite::Rewrite;
use super::table::{Commit, LakeTable, Staged, conform, normalised_arrow_schema, writable};
use crate::error::Result;

/// One column whose type differs between the table and the schema asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnChange {
    pub column: String,
    /// The table's type now, and the one asked for (arrow's names).
    pub from: String,
    pub to: String,
}

/// How a table's schema differs from the one asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaDiff {
    /// Asked for, not in the table: an append adds them (old rows read NULL).
    pub added: Vec<String>,
    /// Every value of the table's type fits the new one: a rewrite keeps them all.
    pub widened: Vec<ColumnChange>,
    /// Values of the table's type may not fit the new one.
    pub narrowed: Vec<ColumnChange>,
    /// In the table, not asked for.
    pub removed: Vec<String>,
}

impl SchemaDiff {
    /// Nothing but added columns.
    pub fn is_additive(&self) -> bool {
        self.widened.is_empty() && self.narrowed.is_empty() && self.removed.is_empty()
    }
}

/// Whether two types hold the same values, whatever their list items or time zones are named
/// (a table's log and the writer's arrow spell those differently).
fn same_values(a: &ArrowType, b: &ArrowType) -> bool {
    use ArrowType as A;
    match (a, b) {
        (A::List(a) | A::LargeList(a), A::List(b) | A::LargeList(b)) => {
            same_values(a.data_type(), b.data_type())
        }
        (A::Struct(a), A::Struct(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b.iter())
                    .all(|(a, b)| a.name() == b.name() && same_values(a.data_type(), b.data_type()))
        }
        (A::Timestamp(a, _), A::Timestamp(b, _)) => a == b,
        _ => a == b,
    }
}

/// Whether every value of type `from` has one in `to`: a wider integer, or a double (exact up
/// to 2^53, as a double's integers are), or a double from a float. Other changes narrow.
fn widens(from: &ArrowType, to: &ArrowType) -> bool {
    use ArrowType as A;
    let bits = |t: &A| t.primitive_width().map(|w| w * 8);
    match (from, to) {
        (f, t) if f.is_signed_integer() && t.is_signed_integer() => bits(f) <= bits(t),
        (f, t) if f.is_unsigned_integer() && t.is_integer() => {
            bits(f) < bits(t) || (t.is_unsigned_integer() && bits(f) <= bits(t))
        }
        (f, A::Float64) => f.is_integer() || f.is_floating(),
        (f, t) => writable(f, t) && !f.is_integer() && !t.is_integer(),
    }
}

impl LakeTable {
    /// How the table's schema differs from `wanted`.
    pub fn diff(&self, wanted: &Schema) -> Result<SchemaDiff> {
        let table = self.arrow_schema()?;
        let wanted = normalised_arrow_schema(wanted)?;
        let mut diff = SchemaDiff::default();
        for field in wanted.fields() {
            let Ok(existing) = table.field_with_name(field.name()) else {
                diff.added.push(field.name().clone());
                continue;
            };
            let (from, to) = (existing.data_type(), field.data_type());
            if same_values(from, to) {
                continue;
            }
            let change = ColumnChange {
                column: field.name().clone(),
                from: from.to_string(),
                to: to.to_string(),
            };
            if widens(from, to) {
                diff.widened.push(change);
            } else {
                diff.narrowed.push(change);
            }
        }
        diff.removed = table
            .fields()
            .iter()
            .filter(|f| wanted.field_with_name(f.name()).is_err())
            .map(|f| f.name().clone())
            .collect();
        Ok(diff)
    }

    /// Gives the table the schema `wanted` in ONE commit (an overwrite carrying `commit`'s
    /// app transaction and metadata). `keep_rows`: every live file is rewritten into the new
    /// schema, one file in memory at a time (columns cast, new ones NULL, removed ones gone;
    /// a value that does not fit fails the whole change). Otherwise the table is emptied.
    pub async fn reshape(
        &mut self,
        wanted: &Schema,
        keep_rows: bool,
        commit: Commit,
    ) -> Result<u64> {
        self.refresh().await?;
        let target = Arc::new(normalised_arrow_schema(wanted)?);
        let mut writer = RecordBatchWriter::try_new(
            self.url().as_str(),
            target.clone(),
            self.partition_by()?,
            None,
        )?;
        if keep_rows {
            let paths: Vec<String> = self
                .live_files(|_, _| true)?
                .into_iter()
                .map(|r| r.path)
                .collect();
            for path in paths {
                self.rewrite_file_into(&path, &target, &mut writer).await?;
            }
        }
        let schema: StructType = target.as_ref().try_into_kernel()?;
        let staged = Staged {
            adds: writer.flush().await?,
            schema: Some(schema),
        };
        self.replace_staged(staged, commit, Rewrite::Overwrite)
            .await
    }

    /// One live file's rows, cast into `target`, written by `writer`.
    async fn rewrite_file_into(
        &self,
        path: &str,
        target: &ArrowSchema,
        writer: &mut RecordBatchWriter,
    ) -> Result<()> {
        let kept: Vec<_> = self
            .arrow_schema()?
            .fields()
            .iter()
            .filter(|f| target.field_with_name(f.name()).is_ok())
            .map(|f| col(f.name().as_str()))
            .collect();
        let rows = self.scan_where(|p| p == path)?.select(kept).collect()?;
        let (batches, _) = conform(&rows, target, true, self.url())?;
        for batch in batches.into_iter().filter(|b| b.num_rows() > 0) {
            writer.write(batch).await?;
        }
        Ok(())
    }
}
