//! The binaries as a user runs them.
#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::process::Command;

use std::time::Duration;

use isolake_tests::lake::read_table;
use isolake_tests::{ChildGuard, binary, browser, eventually};

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
fn a_missing_config_is_a_clear_error() {
    // `run` without a config file is a clear error, not a pretend success.
    let output = Command::new(binary("isolake-pipeline"))
        .args(["run", "--config", "/nonexistent/isolake.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/isolake.toml"));
    let output = Command::new(binary("isolake-pipeline"))
        .args(["query", "--config", "/nonexistent/isolake.toml", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "query must not pretend to work");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/isolake.toml"), "{stderr}");
}

/// The number after `label` on a line of the report.
fn figure(report: &str, label: &str) -> usize {
    report
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} figure in:\n{report}"))
}

#[test]
fn the_demo_runs_the_whole_lakehouse_and_reports_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let demo = || {
        Command::new(binary("isolake-pipeline"))
            .args(["demo", "--rows", "6000", "--files", "4", "--dir"])
            .arg(&demo_dir)
            .output()
            .unwrap()
    };
    let output = demo();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        report.contains("promoted models:/fraud/1 to @production"),
        "{report}"
    );
    assert_eq!(figure(&report, "bronze"), 6000);
    assert_eq!(
        figure(&report, "silver") + figure(&report, "quarantine"),
        6000,
        "every line in silver or quarantine"
    );
    assert_eq!(
        figure(&report, "gold/scored_transactions"),
        figure(&report, "silver")
    );
    assert!(figure(&report, "gold/alerts") > 0);
    for section in [
        "quarantined rows by reason",
        "top model alerts",
        "recall per anomaly kind",
        "precision per detector",
        "Next, try:",
    ] {
        assert!(report.contains(section), "{section}: {report}");
    }
    // Every injected small-then-large pair is caught by the rule.
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with("small_then_large") && l.contains(" of "))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(line.trim_end().ends_with("100.0%"), "{line}");

    // The report: one self-contained page with every chart.
    let html_path = dir.path().join("report.html");
    let report_run = Command::new(binary("isolake-pipeline"))
        .args(["report", "--config"])
        .arg(demo_dir.join("isolake.toml"))
        .arg("--output")
        .arg(&html_path)
        .output()
        .unwrap();
    assert!(
        report_run.status.success(),
        "{}",
        String::from_utf8_lossy(&report_run.stderr)
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    for title in [
        "Anomalies over time",
        "Anomaly scores",
        "Alerts per detector",
        "Expectations",
        "Batch latency",
        "Rows per batch",
        "Model versions",
    ] {
        assert!(
            html.contains(&format!("<h2>{title}</h2>")),
            "{title} missing"
        );
    }
    assert_eq!(html.matches("<svg").count(), 7, "one chart per section");
    assert!(html.contains("<rect"), "bars are drawn");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("<script"),
        "self-contained: no network, no script"
    );
    // What a person sees: headless Chromium renders the page with every chart drawn.
    let png_path = dir.path().join("report.png");
    let shot = browser::screenshot(&html_path, &png_path, 1280, 3000);
    assert_eq!((shot.width, shot.height), (1280, 3000));
    let inked = shot.inked();
    assert!(
        inked > 0.03,
        "the rendered report is nearly blank ({:.1}% inked): {}",
        100.0 * inked,
        png_path.display()
    );
    // The bar charts' fills, as solid areas (not one stray pixel); the lines' dots.
    for (chart, rgb, at_least) in [
        ("anomalies over time", 0xc0392b, 5_000),
        ("score histogram", 0x2c7fb8, 5_000),
        ("alerts per detector", 0x8e44ad, 5_000),
        ("expectations", 0xe67e22, 5_000),
        ("batch latency", 0x16a085, 20),
        ("rows per batch", 0x2c3e50, 20),
        ("model versions", 0xd35400, 20),
    ] {
        let n = shot.pixels_of(rgb);
        assert!(
            n >= at_least,
            "{chart}: {n} pixels of #{rgb:06x} in {}",
            png_path.display()
        );
    }

    // A rerun starts afresh in its own directory and finds the same.
    let again = demo();
    assert!(again.status.success());
    assert_eq!(
        figure(&String::from_utf8_lossy(&again.stdout), "gold/alerts"),
        figure(&report, "gold/alerts")
    );

    // A directory the demo did not make is refused, not emptied.
    let precious = dir.path().join("precious");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("keep.txt"), "data").unwrap();
    let refused = Command::new(binary("isolake-pipeline"))
        .args(["demo", "--dir"])
        .arg(&precious)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--dir"));
    assert!(precious.join("keep.txt").exists());
}

/// The lines after "Next, try:" in the demo's report.
fn printed_commands(report: &str) -> Vec<String> {
    report
        .lines()
        .skip_while(|l| !l.contains("Next, try:"))
        .skip(1)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// A shell running `line` as the leader of its own process group, with the built binaries
/// on the PATH as `./isolake demo` puts them, from a directory that is not the demo's.
fn shell(line: &str, cwd: &std::path::Path) -> ChildGuard {
    let bin_dir = binary("isolake-pipeline").parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    ChildGuard::spawn_group(
        Command::new("sh")
            .args(["-c", line])
            .env("PATH", path)
            .current_dir(cwd)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    )
}

#[test]
fn every_command_the_demo_prints_runs_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let output = Command::new(binary("isolake-pipeline"))
        .args(["demo", "--rows", "4000", "--files", "3", "--dir"])
        .arg(&demo_dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    let commands = printed_commands(&report);
    assert_eq!(commands.len(), 5, "{commands:?}");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    // Silver's first version holds the first run's rows: the same rows the rebuilt one has.
    let silver = format!("\n{}\n", figure(&report, "silver"));
    let says = ["detector", silver.as_str(), "report written to", "file(s)"];
    for (line, said) in commands[..4].iter().zip(says) {
        let out = shell(line, &elsewhere).wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(said), "{line}: {stdout}");
    }
    assert!(
        demo_dir.join("report.html").exists(),
        "the report went where printed"
    );
    // The live feed: the generator lands files, the continuous run ingests them; SIGTERM
    // ends both (the pipeline commits its batch first).
    let before = read_table(&demo_dir.join("lake/bronze")).height();
    let feed = shell(&commands[4], &elsewhere);
    let grown = eventually(Duration::from_secs(60), "the live feed in bronze", || {
        let rows = read_table(&demo_dir.join("lake/bronze")).height();
        (rows > before).then_some(rows)
    });
    assert!(grown > before);
    feed.signal("-TERM").unwrap();
}

/// `--help` of `args`, which must succeed.
fn help(bin: &str, args: &[&str]) -> String {
    let out = Command::new(binary(bin))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{bin} {args:?} --help");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_help_ends_with_examples_that_use_real_flags() {
    let subcommands = [
        "demo",
        "run",
        "load-dimension",
        "report",
        "optimize",
        "vacuum",
        "init",
        "validate",
        "query",
    ];
    let mut pages: Vec<(String, Vec<&str>, String)> = Vec::new();
    for bin in [
        "isolake-gen",
        "isolake-train",
        "isolake-score",
        "isolake-pipeline",
    ] {
        pages.push((bin.to_string(), vec![], help(bin, &[])));
    }
    for sub in subcommands {
        pages.push((
            "isolake-pipeline".into(),
            vec![sub],
            help("isolake-pipeline", &[sub]),
        ));
    }
    let options_of = |bin: &str, sub: Option<&str>| -> String {
        let page = match sub {
            Some(sub) => help(bin, &[sub]),
            None => help(bin, &[]),
        };
        page.rsplit_once("Examples:\n")
            .map(|(o, _)| o.to_string())
            .unwrap_or(page)
    };
    for (bin, sub, page) in &pages {
        let (_, examples) = page
            .rsplit_once("Examples:\n")
            .unwrap_or_else(|| panic!("{bin} {sub:?}: no examples:\n{page}"));
        // An example may go on over a line ending in `\`: join those first.
        let joined = examples.replace("\\\n", " ");
        let lines: Vec<&str> = joined
            .lines()
            .filter(|l| l.trim_start().starts_with(bin.as_str()))
            .collect();
        assert!((2..=3).contains(&lines.len()), "{bin} {sub:?}: {examples}");
        for line in lines {
            for command in line.split("&&") {
                let words: Vec<&str> = command.split_whitespace().collect();
                let named = words.get(1).copied().filter(|w| subcommands.contains(w));
                let options = options_of(bin, named);
                for flag in words.iter().filter(|w| w.starts_with("--")) {
                    let flag = flag.trim_end_matches(['\\', '"']);
                    assert!(
                        options.contains(&format!("{flag} "))
                            || options.contains(&format!("{flag}\n")),
                        "{bin} {sub:?}: the example's {flag} is not an option of {named:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_launcher_links_the_built_binaries_onto_the_path() {
    // At run time: a compile-time path goes stale across clones that share a target dir.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let repo = std::path::Path::new(&manifest).parent().unwrap();
    let debug = binary("isolake-pipeline").parent().unwrap().to_path_buf();
    let target = debug.parent().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let out = Command::new(repo.join("isolake"))
        .arg("install")
        .env("CARGO_TARGET_DIR", target)
        .env("ISOLAKE_SKIP_BUILD", "1")
        .env("ISOLAKE_BIN", bin.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("linked isolake-gen isolake-train isolake-score isolake-pipeline"));
    for name in [
        "isolake-gen",
        "isolake-train",
        "isolake-score",
        "isolake-pipeline",
    ] {
        let link = std::fs::read_link(bin.path().join(name)).unwrap();
        assert_eq!(link, debug.join(name), "{name} points at the build");
    }
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let version = Command::new("sh")
        .args(["-c", "isolake-pipeline --version"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("isolake-pipeline "));
    let removed = Command::new(repo.join("isolake"))
        .arg("uninstall")
        .env("ISOLAKE_BIN", bin.path())
        .status()
        .unwrap();
    assert!(removed.success());
    assert_eq!(std::fs::read_dir(bin.path()).unwrap().count(), 0);
}
