//! Helpers shared by the integration tests (each test file includes this module).
#![allow(dead_code, clippy::unwrap_used)]

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A labelled sample data set from `data/samples` (features, labels with 1 = anomaly).
pub struct Labelled {
    pub names: Vec<String>,
    pub x: Array2<f64>,
    pub y: Vec<u8>,
}

/// Reads `data/samples/<name>.csv` of the repository (header, features..., `label`).
pub fn load_sample(name: &str) -> Labelled {
    // Read at run time: a compile-time path goes stale when the same target dir builds
    // another clone of the repository.
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    let path = format!("{dir}/../data/samples/{name}.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    assert_eq!(header.last().map(String::as_str), Some("label"));
    let d = header.len() - 1;
    let mut values = Vec::new();
    let mut y = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let cells: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        assert_eq!(cells.len(), d + 1, "{path}: ragged row");
        values.extend_from_slice(&cells[..d]);
        y.push(cells[d] as u8);
    }
    let n = y.len();
    Labelled {
        names: header[..d].to_vec(),
        x: Array2::from_shape_vec((n, d), values).unwrap(),
        y,
    }
}

/// ROC-AUC of `anomaly_score` (higher = more anomalous) against labels (1 = anomaly):
/// the Mann–Whitney statistic with average ranks for ties, like scikit-learn's
/// `roc_auc_score`.
pub fn roc_auc(anomaly_score: &[f64], y: &[u8]) -> f64 {
    let n = y.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| anomaly_score[a].total_cmp(&anomaly_score[b]));
    let mut ranks = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && anomaly_score[order[j + 1]] == anomaly_score[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[order[k]] = avg;
        }
        i = j + 1;
    }
    let pos = y.iter().filter(|&&v| v == 1).count() as f64;
    let neg = n as f64 - pos;
    let rank_sum: f64 = (0..n).filter(|&k| y[k] == 1).map(|k| ranks[k]).sum();
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// `n` rows of `d` standard-normal features (deterministic for a given `seed`).
pub fn gaussian(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| {
        let u1: f64 = 1.0 - rng.r#gen::<f64>();
        let u2: f64 = rng.r#gen();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    })
}
