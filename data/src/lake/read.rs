//! Reading a Delta table version as a polars `LazyFrame`.
//!
//! The Delta log says which parquet files make up a version; polars scans exactly those, so
//! projections and filters are pushed into the parquet reader (row groups are skipped on their
//! statistics) and nothing is read that the query does not need.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::location;
use super::table::LakeTable;
use crate::error::Result;

impl LakeTable {
    /// The loaded version as a lazy frame with the table's schema, in its column order.
    ///
    /// Files written before a column was added read that column as null; partition columns
    /// are restored from the log's partition values.
    pub fn scan(&self) -> Result<LazyFrame> {
        self.scan_where(|_| true)
    }

    /// Like [`scan`](Self::scan), over only the files whose log path `keep` selects (a
    /// compaction reads the small files it rewrites).
    pub(super) fn scan_where(&self, keep: impl Fn(&str) -> bool) -> Result<LazyFrame> {
        let schema = self.schema()?;
        let partition_columns = self.partition_columns()?;
        let table_dir = location::local_dir(self.url())?;

        // Files grouped by their partition values (one group for an unpartitioned table).
        let mut groups: BTreeMap<Vec<(String, Option<String>)>, Vec<PlRefPath>> = BTreeMap::new();
        for file in self.delta().snapshot()?.log_data().iter() {
            if !keep(file.path().as_ref()) {
                continue;
            }
            let path = table_dir.join(file.path().as_ref());
            let mut values: Vec<(String, Option<String>)> =
                file.partition_values_map().into_iter().collect();
            values.sort();
            groups
                .entry(values)
                .or_default()
                .push(PlRefPath::new(path.to_string_lossy().as_ref()));
        }
        if groups.is_empty() {
            return Ok(DataFrame::empty_with_schema(&schema).lazy());
        }

        let file_schema: Schema = schema
            .iter()
            .filter(|(name, _)| !partition_columns.iter().any(|p| p == name.as_str()))
            .map(|(name, dtype)| Field::new(name.clone(), dtype.clone()))
            .collect();
        let file_schema = Arc::new(file_schema);
        let order: Vec<Expr> = schema.iter_names().map(|n| col(n.clone())).collect();

        let frames = groups
            .into_iter()
            .map(|(values, paths)| {
                let args = ScanArgsParquet {
                    schema: Some(file_schema.clone()),
                    allow_missing_columns: true,
                    rechunk: false,
                    ..Default::default()
                };
                let mut lf = LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)?;
                if !values.is_empty() {
                    let literals: Vec<Expr> = values
                        .iter()
                        .map(|(name, value)| {
                            let dtype = schema
                                .get(name.as_str())
                                .cloned()
                                .unwrap_or(DataType::String);
                            match value {
                                Some(v) => lit(v.clone()),
                                None => lit(NULL),
                            }
                            .cast(dtype)
                            .alias(name.as_str())
                        })
                        .collect();
                    lf = lf.with_columns(literals);
                }
                Ok(lf.select(order.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        if frames.len() == 1 {
            Ok(frames.into_iter().next().expect("one frame"))
        } else {
            Ok(concat(frames, UnionArgs::default())?)
        }
    }
}

/// Reads a table at `location` (latest version, or `version`) as a lazy frame.
pub async fn scan_table(location: &str, version: Option<u64>) -> Result<LazyFrame> {
    let mut table = LakeTable::open(location).await?;
    if let Some(version) = version {
        table.load_version(version).await?;
    }
    table.scan()
}
