//! Helpers for isolake's end-to-end tests: the built binaries and the Python interpreter of
//! the test venv.

pub mod browser;
pub mod mlflow;

use std::path::PathBuf;
use std::process::Command;

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
    let output = Command::new(python())
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
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
