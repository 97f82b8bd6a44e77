//! Shared helpers of the pipeline's end-to-end tests: landing data, configs, runs, reads.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use isolake_tests::binary;
use polars::prelude::*;

/// A pipeline under test: `<dir>/landing`, `<dir>/lake`, `<dir>/isolake.toml`.
pub struct Lake {
    pub dir: PathBuf,
}

impl Lake {
    /// A config with the given extra TOML (appended after `[source] landing = ...`).
    pub fn new(dir: &Path, source_extra: &str, rest: &str) -> Self {
        std::fs::create_dir_all(dir.join("landing")).unwrap();
        let config = format!(
            "id = \"fraud\"\nlake = \"./lake\"\n[source]\nlanding = \"./landing\"\n{source_extra}\n{rest}\n"
        );
        std::fs::write(dir.join("isolake.toml"), config).unwrap();
        Self {
            dir: dir.to_path_buf(),
        }
    }

    pub fn landing(&self) -> PathBuf {
        self.dir.join("landing")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary("isolake-pipeline"));
        cmd.args(args)
            .arg("--config")
            .arg(self.dir.join("isolake.toml"));
        cmd
    }

    /// `run --once`, which must succeed.
    pub fn run_once(&self) -> Output {
        let out = self.command(&["run", "--once"]).output().unwrap();
        assert!(
            out.status.success(),
            "run --once failed ({:?}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs the pipeline binary with `args` (plus `--config`), which must succeed.
    pub fn run_with(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The latest version of `<lake>/<table>`, read with isolake's reader.
    pub fn read(&self, table: &str) -> DataFrame {
        read_table(&self.dir.join("lake").join(table))
    }
}

pub fn read_table(path: &Path) -> DataFrame {
    let location = path.to_string_lossy().into_owned();
    block_on(async move {
        isolake_data::lake::scan_table(&location, None)
            .await
            .unwrap()
            .collect()
            .unwrap()
    })
}

/// Runs a data-layer future from a plain test (polars needs a multi-threaded runtime).
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// The value of the Prometheus sample line starting with `series` (name and labels).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Generates `rows` canonical transactions in `files` files into `out`.
pub fn generate(out: &Path, rows: usize, files: usize, seed: u64, bad_fraction: f64) {
    let status = Command::new(binary("isolake-gen"))
        .args(["--rows", &rows.to_string(), "--files", &files.to_string()])
        .args(["--seed", &seed.to_string(), "--quiet"])
        .args(["--bad-fraction", &bad_fraction.to_string()])
        .arg("--out")
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Non-blank lines of every file under `dir` (what bronze must hold, one row each).
pub fn count_lines(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            n += bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .count();
        }
    }
    n
}

/// A column's values as text (nulls as `None`), in row order.
pub fn strings(df: &DataFrame, column: &str) -> Vec<Option<String>> {
    df.column(column)
        .unwrap()
        .cast(&DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

/// How many values of a column are not null.
pub fn non_null(df: &DataFrame, column: &str) -> usize {
    df.column(column).unwrap().is_not_null().sum().unwrap_or(0) as usize
}

/// The sorted values of a string column.
pub fn sorted_strings(df: &DataFrame, column: &str) -> Vec<String> {
    let mut v: Vec<String> = df
        .column(column)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap_or("<null>").to_string())
        .collect();
    v.sort();
    v
}

/// Sum of an integer column over rows where `flow` equals `flow`.
pub fn event_sum(events: &DataFrame, flow: &str, column: &str) -> i64 {
    let filtered = events
        .clone()
        .lazy()
        .filter(col("flow").eq(lit(flow)))
        .select([col(column).sum()])
        .collect()
        .unwrap();
    filtered
        .column(column)
        .unwrap()
        .i64()
        .unwrap()
        .get(0)
        .unwrap_or(0)
}

/// Rows of a parquet file, read with polars.
pub fn read_parquet_rows(path: &Path) -> usize {
    let file = std::fs::File::open(path).unwrap();
    ParquetReader::new(file).finish().unwrap().height()
}
