//! Where scored chunks go. Each chunk is written as it comes, so memory stays bounded by one
//! chunk whatever the input's size.
//!
//! File outputs are written to a hidden temporary file renamed into place by
//! [`Sink::finish`]: a failed run leaves no half-written output. A Delta output is appended
//! to (created on the first chunk), one commit per chunk.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use isolake_data::lake::{Commit, CreateOptions, LakeTable, Rewrite, Staged};
use isolake_data::polars::prelude::*;
use std::io::Write;

use crate::error::{Error, Result};
use crate::scorer::TOP_FEATURES;

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// A Delta table (created if missing, appended to otherwise).
    Delta,
    /// One Parquet file.
    Parquet,
    /// One CSV file; `top_features` is written as `a;b;c`.
    Csv,
    /// One NDJSON file.
    Ndjson,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "delta" => Ok(OutputFormat::Delta),
            "parquet" => Ok(OutputFormat::Parquet),
            "csv" => Ok(OutputFormat::Csv),
            "ndjson" | "json" | "jsonl" => Ok(OutputFormat::Ndjson),
            other => Err(format!(
                "unknown output format {other:?}: use delta, parquet, csv or ndjson"
            )),
        }
    }
}

impl OutputFormat {
    /// The format an output path suggests: its extension, else Delta (a directory).
    pub fn infer(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("parquet") => OutputFormat::Parquet,
            Some("csv") => OutputFormat::Csv,
            Some("json" | "ndjson" | "jsonl") => OutputFormat::Ndjson,
            _ => OutputFormat::Delta,
        }
    }
}

/// What to do when the output already exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum IfExists {
    /// Refuse (files); append to it (Delta tables, as a scheduled job does).
    #[default]
    Default,
    /// Refuse to write.
    Fail,
    /// Replace it: a file atomically (renamed into place), a table's rows in ONE commit (a new
    /// version; time travel still reads the old one).
    Overwrite,
    /// Add the rows (Delta only: a file cannot be appended to).
    Append,
}

enum Writer {
    Delta {
        runtime: tokio::runtime::Runtime,
        table: Option<Box<LakeTable>>,
        location: String,
        /// Overwrite: every chunk's files, committed as one replacement at the end.
        staged: Option<Staged>,
        mode: IfExists,
    },
    Parquet(Option<Box<isolake_data::polars::io::parquet::write::BatchedWriter<BufWriter<File>>>>),
    Csv(Option<isolake_data::polars::io::csv::write::BatchedWriter<BufWriter<File>>>),
    Ndjson,
}

/// A destination for scored chunks.
pub struct Sink {
    writer: Writer,
    /// For files: (temporary path, final path).
    paths: Option<(PathBuf, PathBuf)>,
    file: Option<BufWriter<File>>,
}

impl Sink {
    /// Prepares `path` for `format`. An existing output is refused unless `if_exists` says
    /// otherwise (nothing is overwritten by accident); a Delta table is appended to by default.
    pub fn create(path: &Path, format: OutputFormat, if_exists: IfExists) -> Result<Self> {
        if format == OutputFormat::Delta {
            return Self::delta(path, if_exists);
        }
        match if_exists {
            IfExists::Append => {
                return Err(Error::usage(format!(
                    "{} is a {format:?} file, which cannot be appended to: write a Delta \
                     table (--format delta) or pass --if-exists overwrite",
                    path.display()
                )));
            }
            IfExists::Default | IfExists::Fail if path.exists() => {
                return Err(Error::usage(format!(
                    "output {} already exists: pass --if-exists overwrite to replace it, or \
                     choose another path",
                    path.display()
                )));
            }
            _ => {}
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::usage(format!("{} is not a file path", path.display())))?;
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let writer = match format {
            OutputFormat::Ndjson => Writer::Ndjson,
            OutputFormat::Parquet => Writer::Parquet(None),
            OutputFormat::Csv => Writer::Csv(None),
            OutputFormat::Delta => unreachable!("handled above"),
        };
        Ok(Sink {
            writer,
            paths: Some((tmp, path.to_path_buf())),
            file: Some(BufWriter::new(file)),
        })
    }

    fn delta(path: &Path, mode: IfExists) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Error::io(path, e))?;
        let location = path.to_string_lossy().into_owned();
        if mode == IfExists::Fail && runtime.block_on(LakeTable::exists(&location))? {
            return Err(Error::usage(format!(
                "table {location} already exists: pass --if-exists append or overwrite"
            )));
        }
        Ok(Sink {
            writer: Writer::Delta {
                runtime,
                table: None,
                location,
                staged: None,
                mode,
            },
            paths: None,
            file: None,
        })
    }

    /// Writes one scored chunk.
    pub fn write(&mut self, df: &DataFrame) -> Result<()> {
        // The batched writers need the columns' chunks aligned.
        let mut aligned = df.clone();
        aligned.align_chunks();
        let df = &aligned;
        match &mut self.writer {
            Writer::Delta {
                runtime,
                table,
                location,
                staged,
                mode,
            } => runtime.block_on(async {
                if table.is_none() {
                    *table = Some(Box::new(
                        LakeTable::open_or_create(
                            location,
                            df.schema().as_ref(),
                            CreateOptions::default(),
                        )
                        .await?,
                    ));
                }
                let Some(t) = table.as_mut() else {
                    return Ok(());
                };
                if *mode == IfExists::Overwrite {
                    let files = t.stage(df, true).await?;
                    *staged = Some(match staged.take() {
                        Some(before) => before.merge(files),
                        None => files,
                    });
                } else {
                    t.append(df, Commit::default()).await?;
                }
                Ok::<_, Error>(())
            })?,
            Writer::Parquet(w) => {
                if w.is_none() {
                    let file = self
                        .file
                        .take()
                        .ok_or_else(|| Error::usage("sink closed"))?;
                    *w = Some(Box::new(
                        ParquetWriter::new(file).batched(df.schema().as_ref())?,
                    ));
                }
                if let Some(w) = w.as_mut() {
                    w.write_batch(df)?;
                }
            }
            Writer::Csv(w) => {
                let flat = flatten_lists(df)?;
                if w.is_none() {
                    let file = self
                        .file
                        .take()
                        .ok_or_else(|| Error::usage("sink closed"))?;
                    *w = Some(CsvWriter::new(file).batched(flat.schema().as_ref())?);
                }
                if let Some(w) = w.as_mut() {
                    w.write_batch(&flat)?;
                }
            }
            Writer::Ndjson => {
                let file = self
                    .file
                    .as_mut()
                    .ok_or_else(|| Error::usage("sink closed"))?;
                JsonWriter::new(file)
                    .with_json_format(JsonFormat::JsonLines)
                    .finish(&mut df.clone())?;
            }
        }
        Ok(())
    }

    /// Completes the output: flushes and renames a file into place.
    pub fn finish(self) -> Result<()> {
        match self.writer {
            Writer::Delta {
                runtime,
                table,
                staged,
                ..
            } => {
                if let (Some(mut table), Some(staged)) = (table, staged) {
                    let commit = Commit {
                        evolve_schema: true,
                        ..Default::default()
                    };
                    runtime.block_on(table.replace_staged(staged, commit, Rewrite::Overwrite))?;
                }
                return Ok(());
            }
            Writer::Parquet(Some(w)) => {
                w.finish()?;
            }
            Writer::Csv(Some(mut w)) => w.finish()?,
            Writer::Parquet(None) | Writer::Csv(None) | Writer::Ndjson => {}
        }
        if let (Some(mut file), Some((tmp, _))) = (self.file, &self.paths) {
            file.flush().map_err(|e| Error::io(tmp, e))?;
        }
        if let Some((tmp, path)) = self.paths {
            let f = File::open(&tmp).map_err(|e| Error::io(&tmp, e))?;
            f.sync_all().map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }
}

/// CSV has no lists: `top_features` becomes `a;b;c`.
fn flatten_lists(df: &DataFrame) -> Result<DataFrame> {
    let Ok(col) = df.column(TOP_FEATURES) else {
        return Ok(df.clone());
    };
    let list = col.as_materialized_series().list()?.clone();
    let joined: Vec<Option<String>> = list
        .amortized_iter()
        .map(|s| {
            s.and_then(|s| {
                s.as_ref().str().ok().map(|ca| {
                    ca.iter()
                        .map(|v| v.unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join(";")
                })
            })
        })
        .collect();
    let mut out = df.clone();
    out.with_column(Column::new(TOP_FEATURES.into(), joined))?;
    Ok(out)
}
