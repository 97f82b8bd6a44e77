//! Pipelines under test: landing data, configs, runs of `isolake-pipeline`, and reading
//! what they wrote (tables, metrics, parquet files).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use polars::prelude::*;

use crate::{ChildGuard, binary};

/// A pipeline under test: `<dir>/landing`, `<dir>/lake` (or an `s3://` lake),
/// `<dir>/isolake.toml`.
pub struct Lake {
    pub dir: PathBuf,
    /// The lake's `s3://` URL (tables under it), when it is on an object store.
    pub remote: Option<String>,
}

impl Lake {
    /// A config with the given extra TOML (`source_extra` appended after `[source] landing =
    /// ...`, then `rest`), and an empty landing dir.
    pub fn new(dir: &Path, source_extra: &str, rest: &str) -> Self {
        std::fs::create_dir_all(dir.join("landing")).expect("create the landing dir");
        let config = format!(
            "id = \"fraud\"\nlake = \"./lake\"\n[source]\nlanding = \"./landing\"\n{source_extra}\n{rest}\n"
        );
        std::fs::write(dir.join("isolake.toml"), config).expect("write isolake.toml");
        Self {
            dir: dir.to_path_buf(),
            remote: None,
        }
    }

    /// [`new`](Self::new) with the lake at `s3://<bucket>/<prefix>` on `server`, whose
    /// options go in the config's `[storage]` table (and into this process, to read back).
    pub fn on_s3(
        dir: &Path,
        server: &crate::s3::MotoServer,
        prefix: &str,
        source_extra: &str,
        rest: &str,
    ) -> Self {
        Self::on_s3_landing(dir, server, prefix, None, source_extra, rest)
    }

    /// [`on_s3`](Self::on_s3), with the landing zone at `s3://<bucket>/<landing>/` when
    /// given (put files there with [`crate::s3::upload`]).
    pub fn on_s3_landing(
        dir: &Path,
        server: &crate::s3::MotoServer,
        prefix: &str,
        landing: Option<&str>,
        source_extra: &str,
        rest: &str,
    ) -> Self {
        let url = format!("s3://{}/{prefix}", server.bucket);
        let landing = match landing {
            Some(landing) => format!("s3://{}/{landing}/", server.bucket),
            None => "./landing".to_string(),
        };
        let storage: String = server
            .options()
            .iter()
            .map(|(k, v)| format!("{k} = \"{v}\"\n"))
            .collect();
        std::fs::create_dir_all(dir.join("landing")).expect("create the landing dir");
        let config = format!(
            "id = \"fraud\"\nlake = \"{url}\"\n[lock]\nlease_ttl = \"2s\"\n[storage]\n{storage}\
             [source]\nlanding = \"{landing}\"\n{source_extra}\n{rest}\n"
        );
        std::fs::write(dir.join("isolake.toml"), config).expect("write isolake.toml");
        isolake_data::lake::s3_store::configure(server.options());
        Self {
            dir: dir.to_path_buf(),
            remote: Some(url),
        }
    }

    /// The location of `<lake>/<table>`.
    pub fn table_location(&self, table: &str) -> String {
        match &self.remote {
            Some(url) => format!("{}/{table}", url.trim_end_matches('/')),
            None => self
                .dir
                .join("lake")
                .join(table)
                .to_string_lossy()
                .into_owned(),
        }
    }

    /// The landing dir the pipeline reads.
    pub fn landing(&self) -> PathBuf {
        self.dir.join("landing")
    }

    /// `isolake-pipeline <args> --config <dir>/isolake.toml`, not yet run: for tests that
    /// expect a failure or set more (env, pipes).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary("isolake-pipeline"));
        cmd.args(args)
            .arg("--config")
            .arg(self.dir.join("isolake.toml"))
            // Fetched model artifacts stay in the test's directory, not the user's cache.
            .env("ISOLAKE_MODEL_CACHE", self.dir.join(".model-cache"));
        cmd
    }

    /// `run --once`, which must succeed.
    pub fn run_once(&self) -> Output {
        let out = self.output(&["run", "--once"]);
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
        let out = self.output(args);
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts the pipeline binary with `args` in the background, stdout and stderr piped;
    /// guarded, so that a failing test does not leave it running.
    pub fn spawn(&self, args: &[&str]) -> ChildGuard {
        ChildGuard::spawn(
            self.command(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
    }

    /// The latest version of `<lake>/<table>`, read with isolake's reader.
    pub fn read(&self, table: &str) -> DataFrame {
        read_table(Path::new(&self.table_location(table)))
    }

    /// Runs `args` and SIGKILLs the run right after it made `n` more commits to `table`,
    /// placing the kill by watching the table (not by timing, so it lands mid-run on any
    /// machine). Returns whether it was killed (then by signal 9, asserted); a run that ended
    /// first must have succeeded.
    pub fn kill_after_commits(&self, args: &[&str], table: &str, n: usize) -> bool {
        use std::os::unix::process::ExitStatusExt;
        let commits = || self.commits(table);
        let target = commits() + n;
        let mut child = self.spawn(args);
        let killed = loop {
            if child.try_wait().expect("poll the run").is_some() {
                break false;
            }
            if commits() >= target {
                child.kill().expect("SIGKILL the run");
                break true;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        let status = child.wait().expect("wait for the run");
        if killed {
            assert_eq!(status.signal(), Some(9), "killed after {table}: {status:?}");
        } else {
            assert!(status.success(), "a run failed by itself: {status:?}");
        }
        killed
    }

    /// How many commits `<lake>/<table>`'s log holds (0 before the table exists).
    pub fn commits(&self, table: &str) -> usize {
        if self.remote.is_some() {
            return self.remote_commits(table);
        }
        let log = self.dir.join("lake").join(table).join("_delta_log");
        let Ok(entries) = std::fs::read_dir(&log) else {
            return 0;
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    }

    /// [`commits`](Self::commits) of an object-store table: its `_delta_log/*.json` objects.
    fn remote_commits(&self, table: &str) -> usize {
        let location = format!("{}/_delta_log/", self.table_location(table));
        let Ok(url) = url::Url::parse(&location) else {
            return 0;
        };
        block_on(async {
            let Ok(dir) = isolake_data::lake::objects::ObjectDir::open(&url) else {
                return 0;
            };
            (dir.list_after("", None).await)
                .map(|l| l.iter().filter(|o| o.name.ends_with(".json")).count())
                .unwrap_or(0)
        })
    }

    /// The finished run of `args`, whatever its exit status.
    fn output(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .expect("isolake-pipeline starts")
    }
}

/// A small-then-large detector over the canonical record, with a one-minute window.
pub const SMALL_THEN_LARGE: &str = r#"
[[detectors]]
name = "stl"
kind = "small_then_large"
window = "60s"
"#;

/// The latest version of the Delta table at `path`, read with isolake's reader.
pub fn read_table(path: &Path) -> DataFrame {
    let location = path.to_string_lossy().into_owned();
    block_on(async move {
        isolake_data::lake::scan_table(&location, None)
            .await
            .unwrap_or_else(|e| panic!("open the table at {location}: {e}"))
            .collect()
            .unwrap_or_else(|e| panic!("read the table at {location}: {e}"))
    })
}

/// Runs a data-layer future from a plain test (polars needs a multi-threaded runtime).
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// The value of the Prometheus sample line starting with `series` (name and labels).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Generates `rows` canonical transactions in `files` files into `out`, with `isolake-gen`
/// (the same data a user lands).
pub fn generate(out: &Path, rows: usize, files: usize, seed: u64, bad_fraction: f64) {
    let status = Command::new(binary("isolake-gen"))
        .args(["--rows", &rows.to_string(), "--files", &files.to_string()])
        .args(["--seed", &seed.to_string(), "--quiet"])
        .args(["--bad-fraction", &bad_fraction.to_string()])
        .arg("--out")
        .arg(out)
        .status()
        .expect("isolake-gen starts");
    assert!(status.success());
}

/// Non-blank lines of every file under `dir` (what bronze must hold, one row each).
pub fn count_lines(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("list the dir") {
        let path = entry.expect("a dir entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read a landed file");
            n += bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .count();
        }
    }
    n
}

/// A column, which the test expects to exist.
fn column<'a>(df: &'a DataFrame, name: &str) -> &'a Column {
    df.column(name)
        .unwrap_or_else(|e| panic!("no column {name}: {e}"))
}

/// A column's values as text (nulls as `None`), in row order.
pub fn strings(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    column(df, name)
        .cast(&DataType::String)
        .unwrap_or_else(|e| panic!("{name} as text: {e}"))
        .str()
        .expect("a string column after the cast")
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

/// Quarantine's `_failed_expectations`, per row.
pub fn failed_expectations(quarantine: &DataFrame) -> Vec<Vec<String>> {
    let lists = column(quarantine, "_failed_expectations")
        .list()
        .expect("_failed_expectations is a list column")
        .clone();
    (0..quarantine.height())
        .map(|i| {
            lists.get_as_series(i).map_or_else(Vec::new, |reasons| {
                reasons
                    .str()
                    .expect("reasons are text")
                    .iter()
                    .map(|s| s.unwrap_or_default().to_string())
                    .collect()
            })
        })
        .collect()
}

/// How many values of a column are not null.
pub fn non_null(df: &DataFrame, name: &str) -> usize {
    column(df, name).is_not_null().sum().unwrap_or(0) as usize
}

/// The sorted values of a string column (nulls as `<null>`).
pub fn sorted_strings(df: &DataFrame, name: &str) -> Vec<String> {
    let mut v: Vec<String> = strings(df, name)
        .into_iter()
        .map(|s| s.unwrap_or_else(|| "<null>".to_string()))
        .collect();
    v.sort();
    v
}

/// Sum of an integer column of the event log over rows where `flow` equals `flow`.
pub fn event_sum(events: &DataFrame, flow: &str, name: &str) -> i64 {
    let filtered = events
        .clone()
        .lazy()
        .filter(col("flow").eq(lit(flow)))
        .select([col(name).sum()])
        .collect()
        .unwrap_or_else(|e| panic!("sum {name} of {flow} events: {e}"));
    column(&filtered, name)
        .i64()
        .unwrap_or_else(|e| panic!("{name} is an integer column: {e}"))
        .get(0)
        .unwrap_or(0)
}

/// Rows of a parquet file, read with polars.
pub fn read_parquet_rows(path: &Path) -> usize {
    let file = std::fs::File::open(path).expect("open the parquet file");
    ParquetReader::new(file)
        .finish()
        .expect("read the parquet file")
        .height()
}
