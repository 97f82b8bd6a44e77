//! Table maintenance: compaction (optionally Z-ordered), vacuum, checkpoints.
//!
//! Micro-batches leave one small file per commit; compaction rewrites the live rows into few
//! files in one `dataChange = false` commit (same rows, so query results never change, and app
//! transactions are untouched). Z-ordering sorts rows by interleaved bits of the columns'
//! ranks, so that filters on any of them skip row groups.

use std::collections::HashSet;
use std::time::Duration;

use polars::prelude::*;

use super::rewrite::Rewrite;
use super::table::{Commit, LakeTable};
use crate::error::{Error, Result};

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    pub files_before: usize,
    pub files_after: usize,
    pub rows: usize,
    /// The new table version, `None` when there was nothing to compact.
    pub version: Option<u64>,
}

impl LakeTable {
    /// Live data files of the loaded version.
    pub fn file_count(&self) -> Result<usize> {
        Ok(self.delta().snapshot()?.log_data().iter().count())
    }

    /// Rewrites the table's rows into as few files as the writer makes, Z-ordered by
    /// `zorder_by` if given. A table with at most one file (and no Z-order asked) is left as is.
    pub async fn compact(&mut self, zorder_by: &[String]) -> Result<Compacted> {
        self.refresh().await?;
        let files_before = self.file_count()?;
        if files_before <= 1 && zorder_by.is_empty() {
            return Ok(Compacted {
                files_before,
                files_after: files_before,
                rows: 0,
                version: None,
            });
        }
        let mut rows = self.scan()?.collect()?;
        if !zorder_by.is_empty() {
            rows = zorder(&rows, zorder_by)?;
        }
        let version = self
            .replace(&rows, Commit::default(), Rewrite::Compaction)
            .await?;
        Ok(Compacted {
            files_before,
            files_after: self.file_count()?,
            rows: rows.height(),
            version: Some(version),
        })
    }

    /// Auto compaction: rewrites only the files smaller than `target_size` bytes into few
    /// files, in one `dataChange = false` commit that leaves every other file (and any append
    /// committed meanwhile) alone. Fewer than two small files: nothing to do.
    pub async fn compact_small(&mut self, target_size: u64) -> Result<Compacted> {
        self.refresh().await?;
        let files_before = self.file_count()?;
        let small = self.live_files(|_, size| size < target_size)?;
        if small.len() < 2 {
            return Ok(Compacted {
                files_before,
                files_after: files_before,
                rows: 0,
                version: None,
            });
        }
        let paths: HashSet<&str> = small.iter().map(|r| r.path.as_str()).collect();
        let rows = self.scan_where(|path| paths.contains(path))?.collect()?;
        let staged = self.stage(&rows, false).await?;
        let files_after = files_before - small.len() + staged.files();
        let version = self
            .commit_replacing(small, staged, Commit::default(), Rewrite::Compaction)
            .await?;
        Ok(Compacted {
            files_before,
            files_after,
            rows: rows.height(),
            version: Some(version),
        })
    }

    /// Deletes data files no version within `retain` still needs; returns their paths.
    /// `force` allows a retention below the table's safe default (7 days).
    pub async fn vacuum(
        &mut self,
        retain: Duration,
        dry_run: bool,
        force: bool,
    ) -> Result<Vec<String>> {
        self.refresh().await?;
        let retention = chrono::Duration::from_std(retain).map_err(|e| Error::InvalidArgument {
            name: "retain",
            reason: format!("{retain:?}: {e}"),
        })?;
        let (table, metrics) = self
            .delta()
            .clone()
            .vacuum()
            .with_retention_period(retention)
            .with_dry_run(dry_run)
            .with_enforce_retention_duration(!force)
            .await?;
        self.table = table;
        Ok(metrics.files_deleted)
    }

    /// Writes a checkpoint of the log at the loaded version.
    pub async fn checkpoint(&mut self) -> Result<()> {
        self.refresh().await?;
        deltalake::checkpoints::create_checkpoint(self.delta(), None).await?;
        Ok(())
    }
}

/// Rows sorted by the Z-order (bit-interleaved ranks) of `columns`.
fn zorder(rows: &DataFrame, columns: &[String]) -> Result<DataFrame> {
    let n = rows.height();
    if n == 0 {
        return Ok(rows.clone());
    }
    let k = columns.len().min(4);
    let bits = 64 / k as u32;
    let mut keys = vec![0u64; n];
    let mut ranks: Vec<Vec<u64>> = Vec::with_capacity(k);
    for name in &columns[..k] {
        let series = rows
            .column(name)
            .map_err(|_| Error::InvalidArgument {
                name: "zorder-by",
                reason: format!("the table has no column {name:?}"),
            })?
            .as_materialized_series()
            .clone();
        let order = series.arg_sort(SortOptions::default());
        let mut rank = vec![0u64; n];
        let scale = ((1u128 << bits) - 1) as f64 / n.max(1) as f64;
        for (position, row) in order.iter().enumerate() {
            if let Some(row) = row {
                rank[row as usize] = (position as f64 * scale) as u64;
            }
        }
        ranks.push(rank);
    }
    for (row, key) in keys.iter_mut().enumerate() {
        for bit in (0..bits).rev() {
            for rank in &ranks {
                *key = (*key << 1) | ((rank[row] >> bit) & 1);
            }
        }
    }
    let order = UInt64Chunked::from_vec(PlSmallStr::EMPTY, keys).arg_sort(SortOptions::default());
    Ok(rows.take(&order)?)
}
