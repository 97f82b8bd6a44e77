//! What `isolake-score` and `isolake-train` read: a Delta table (at a version), or CSV,
//! Parquet and NDJSON files (or directories of them), and the model's feature matrix of what
//! was read. Both tools read the same way, so it lives in the data layer.

mod error;
mod features;
pub mod ndjson;

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::lake::LakeTable;
pub use error::InputError;
pub use features::FeatureMatrix;
pub use ndjson::Skipped;

type Error = InputError;
type Result<T, E = InputError> = std::result::Result<T, E>;

/// A file format of the inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// One JSON object per line (`.json`, `.ndjson`, `.jsonl`).
    Ndjson,
}

impl FileFormat {
    /// The format of a file, from its extension.
    pub fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(FileFormat::Csv),
            "parquet" | "pq" => Some(FileFormat::Parquet),
            "json" | "ndjson" | "jsonl" => Some(FileFormat::Ndjson),
            _ => None,
        }
    }
}

/// Where rows come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A Delta table, at its latest version or at `version`.
    Delta {
        /// Path or URL of the table.
        location: String,
        /// Version to read (time travel).
        version: Option<u64>,
    },
    /// Data files, read in order.
    Files(Vec<(PathBuf, FileFormat)>),
}

impl Input {
    /// Interprets command-line input arguments: a single directory holding `_delta_log` (or a
    /// `file://` URL) is a Delta table; otherwise each argument is a file, or a directory
    /// whose CSV, Parquet and NDJSON files are read in name order (hidden files skipped).
    pub fn from_args(args: &[String], version: Option<u64>) -> Result<Self> {
        let [first, ..] = args else {
            return Err(Error::usage("no input given: pass --input TABLE or files"));
        };
        let is_table =
            |a: &str| a.starts_with("file://") || Path::new(a).join("_delta_log").is_dir();
        if args.len() == 1 && is_table(first) {
            return Ok(Input::Delta {
                location: first.clone(),
                version,
            });
        }
        if version.is_some() {
            return Err(Error::usage(
                "--version applies to a Delta table, but the input is files",
            ));
        }
        let mut files = Vec::new();
        for arg in args {
            let path = PathBuf::from(arg);
            if path.is_dir() {
                if is_table(arg) {
                    return Err(Error::usage(format!(
                        "{arg} is a Delta table: give it as the only input"
                    )));
                }
                let mut found: Vec<PathBuf> = std::fs::read_dir(&path)
                    .map_err(|e| Error::io(&path, e))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.is_file()
                            && !p
                                .file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                            && FileFormat::of(p).is_some()
                    })
                    .collect();
                found.sort();
                if found.is_empty() {
                    return Err(Error::usage(format!(
                        "{arg} holds no Delta table and no .csv, .parquet, .json or .ndjson \
                         file"
                    )));
                }
                files.extend(found);
            } else if path.is_file() {
                files.push(path);
            } else {
                return Err(Error::usage(format!("input {arg} does not exist")));
            }
        }
        let files = files
            .into_iter()
            .map(|p| match FileFormat::of(&p) {
                Some(f) => Ok((p, f)),
                None => Err(Error::usage(format!(
                    "cannot tell the format of {}: use .csv, .parquet, .json/.ndjson/.jsonl",
                    p.display()
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Input::Files(files))
    }

    /// A human description, for messages and run tags.
    pub fn describe(&self) -> String {
        match self {
            Input::Delta { location, .. } => location.clone(),
            Input::Files(files) => match files.as_slice() {
                [(one, _)] => one.display().to_string(),
                many => format!("{} files", many.len()),
            },
        }
    }
}

/// An opened input: lazy frames to read in order, and for a Delta table its URL and the
/// version that is read.
pub struct Opened {
    /// One lazy frame per file (or one for the whole table).
    pub frames: Vec<LazyFrame>,
    /// The table's URL, for a Delta input.
    pub table_uri: Option<String>,
    /// The table version read, for a Delta input.
    pub delta_version: Option<u64>,
    /// NDJSON lines that were not a JSON object (skipped, counted, the first few named).
    pub skipped: Skipped,
}

/// Opens an input. Async because the Delta log is read with deltalake; run it on a
/// multi-threaded tokio runtime and collect the frames outside it or on that runtime.
pub async fn open(input: &Input) -> Result<Opened> {
    match input {
        Input::Delta { location, version } => {
            let mut table = LakeTable::open(location).await?;
            if let Some(v) = version {
                table.load_version(*v).await?;
            }
            Ok(Opened {
                frames: vec![table.scan()?],
                table_uri: Some(table.url().to_string()),
                delta_version: Some(table.version()),
                skipped: Skipped::default(),
            })
        }
        Input::Files(files) => {
            let mut skipped = Skipped::default();
            let frames = files
                .iter()
                .map(|(p, f)| match f {
                    FileFormat::Ndjson => Ok(ndjson::read(p, &mut skipped)?.lazy()),
                    other => scan_file(p, *other),
                })
                .collect::<Result<_>>()?;
            Ok(Opened {
                frames,
                table_uri: None,
                delta_version: None,
                skipped,
            })
        }
    }
}

/// A lazy scan of one file. Types are inferred from the whole file, so a column with a few
/// malformed values becomes a string column rather than failing the read; such values turn
/// into nulls (unscorable rows) when cast to numbers. NDJSON read this way fails on a
/// malformed line: [`open`] reads it with [`ndjson::read`] instead, which skips and counts them.
pub fn scan_file(path: &Path, format: FileFormat) -> Result<LazyFrame> {
    let p = PlRefPath::new(path.to_string_lossy().as_ref());
    let lf = match format {
        FileFormat::Csv => LazyCsvReader::new(p)
            .with_infer_schema_length(None)
            .finish()?,
        FileFormat::Parquet => LazyFrame::scan_parquet(p, ScanArgsParquet::default())?,
        FileFormat::Ndjson => LazyJsonLineReader::new(p)
            .with_infer_schema_length(None)
            .finish()?,
    };
    Ok(lf)
}
