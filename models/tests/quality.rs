//! Detection quality on real data against scikit-learn (`data/samples/README.md`).
//!
//! An isolation forest's ROC-AUC varies with the seed (on cardio, scikit-learn 1.9.1 ranges
//! from 0.897 to 0.949 over `random_state` 0–99), so single runs cannot be compared. The test
//! averages [`SEEDS`] seeds and compares with scikit-learn's mean over 100 seeds, allowing
//! 0.005 (about two standard errors of a 20-seed mean). The single-run figures
//! (scikit-learn with `random_state=42`: cardio 0.9441, breastw 0.9871) are printed for
//! information: on cardio that run is luckier than scikit-learn's own average.
#![allow(clippy::unwrap_used)]

mod common;

use isolake_models::IsolationForest;
use rayon::prelude::*;

/// Seeds 0..SEEDS: as many as the dev-profile time budget allows.
const SEEDS: u64 = 20;
const TOLERANCE: f64 = 0.005;

/// Mean ROC-AUC of `-score_samples` over seeds `0..SEEDS`.
fn mean_auc(data: &common::Labelled, level: usize) -> f64 {
    let aucs: Vec<f64> = (0..SEEDS)
        .into_par_iter()
        .map(|seed| {
            let m = IsolationForest::params()
                .n_estimators(100)
                .seed(seed)
                .extension_level(level)
                .fit_named(&data.x, data.names.clone())
                .unwrap();
            let anomaly: Vec<f64> = m
                .score_samples(&data.x)
                .unwrap()
                .iter()
                .map(|s| -s)
                .collect();
            common::roc_auc(&anomaly, &data.y)
        })
        .collect();
    aucs.iter().sum::<f64>() / aucs.len() as f64
}

/// `sklearn_mean`: scikit-learn's mean ROC-AUC over `random_state` 0–99;
/// `sklearn_seed_42`: the single-run figure of the issue.
fn check(name: &str, sklearn_mean: f64, sklearn_seed_42: f64) {
    let data = common::load_sample(name);
    let classic = mean_auc(&data, 0);
    let extended = mean_auc(&data, 1);
    println!(
        "{name}: mean ROC-AUC over {SEEDS} seeds: classic {classic:.4}, extended {extended:.4}; \
         scikit-learn mean {sklearn_mean}, random_state=42 run {sklearn_seed_42}"
    );
    assert!(
        classic >= sklearn_mean - TOLERANCE,
        "{name}: mean ROC-AUC {classic:.4} < scikit-learn's {sklearn_mean} - {TOLERANCE}"
    );
    assert!(
        extended >= classic - TOLERANCE,
        "{name}: extended forest {extended:.4} worse than classic {classic:.4}"
    );
}

#[test]
fn cardio_matches_scikit_learn() {
    check("cardio", 0.9259, 0.9441);
}

#[test]
fn breastw_matches_scikit_learn() {
    check("breastw", 0.9867, 0.9871);
}

#[test]
fn samples_have_the_documented_shapes() {
    let c = common::load_sample("cardio");
    assert_eq!(c.x.dim(), (1831, 21));
    assert_eq!(c.y.iter().filter(|&&v| v == 1).count(), 176);
    let b = common::load_sample("breastw");
    assert_eq!(b.x.dim(), (683, 9));
    assert_eq!(b.y.iter().filter(|&&v| v == 1).count(), 239);
}
