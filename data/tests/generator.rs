//! The generator is deterministic and its labels agree with the rows it writes.
#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use isolake_data::generator::{self, GeneratorConfig};
use isolake_data::record::Transaction;

fn write(config: &GeneratorConfig, dir: &Path) -> BTreeMap<String, Vec<u8>> {
    generator::write_dataset(
        &generator::generate(config).expect("valid config"),
        dir,
        Some(&dir.join("labels.csv")),
    )
    .expect("files written");
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("readable"))
        })
        .collect()
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let config = GeneratorConfig {
        bad_fraction: 0.02,
        ..GeneratorConfig::new(5_000, 4, 7)
    };
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let first = write(&config, a.path());
    let second = write(&config, b.path());
    assert_eq!(first.len(), 5, "4 data files + labels.csv");
    assert_eq!(first, second, "same seed, same bytes");

    let other = write(&GeneratorConfig { seed: 8, ..config }, c.path());
    let first_data: Vec<&Vec<u8>> = first
        .iter()
        .filter(|(n, _)| n.ends_with(".json"))
        .map(|(_, v)| v)
        .collect();
    let other_data: Vec<&Vec<u8>> = other
        .iter()
        .filter(|(n, _)| n.ends_with(".json"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(other_data.len(), 4);
    for (x, y) in first_data.iter().zip(&other_data) {
        assert_ne!(x, y, "a different seed gives different files");
    }
}

#[test]
fn no_temporary_files_are_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let files = write(&GeneratorConfig::new(1_000, 3, 1), dir.path());
    assert!(
        files.keys().all(|n| !n.starts_with('.')),
        "{:?}",
        files.keys()
    );
}

#[test]
fn invalid_settings_are_errors() {
    for config in [
        GeneratorConfig::new(0, 1, 1),
        GeneratorConfig::new(10, 0, 1),
        GeneratorConfig::new(10, 11, 1),
        GeneratorConfig {
            bad_fraction: 0.7,
            ..GeneratorConfig::new(100, 1, 1)
        },
        GeneratorConfig {
            bad_fraction: f64::NAN,
            ..GeneratorConfig::new(100, 1, 1)
        },
    ] {
        let err = generator::generate(&config).expect_err("rejected");
        assert!(err.to_string().starts_with("invalid argument"), "{err}");
    }
}

struct Row {
    txn: Transaction,
    time_ms: i64,
    order: usize,
}

/// Parses every landed line; returns the valid transactions and the ids of unparseable lines.
fn read_rows(dir: &Path) -> (Vec<Row>, usize) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    let (mut rows, mut invalid) = (Vec::new(), 0);
    for path in names {
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            match serde_json::from_str::<Transaction>(line) {
                Ok(txn) if txn.amount >= 0.0 => {
                    let time_ms = chrono::DateTime::parse_from_rfc3339(&txn.event_time)
                        .expect("valid rows carry RFC 3339 times")
                        .timestamp_millis();
                    let order = rows.len();
                    rows.push(Row {
                        txn,
                        time_ms,
                        order,
                    });
                }
                _ => invalid += 1,
            }
        }
    }
    (rows, invalid)
}

fn read_labels(dir: &Path) -> HashMap<String, (u8, String)> {
    let text = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("transaction_id,label,kind"));
    lines
        .map(|l| {
            let parts: Vec<&str> = l.split(',').collect();
            (
                parts[0].to_string(),
                (parts[1].parse().unwrap(), parts[2].to_string()),
            )
        })
        .collect()
}

fn ids_of_kind(labels: &HashMap<String, (u8, String)>, kind: &str) -> BTreeSet<String> {
    labels
        .iter()
        .filter(|(_, (_, k))| k == kind)
        .map(|(id, _)| id.clone())
        .collect()
}

#[test]
fn labels_agree_with_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig {
        bad_fraction: 0.02,
        ..GeneratorConfig::new(40_000, 7, 11)
    };
    write(&config, dir.path());
    let (rows, invalid) = read_rows(dir.path());
    let labels = read_labels(dir.path());
    assert_eq!(labels.len(), 40_000);
    assert_eq!(
        invalid,
        ids_of_kind(&labels, "bad_record").len(),
        "exactly the bad records are invalid"
    );
    assert_eq!(rows.len() + invalid, 40_000);

    // small-then-large, recomputed: per account in event-time order, amount < 1.00 immediately
    // followed by amount > 500.00 at most 60 s later.
    let mut by_account: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in &rows {
        by_account
            .entry(row.txn.account_id.as_str())
            .or_default()
            .push(row);
    }
    let mut pairs = BTreeSet::new();
    for timeline in by_account.values_mut() {
        timeline.sort_by_key(|r| (r.time_ms, r.order));
        for w in timeline.windows(2) {
            if w[0].txn.amount < 1.0
                && w[1].txn.amount > 500.0
                && w[1].time_ms - w[0].time_ms <= 60_000
            {
                pairs.insert(w[0].txn.transaction_id.clone());
                pairs.insert(w[1].txn.transaction_id.clone());
            }
        }
    }
    let labelled_pairs = ids_of_kind(&labels, "small_then_large");
    assert_eq!(labelled_pairs.len(), 80, "40 pairs of 2 rows");
    assert_eq!(pairs, labelled_pairs);
    assert!(ids_of_kind(&labels, "near_miss").is_disjoint(&pairs));
    assert_eq!(ids_of_kind(&labels, "near_miss").len(), 120);

    // quantity spikes, recomputed: quantity > 3 × the user's usual quantity, where "usual" is
    // the largest of the user's quantities that is itself plausible (≤ 3).
    let mut usual: HashMap<&str, i64> = HashMap::new();
    for row in &rows {
        if row.txn.quantity <= 3 {
            let u = usual.entry(row.txn.user_id.as_str()).or_insert(1);
            *u = (*u).max(row.txn.quantity);
        }
    }
    let spikes: BTreeSet<String> = rows
        .iter()
        .filter(|r| r.txn.quantity > 3 * usual.get(r.txn.user_id.as_str()).copied().unwrap_or(1))
        .map(|r| r.txn.transaction_id.clone())
        .collect();
    let labelled_spikes = ids_of_kind(&labels, "quantity_spike");
    assert_eq!(labelled_spikes.len(), 80);
    assert_eq!(spikes, labelled_spikes);

    // Outliers really are extreme, and labels are 1 exactly for the anomaly kinds.
    for row in &rows {
        let (label, kind) = &labels[&row.txn.transaction_id];
        assert_eq!(
            *label == 1,
            ["outlier", "small_then_large", "quantity_spike"].contains(&kind.as_str())
        );
        if kind == "outlier" {
            assert!(row.txn.amount >= 1_500.0 && row.txn.distance_from_home_km >= 1_000.0);
        } else {
            assert!(
                row.txn.distance_from_home_km < 2_000.0,
                "{}",
                row.txn.transaction_id
            );
        }
    }
    assert_eq!(ids_of_kind(&labels, "outlier").len(), 120);
}

#[test]
fn patterns_span_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig {
        pair_fraction: 0.02,
        ..GeneratorConfig::new(20_000, 50, 3)
    };
    write(&config, dir.path());
    let labels = read_labels(dir.path());
    // (account, time, file) of every pair row, in file order.
    let mut pair_rows: Vec<(String, String, usize)> = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    let pair_ids = ids_of_kind(&labels, "small_then_large");
    for (k, path) in names.iter().enumerate() {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let t: Transaction = serde_json::from_str(line).unwrap();
            if pair_ids.contains(&t.transaction_id) {
                pair_rows.push((t.account_id, t.event_time, k));
            }
        }
    }
    pair_rows.sort();
    // Rows of one pair are adjacent after sorting by account and time.
    let straddling = pair_rows
        .chunks(2)
        .filter(|p| p[0].0 == p[1].0 && p[0].2 != p[1].2)
        .count();
    assert!(
        straddling > 0,
        "some pair starts in one file and ends in the next"
    );
    let files_spanned: BTreeSet<usize> = pair_rows.iter().map(|r| r.2).collect();
    assert!(files_spanned.len() > 10, "pairs are spread over the files");
}
