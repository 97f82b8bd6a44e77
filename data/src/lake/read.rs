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
        // Files grouped by their partition values (one group for an unpartitioned table).
        let mut groups: BTreeMap<Vec<(String, Option<String>)>, Vec<String>> = BTreeMap::new();
        for file in self.delta().snapshot()?.log_data().iter() {
            if !keep(file.path().as_ref()) {
                continue;
            }
            let mut values: Vec<(String, Option<String>)> =
                file.partition_values_map().into_iter().collect();
            values.sort();
            groups
                .entry(values)
                .or_default()
                .push(file.path().to_string());
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
                let mut lf = self.scan_files(&paths, &file_schema, args)?;
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

impl LakeTable {
    /// The data files `paths` (relative to the table) as one lazy frame of `file_schema`:
    /// polars scans local files itself; files on an object store are fetched (in parallel)
    /// through the table's store and read from memory.
    fn scan_files(
        &self,
        paths: &[String],
        file_schema: &SchemaRef,
        args: ScanArgsParquet,
    ) -> Result<LazyFrame> {
        if self.url().scheme() == "file" {
            let dir = location::local_dir(self.url())?;
            let paths: Vec<PlRefPath> = paths
                .iter()
                .map(|p| PlRefPath::new(dir.join(p).to_string_lossy().as_ref()))
                .collect();
            return Ok(LazyFrame::scan_parquet_files(
                paths.into_iter().collect(),
                args,
            )?);
        }
        let files = super::objects::block_on(self.fetch_files(paths))?;
        let mut out = DataFrame::empty_with_schema(file_schema);
        for bytes in files {
            let df = ParquetReader::new(std::io::Cursor::new(bytes)).finish()?;
            out.vstack_mut(&conform_file(df, file_schema)?)?;
        }
        Ok(out.lazy())
    }

    async fn fetch_files(&self, paths: &[String]) -> Result<Vec<bytes::Bytes>> {
        use deltalake::logstore::object_store::ObjectStoreExt;
        use futures::{StreamExt, TryStreamExt};
        let store = self.delta().log_store().object_store(None);
        let paths: Vec<deltalake::logstore::object_store::path::Path> =
            paths.iter().map(|p| p.as_str().into()).collect();
        let fetches = paths.into_iter().map(move |path| {
            let store = store.clone();
            async move { store.get(&path).await?.bytes().await }
        });
        let files = futures::stream::iter(fetches)
            .buffered(8)
            .try_collect()
            .await
            .map_err(|source| crate::error::Error::ObjectStore {
                location: self.url().to_string(),
                source: Box::new(source),
            })?;
        Ok(files)
    }
}

/// A data file's frame with `schema`'s columns, in its order and types: columns the file
/// predates are nulls (as polars' `allow_missing_columns` gives for local scans).
fn conform_file(df: DataFrame, schema: &SchemaRef) -> Result<DataFrame> {
    let columns: Vec<Expr> = schema
        .iter()
        .map(|(name, dtype)| match df.schema().contains(name) {
            true => col(name.clone()).cast(dtype.clone()),
            false => lit(NULL).cast(dtype.clone()).alias(name.clone()),
        })
        .collect();
    Ok(df.lazy().select(columns).collect()?)
}

/// Reads a table at `location` (latest version, or `version`) as a lazy frame.
pub async fn scan_table(location: &str, version: Option<u64>) -> Result<LazyFrame> {
    let mut table = LakeTable::open(location).await?;
    if let Some(version) = version {
        table.load_version(version).await?;
    }
    table.scan()
}
