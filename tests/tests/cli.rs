//! The binaries as a user runs them.
#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::process::Command;

use isolake_tests::binary;

#[test]
fn isolake_gen_writes_the_same_bytes_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str, seed: &str| {
        let status = Command::new(binary("isolake-gen"))
            .args([
                "--rows",
                "3000",
                "--files",
                "3",
                "--seed",
                seed,
                "--bad-fraction",
                "0.05",
                "--quiet",
            ])
            .arg("--out")
            .arg(dir.path().join(out))
            .arg("--labels")
            .arg(dir.path().join(format!("{out}.csv")))
            .status()
            .unwrap();
        assert!(status.success());
        let mut files: Vec<_> = std::fs::read_dir(dir.path().join(out))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect::<Vec<_>>()
    };
    let a = run("a", "9");
    assert_eq!(a.len(), 3);
    assert_eq!(a, run("b", "9"));
    assert_ne!(a, run("c", "10"));
    assert_eq!(
        std::fs::read(dir.path().join("a.csv")).unwrap(),
        std::fs::read(dir.path().join("b.csv")).unwrap()
    );
}

#[test]
fn isolake_gen_rejects_bad_arguments_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary("isolake-gen"))
        .args(["--rows", "10", "--files", "20"])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid argument files"), "{stderr}");
}

#[test]
fn isolake_gen_rate_mode_lands_files_over_time() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let status = Command::new(binary("isolake-gen"))
        .args(["--rate", "200", "--duration", "2s", "--quiet"])
        .arg("--out")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1900),
        "paced, not instant"
    );
    let lines: usize = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(lines, 400);
}

#[test]
fn unbuilt_commands_say_so_and_fail() {
    // `run` without a config file is a clear error, not a pretend success.
    let output = Command::new(binary("isolake-pipeline"))
        .args(["run", "--config", "/nonexistent/isolake.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/isolake.toml"));
    let output = Command::new(binary("isolake-pipeline"))
        .arg("query")
        .output()
        .unwrap();
    assert!(!output.status.success(), "query must not pretend to work");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not implemented yet"), "{stderr}");
}

#[test]
fn the_demo_lands_data_and_loads_a_bronze_like_table_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let demo = || {
        let output = Command::new(binary("isolake-pipeline"))
            .args(["demo", "--rows", "4000", "--files", "4", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = demo();
    assert!(
        first.contains("generated 4000 labelled transactions in 4 files"),
        "{first}"
    );
    assert!(
        first.contains("4 files committed, 0 already there, now at version 4"),
        "{first}"
    );
    assert!(dir.path().join("lake/bronze/_delta_log").is_dir());
    // Rerun: the same files are recognised by their app transactions, nothing is duplicated.
    let second = demo();
    assert!(
        second.contains("0 files committed, 4 already there, now at version 4"),
        "{second}"
    );
}
