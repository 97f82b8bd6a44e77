//! Commits that replace a table's files instead of adding to them: an overwrite (a full
//! refresh, a dimension upsert) or a compaction (same rows, fewer files).
//!
//! deltalake's own `write`/`optimize`/`merge` operations need its `datafusion` feature, which
//! more than doubles a cold build; these commits need only the writer and the transaction log:
//! new files are written first, then ONE commit removes every current file and adds the new
//! ones (with the app transaction, if any), so readers see the old rows or the new, never both.

use deltalake::kernel::Action;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{MetadataExt, StructType};
use deltalake::kernel::{Transaction, transaction::TableReference};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use polars::prelude::DataFrame;

use super::table::{Commit, LakeTable, conform};
use crate::error::Result;

/// What a replacing commit means to readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// New content (`dataChange = true`): streaming readers see the removal and the new rows.
    Overwrite,
    /// The same rows in other files (`dataChange = false`), e.g. compaction: streaming readers
    /// skip the commit.
    Compaction,
}

impl LakeTable {
    /// Replaces every row of the table with `df` in ONE commit, carrying `commit`'s app
    /// transaction and metadata. The app version may go down (a full refresh resets it to 0).
    /// Returns the new table version.
    pub async fn replace(&mut self, df: &DataFrame, commit: Commit, kind: Rewrite) -> Result<u64> {
        self.refresh().await?;
        let table_schema = self.arrow_schema()?;
        let (batches, evolved) = conform(df, &table_schema, commit.evolve_schema, &self.url)?;
        let mut writer = RecordBatchWriter::for_table(&self.table)?;
        let mode = if evolved {
            WriteMode::MergeSchema
        } else {
            WriteMode::Default
        };
        let target = batches.first().map(|b| b.schema());
        for batch in batches.into_iter().filter(|b| b.num_rows() > 0) {
            writer.write_with_mode(batch, mode).await?;
        }
        let data_change = kind == Rewrite::Overwrite;
        let snapshot = self.table.snapshot()?;
        let mut actions: Vec<Action> = snapshot
            .log_data()
            .iter()
            .map(|file| Action::Remove(file.remove_action(data_change)))
            .collect();
        for mut add in writer.flush().await? {
            add.data_change = data_change;
            actions.push(Action::Add(add));
        }
        if evolved && let Some(target) = target {
            let schema: StructType = target.as_ref().try_into_kernel()?;
            let metadata = snapshot
                .metadata()
                .clone()
                .with_schema(&schema)
                .map_err(deltalake::DeltaTableError::from)?;
            actions.push(Action::Metadata(metadata));
        }
        let mut properties = CommitProperties::default().with_metadata(commit.metadata);
        if let Some(txn) = commit.app_transaction {
            properties =
                properties.with_application_transaction(Transaction::new(txn.app_id, txn.version));
        }
        let partition_columns: Vec<String> = snapshot.metadata().partition_columns().to_vec();
        let operation = match kind {
            Rewrite::Overwrite => DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: (!partition_columns.is_empty()).then_some(partition_columns),
                predicate: None,
            },
            Rewrite::Compaction => DeltaOperation::Optimize {
                predicate: None,
                target_size: 0,
            },
        };
        let finalized = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(snapshot as &dyn TableReference),
                self.table.log_store(),
                operation,
            )
            .await?;
        let version = finalized.version();
        self.refresh().await?;
        Ok(version as u64)
    }
}
