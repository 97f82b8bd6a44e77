//! The properties: one case runs through both pipelines, then bronze, silver, quarantine and
//! the event log must hold exactly what each line's fate says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use isolake_tests::lake::{Lake, failed_expectations, strings};
use polars::prelude::*;
use serde_json::Value;

use crate::case::{Case, Place};
use crate::line::{Fate, Line};
use crate::pipeline::{DECLARED, run_mixed, run_reference};

/// Runs one case and checks every property; returns how long it took.
pub fn check(seed: u64, root: &Path) -> Duration {
    let started = Instant::now();
    let case = Case::generate(seed);
    let summary = case.summary();
    eprintln!("{summary}");
    let lake = run_mixed(&case, &summary, root);
    let reference = run_reference(&case, root);
    let landed = Landed {
        seed,
        summary: &summary,
        placed: case.placed(),
    };
    landed.check_bronze(&lake.read("bronze"));
    landed.check_silver(&lake.read("silver"), &reference);
    landed.check_quarantine(&lake.read("quarantine"));
    // No run recorded a failure.
    let statuses = strings(&lake.read("event_log"), "status");
    assert!(
        !statuses.iter().any(|s| s.as_deref() == Some("failed")),
        "seed {seed}: a batch failed: {statuses:?}"
    );
    started.elapsed()
}

/// A case's landed lines, and how to name the case in a failure.
struct Landed<'a> {
    seed: u64,
    summary: &'a str,
    /// Every non-blank line by its place.
    placed: BTreeMap<Place, &'a Line>,
}

impl Landed<'_> {
    /// The places of the lines whose fate is `want`.
    fn with_fate(&self, want: fn(&Fate) -> bool) -> BTreeSet<Place> {
        self.placed
            .iter()
            .filter(|(_, l)| want(&l.fate))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// What differs between the expected places and the rows' places (`None`: nothing).
    fn place_diff(&self, expected: &BTreeSet<Place>, got: &[Place]) -> Option<String> {
        let mut seen: BTreeMap<&Place, usize> = BTreeMap::new();
        for place in got {
            *seen.entry(place).or_default() += 1;
        }
        let describe = |p: &Place| match self.placed.get(p) {
            Some(line) => format!("{}:{} [{}] {}", p.0, p.1, line.kind, line.show()),
            None => format!("{}:{} [not a landed line]", p.0, p.1),
        };
        let mut problems = Vec::new();
        for p in expected.iter().filter(|p| !seen.contains_key(p)) {
            problems.push(format!("missing {}", describe(p)));
        }
        for (p, n) in &seen {
            if !expected.contains(*p) {
                problems.push(format!("unexpected {} (x{n})", describe(p)));
            } else if *n > 1 {
                problems.push(format!("{n} rows for {}", describe(p)));
            }
        }
        (!problems.is_empty()).then(|| problems.join("\n  "))
    }

    /// (1) Bronze holds every non-blank line exactly once, (2) `_corrupt_record` exactly the
    /// undecodable ones, and keys named like its columns are rescued.
    fn check_bronze(&self, bronze: &DataFrame) {
        let (seed, summary) = (self.seed, self.summary);
        let bronze_places = places(bronze);
        let all: BTreeSet<Place> = self.placed.keys().cloned().collect();
        if let Some(diff) = self.place_diff(&all, &bronze_places) {
            panic!("seed {seed}: bronze is not every non-blank line once:\n  {diff}\n{summary}");
        }
        self.check_corrupt(&bronze_places, &strings(bronze, "_corrupt_record"));
        self.check_rescued(&bronze_places, &strings(bronze, "_rescued_data"));
    }

    /// `_corrupt_record`: exactly the undecodable lines, with their raw text.
    fn check_corrupt(&self, bronze_places: &[Place], corrupt_text: &[Option<String>]) {
        let (seed, summary) = (self.seed, self.summary);
        let corrupt_places: Vec<Place> = bronze_places
            .iter()
            .zip(corrupt_text)
            .filter(|(_, c)| c.is_some())
            .map(|(p, _)| p.clone())
            .collect();
        let corrupt = self.with_fate(|f| matches!(f, Fate::Corrupt));
        if let Some(diff) = self.place_diff(&corrupt, &corrupt_places) {
            panic!(
                "seed {seed}: _corrupt_record is not exactly the corrupt lines:\n  {diff}\n{summary}"
            );
        }
        for (place, text) in bronze_places.iter().zip(corrupt_text) {
            if let Some(text) = text {
                let line = self.placed[place];
                assert_eq!(
                    text,
                    &String::from_utf8_lossy(&line.bytes),
                    "seed {seed}: the raw text of {}:{} [{}]",
                    place.0,
                    place.1,
                    line.kind
                );
            }
        }
    }

    /// Keys named like bronze's columns are in `_rescued_data`, with the landed values.
    fn check_rescued(&self, bronze_places: &[Place], rescued: &[Option<String>]) {
        let seed = self.seed;
        for (place, text) in bronze_places.iter().zip(rescued) {
            let line = self.placed[place];
            if line.rescued.is_empty() {
                continue;
            }
            let object: serde_json::Map<String, Value> = text
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_else(|| {
                    panic!(
                        "seed {seed}: {}:{} [{}] has no rescued object: {text:?}",
                        place.0, place.1, line.kind
                    )
                });
            for (key, value) in &line.rescued {
                assert_eq!(
                    object.get(key),
                    Some(value),
                    "seed {seed}: {}:{} [{}] rescues {key}: {object:?}",
                    place.0,
                    place.1,
                    line.kind
                );
            }
        }
    }

    /// (3) Silver: exactly the valid lines, with their own lineage, and what the valid
    /// records alone give (the reference pipeline's silver).
    fn check_silver(&self, silver: &DataFrame, reference: &Lake) {
        let (seed, summary) = (self.seed, self.summary);
        let wanted = self.with_fate(|f| matches!(f, Fate::Silver(_)));
        if let Some(diff) = self.place_diff(&wanted, &places(silver)) {
            panic!("seed {seed}: silver is not exactly the valid lines:\n  {diff}\n{summary}");
        }
        let expected = declared_rows(&reference.read("silver"));
        assert_eq!(
            expected.len(),
            wanted.len(),
            "seed {seed}: the reference keeps every valid record"
        );
        let got = declared_rows(silver);
        if got != expected {
            let only_mixed: Vec<_> = got.iter().filter(|r| !expected.contains(r)).collect();
            let only_reference: Vec<_> = expected.iter().filter(|r| !got.contains(r)).collect();
            panic!(
                "seed {seed}: silver differs from the valid records' silver:\n  only mixed: \
                 {only_mixed:?}\n  only reference: {only_reference:?}\n{summary}"
            );
        }
    }

    /// (4) Quarantine: every other line, with its id and reason.
    fn check_quarantine(&self, quarantine: &DataFrame) {
        let (seed, summary) = (self.seed, self.summary);
        let quarantine_places = places(quarantine);
        let rest = self.with_fate(|f| matches!(f, Fate::Quarantine { .. } | Fate::Corrupt));
        if let Some(diff) = self.place_diff(&rest, &quarantine_places) {
            panic!(
                "seed {seed}: quarantine is not exactly the hostile lines:\n  {diff}\n{summary}"
            );
        }
        let ids = strings(quarantine, "id");
        for ((place, id), reasons) in quarantine_places
            .iter()
            .zip(&ids)
            .zip(failed_expectations(quarantine))
        {
            let line = self.placed[place];
            let at = format!("{}:{} [{}] {}", place.0, place.1, line.kind, line.show());
            match &line.fate {
                Fate::Corrupt => {
                    assert_eq!(reasons, ["corrupt_record"], "seed {seed}: reasons of {at}")
                }
                Fate::Quarantine {
                    id: want_id,
                    reason,
                } => {
                    assert!(
                        reasons.iter().any(|r| r == reason),
                        "seed {seed}: {at} is quarantined for {reasons:?}, not {reason}"
                    );
                    assert_eq!(id, want_id, "seed {seed}: the id of {at}");
                }
                _ => unreachable!("only quarantine fates are in `rest`"),
            }
        }
    }
}

/// The place of every row.
fn places(df: &DataFrame) -> Vec<Place> {
    strings(df, "_source_file")
        .into_iter()
        .zip(strings(df, "_source_line"))
        .map(|(f, l)| (f.unwrap(), l.unwrap().parse().unwrap()))
        .collect()
}

/// Silver's declared columns as text, rows sorted.
fn declared_rows(silver: &DataFrame) -> Vec<Vec<Option<String>>> {
    let columns: Vec<Vec<Option<String>>> = DECLARED.iter().map(|c| strings(silver, c)).collect();
    let mut rows: Vec<Vec<Option<String>>> = (0..silver.height())
        .map(|i| columns.iter().map(|c| c[i].clone()).collect())
        .collect();
    rows.sort();
    rows
}
