//! Commits that replace a table's files instead of adding to them: an overwrite (a full
//! refresh, a dimension upsert) or a compaction (same rows, fewer files).
//!
//! deltalake's own `write`/`optimize`/`merge` operations need its `datafusion` feature, which
//! more than doubles a cold build; these commits need only the writer and the transaction log:
//! new files are written first, then ONE commit removes the replaced files and adds the new
//! ones (with the app transaction, if any), so readers see the old rows or the new, never both.
//!
//! Another writer may commit meanwhile (the pipeline appends while a compaction runs). The
//! commit is then rebased here, not by deltalake's conflict checker: that one lets two
//! commits remove the same file when the first had `dataChange = false`, so two concurrent
//! compactions would both succeed and duplicate rows. A compaction is rebased only while every
//! file it replaces is still live (appends in between are kept as they are); an overwrite is
//! never rebased.

use std::collections::HashSet;

use deltalake::DeltaTableError;
use deltalake::kernel::transaction::TransactionError;
use deltalake::kernel::{Action, Remove};
use deltalake::protocol::{DeltaOperation, SaveMode};
use polars::prelude::DataFrame;

use super::table::{Commit, LakeTable, Staged};
use crate::error::{Error, Result};

/// How many times a compaction is rebased onto commits that landed while it was written.
const REBASES: usize = 20;

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
    /// Replaces every row of the loaded version with `df` in ONE commit, carrying `commit`'s
    /// app transaction and metadata. The app version may go down (a full refresh resets it
    /// to 0). Returns the new table version.
    ///
    /// The loaded version is the one the caller read `df` from: it is not reloaded here, so a
    /// commit that landed since is never replaced unseen (a compaction keeps it, an overwrite
    /// fails with [`Error::ConcurrentChange`]).
    pub async fn replace(&mut self, df: &DataFrame, commit: Commit, kind: Rewrite) -> Result<u64> {
        let staged = self.stage(df, commit.evolve_schema).await?;
        self.replace_staged(staged, commit, kind).await
    }

    /// [`replace`](Self::replace) with files already staged (e.g. written chunk by chunk, so
    /// that a large overwrite is still ONE commit and memory holds one chunk).
    pub async fn replace_staged(
        &mut self,
        staged: Staged,
        commit: Commit,
        kind: Rewrite,
    ) -> Result<u64> {
        let replaced = self.live_files(|_, _| true)?;
        self.commit_replacing(replaced, staged, commit, kind).await
    }

    /// The remove actions of the loaded version's files that `keep(path, size)` selects.
    pub(super) fn live_files(&self, keep: impl Fn(&str, u64) -> bool) -> Result<Vec<Remove>> {
        Ok(self
            .delta()
            .snapshot()?
            .log_data()
            .iter()
            .filter(|file| keep(file.path().as_ref(), file.size().max(0) as u64))
            .map(|file| file.remove_action(true))
            .collect())
    }

    /// Commits `staged` in place of `replaced` (files of the loaded version) as ONE commit,
    /// rebased onto concurrent commits as the module says; returns the new version.
    pub(super) async fn commit_replacing(
        &mut self,
        replaced: Vec<Remove>,
        staged: Staged,
        commit: Commit,
        kind: Rewrite,
    ) -> Result<u64> {
        let data_change = kind == Rewrite::Overwrite;
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
        let actions: Vec<Action> = replaced
            .iter()
            .cloned()
            .map(|mut remove| {
                remove.data_change = data_change;
                Action::Remove(remove)
            })
            .chain(staged.adds.iter().cloned().map(|mut add| {
                add.data_change = data_change;
                Action::Add(add)
            }))
            .collect();
        for _ in 0..REBASES {
            let attempt = self
                .commit_actions(
                    actions.clone(),
                    staged.schema.clone(),
                    commit.clone(),
                    operation.clone(),
                    Some(0),
                )
                .await;
            match attempt {
                Err(e) if is_behind(&e) => {}
                other => return other,
            }
            // Someone committed since the loaded version: look at what is live now.
            self.refresh().await?;
            if kind == Rewrite::Overwrite {
                return Err(self.concurrent(
                    "another writer committed while it was being overwritten; nothing was \
                     changed, run the command again"
                        .into(),
                ));
            }
            let live: HashSet<String> = self
                .live_files(|_, _| true)?
                .into_iter()
                .map(|r| r.path)
                .collect();
            if let Some(gone) = replaced.iter().find(|r| !live.contains(&r.path)) {
                return Err(self.concurrent(format!(
                    "{} was replaced by another commit (a concurrent optimize?); this \
                     compaction changed nothing and its files are left for vacuum",
                    gone.path
                )));
            }
        }
        Err(self.concurrent(format!(
            "other commits kept landing; gave up after {REBASES} attempts (nothing was changed)"
        )))
    }

    fn concurrent(&self, reason: String) -> Error {
        Error::ConcurrentChange {
            location: self.url().to_string(),
            reason,
        }
    }
}

/// Whether a commit failed only because the table has moved past the loaded version.
pub(super) fn is_behind(error: &Error) -> bool {
    matches!(
        error,
        Error::Delta(DeltaTableError::VersionAlreadyExists(_))
            | Error::Delta(DeltaTableError::Transaction {
                source: TransactionError::MaxCommitAttempts(_)
            })
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test fails by panicking

    use polars::prelude::*;

    use super::*;
    use crate::lake::{AppTransaction, CreateOptions};

    fn rows(from: i64, n: i64) -> DataFrame {
        df! { "id" => (from..from + n).collect::<Vec<i64>>() }.unwrap()
    }

    async fn table_of_small_files(dir: &std::path::Path, files: i64) -> (String, LakeTable) {
        let location = dir.join("t").to_string_lossy().into_owned();
        let schema = rows(0, 1).schema().as_ref().clone();
        let mut table = LakeTable::create(&location, &schema, CreateOptions::default())
            .await
            .unwrap();
        for i in 0..files {
            let commit = Commit {
                app_transaction: Some(AppTransaction {
                    app_id: "p".into(),
                    version: i + 1,
                }),
                ..Default::default()
            };
            table.append(&rows(i * 10, 10), commit).await.unwrap();
        }
        (location, table)
    }

    async fn ids(location: &str) -> Vec<i64> {
        let table = LakeTable::open(location).await.unwrap();
        let df = table.scan().unwrap().collect().unwrap();
        let mut ids: Vec<i64> = df
            .column("id")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Stages a compaction of every file, to be committed after something else happened.
    async fn staged_compaction(table: &mut LakeTable) -> (Vec<Remove>, Staged) {
        table.refresh().await.unwrap();
        let replaced = table.live_files(|_, _| true).unwrap();
        let rows = table.scan().unwrap().collect().unwrap();
        (replaced, table.stage(&rows, false).await.unwrap())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_compaction_is_rebased_onto_an_append_that_landed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let (location, mut compactor) = table_of_small_files(dir.path(), 4).await;
        let (replaced, staged) = staged_compaction(&mut compactor).await;

        // The pipeline appends while the compaction is being written.
        let mut pipeline = LakeTable::open(&location).await.unwrap();
        pipeline
            .append(&rows(40, 10), Commit::default())
            .await
            .unwrap();

        compactor
            .commit_replacing(replaced, staged, Commit::default(), Rewrite::Compaction)
            .await
            .unwrap();
        assert_eq!(ids(&location).await, (0..50).collect::<Vec<_>>());
        // The four small files became one; the append's file is untouched.
        assert_eq!(compactor.file_count().unwrap(), 2);
        // The pipeline's own (now stale) handle still appends, and its progress survived.
        pipeline
            .append(&rows(50, 10), Commit::default())
            .await
            .unwrap();
        assert_eq!(ids(&location).await, (0..60).collect::<Vec<_>>());
        assert_eq!(pipeline.app_version("p").await.unwrap(), Some(4));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_replace_keeps_rows_appended_after_the_caller_read_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let (location, mut compactor) = table_of_small_files(dir.path(), 3).await;
        compactor.refresh().await.unwrap();
        let read = compactor.scan().unwrap().collect().unwrap();

        // The pipeline appends after the rows were read, before they are written back.
        let mut pipeline = LakeTable::open(&location).await.unwrap();
        pipeline
            .append(&rows(30, 10), Commit::default())
            .await
            .unwrap();

        compactor
            .replace(&read, Commit::default(), Rewrite::Compaction)
            .await
            .unwrap();
        assert_eq!(ids(&location).await, (0..40).collect::<Vec<_>>());

        // An overwrite from a stale read fails instead of dropping the new rows.
        let stale = compactor.scan().unwrap().collect().unwrap();
        pipeline
            .append(&rows(40, 10), Commit::default())
            .await
            .unwrap();
        let error = compactor
            .replace(&stale, Commit::default(), Rewrite::Overwrite)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ConcurrentChange { .. }), "{error}");
        assert_eq!(ids(&location).await, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn two_compactions_of_the_same_files_never_both_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (location, mut first) = table_of_small_files(dir.path(), 3).await;
        let (replaced, staged) = staged_compaction(&mut first).await;

        // Another compaction (a manual optimize) rewrites the same files first.
        let mut second = LakeTable::open(&location).await.unwrap();
        second.compact(&[]).await.unwrap();
        let version = second.version();

        let error = first
            .commit_replacing(replaced, staged, Commit::default(), Rewrite::Compaction)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ConcurrentChange { .. }), "{error}");
        assert!(error.to_string().contains("concurrent optimize"), "{error}");
        // No duplicate rows and no new version.
        assert_eq!(ids(&location).await, (0..30).collect::<Vec<_>>());
        let latest = LakeTable::open(&location).await.unwrap();
        assert_eq!(latest.version(), version);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_overwrite_is_never_rebased_over_new_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (location, mut overwriter) = table_of_small_files(dir.path(), 2).await;
        overwriter.refresh().await.unwrap();
        let replaced = overwriter.live_files(|_, _| true).unwrap();
        let staged = overwriter.stage(&rows(100, 5), false).await.unwrap();

        let mut other = LakeTable::open(&location).await.unwrap();
        other
            .append(&rows(20, 10), Commit::default())
            .await
            .unwrap();

        let error = overwriter
            .commit_replacing(replaced, staged, Commit::default(), Rewrite::Overwrite)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ConcurrentChange { .. }), "{error}");
        assert_eq!(ids(&location).await, (0..30).collect::<Vec<_>>());
    }
}
