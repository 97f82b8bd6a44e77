//! Commits that replace a table's files instead of adding to them: an overwrite (a full
//! refresh, a dimension upsert) or a compaction (same rows, fewer files).
//!
//! deltalake's own `write`/`optimize`/`merge` operations need its `datafusion` feature, which
//! more than doubles a cold build; these commits need only the writer and the transaction log:
//! new files are written first, then ONE commit removes every current file and adds the new
//! ones (with the app transaction, if any), so readers see the old rows or the new, never both.

use deltalake::kernel::Action;
use deltalake::protocol::{DeltaOperation, SaveMode};
use polars::prelude::DataFrame;

use super::table::{Commit, LakeTable};
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
        let staged = self.stage(df, commit.evolve_schema).await?;
        let data_change = kind == Rewrite::Overwrite;
        let mut actions: Vec<Action> = self
            .delta()
            .snapshot()?
            .log_data()
            .iter()
            .map(|file| Action::Remove(file.remove_action(data_change)))
            .collect();
        actions.extend(staged.adds.into_iter().map(|mut add| {
            add.data_change = data_change;
            Action::Add(add)
        }));
        let operation = match kind {
            Rewrite::Overwrite => DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: self.partition_by()?,
                predicate: None,
            },
            Rewrite::Compaction => DeltaOperation::Optimize {
                predicate: None,
                target_size: 0,
            },
        };
        self.commit_actions(actions, staged.schema, commit, operation)
            .await
    }
}
