//! The one toolkit of isolake's end-to-end tests: the built binaries, the Python interpreter
//! of the test venv, free ports, polling with a deadline and children that cannot outlive
//! their test; in modules, pipelines under test ([`lake`]), the train/score binaries and
//! their registries ([`registry`]), Flink's reference fixtures ([`flink`]), a real MLflow
//! server ([`mlflow`]), an S3-compatible server ([`s3`]) and headless Chromium ([`browser`]).

pub mod browser;
mod child;
pub mod flink;
pub mod lake;
pub mod mlflow;
pub mod registry;
pub mod s3;

use std::fmt::Display;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use child::ChildGuard;

/// The path of a workspace binary in this build's target dir (`.ci/run` builds them all
/// before the tests; `cargo test` alone builds only those of crates with integration tests).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (.ci/run does)",
        path.display()
    );
    path
}

/// The Python with the pinned test packages: `$ISOLAKE_PYTHON`, else the venv `.ci/run`
/// creates. Fails (never skips) when it is missing, saying how to get it.
pub fn python() -> PathBuf {
    installed_tool(
        "ISOLAKE_PYTHON",
        "venv/bin/python",
        "the interop tests need Python with deltalake and pyarrow",
    )
}

/// A program `.ci/run` installs under `~/.cache/isolake/<relative>`, or `$<env>` if set.
/// Fails (never skips) when it is missing, saying `why` it is needed and how to get it.
pub fn installed_tool(env: &str, relative: &str, why: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/isolake").join(relative))
        })
        .unwrap_or_else(|| panic!("HOME or {env} is set"));
    assert!(
        path.exists(),
        "{why}, and {} does not exist: run `.ci/run` (it installs it) or set {env}",
        path.display()
    );
    path
}

/// Runs a Python snippet with arguments and returns its stdout parsed as JSON.
pub fn run_python(script: &str, args: &[&str]) -> serde_json::Value {
    run_python_at(&python(), script, args)
}

/// Runs a Python snippet with the interpreter `python` and `args`; returns the last line it
/// printed, as JSON (libraries such as MLflow print links before it). A failure panics with
/// its stderr.
pub fn run_python_at<S: AsRef<std::ffi::OsStr>>(
    python: &Path,
    script: &str,
    args: &[S],
) -> serde_json::Value {
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("python printed no JSON ({e}): {stdout}"))
}

/// A port nothing listens on right now, for a server a test starts (another process may take
/// it before the server binds it, which the ephemeral range makes unlikely).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("a local address").port()
}

/// How often [`eventually`] and [`eventually_with`] look: often enough that a test waits
/// little past the moment, rarely enough that reading a table each time costs little.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Calls `probe` until it returns `Some`, and returns that; panics naming `what` (phrased as
/// what is awaited, e.g. "silver to reach 500 rows") once `timeout` has passed. For waiting
/// on a background process without hand-written loops that each time out differently.
pub fn eventually<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    poll(timeout, || probe().ok_or(()))
        .unwrap_or_else(|()| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Like [`eventually`], but the probe says what it saw instead (`Err`), and the panic shows
/// the last of it: the state a timed-out test got stuck in is what one needs to debug it.
pub fn eventually_with<T, E: Display>(
    timeout: Duration,
    what: &str,
    probe: impl FnMut() -> Result<T, E>,
) -> T {
    poll(timeout, probe).unwrap_or_else(|seen| {
        panic!("timed out after {timeout:?} waiting for {what}; last seen:\n{seen}")
    })
}

/// The first `Ok` of `probe`, called every [`POLL_EVERY`]; its last `Err` once `timeout` has
/// passed. The probe runs at least once, and the deadline is checked after each call, so an
/// answer that came just in time is not thrown away.
fn poll<T, E>(timeout: Duration, mut probe: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let started = Instant::now();
    loop {
        match probe() {
            Ok(value) => return Ok(value),
            Err(seen) if started.elapsed() >= timeout => return Err(seen),
            Err(_) => std::thread::sleep(POLL_EVERY),
        }
    }
}

/// Says visibly that `test` could not run here and why: on stderr, and as a line of the file
/// `$ISOLAKE_SKIP_LOG` names (`.ci/run` lists and counts those lines).
pub fn skip(test: &str, reason: &str) {
    eprintln!("SKIPPED: {test}: {reason}");
    if let Some(log) = std::env::var_os("ISOLAKE_SKIP_LOG") {
        use std::io::Write;
        let line = format!("{test}: {reason}\n");
        let _ = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventually_returns_the_first_answer() {
        let mut tries = 0;
        let got = eventually(Duration::from_secs(5), "the third try", || {
            tries += 1;
            (tries == 3).then_some(tries)
        });
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "waiting for an answer that never comes")]
    fn eventually_names_what_it_waited_for() {
        eventually(
            Duration::from_millis(50),
            "an answer that never comes",
            || None::<()>,
        );
    }

    #[test]
    #[should_panic(expected = "last seen:\n3 of 5")]
    fn eventually_with_shows_the_last_state() {
        eventually_with(Duration::from_millis(50), "5 of 5", || {
            Err::<(), _>("3 of 5")
        });
    }
}
