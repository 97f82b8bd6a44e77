//! Detection quality on real data against scikit-learn's reference figures
//! (`data/samples/README.md`: scikit-learn 1.9.1, 100 trees, ψ = 256, random_state = 42).
#![allow(clippy::unwrap_used)]

mod common;

use isolake_models::IsolationForest;

const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

/// Mean ROC-AUC of `-score_samples` over [`SEEDS`].
fn mean_auc(data: &common::Labelled, level: usize) -> (f64, Vec<f64>) {
    let aucs: Vec<f64> = SEEDS
        .iter()
        .map(|&seed| {
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
    (aucs.iter().sum::<f64>() / aucs.len() as f64, aucs)
}

fn check(name: &str, sklearn_reference: f64) {
    let data = common::load_sample(name);
    let (classic, per_seed) = mean_auc(&data, 0);
    let (extended, per_seed_ext) = mean_auc(&data, 1);
    println!(
        "{name}: classic {classic:.4} {per_seed:.4?}, extended {extended:.4} {per_seed_ext:.4?}"
    );
    assert!(
        classic >= sklearn_reference - 0.005,
        "{name}: mean ROC-AUC {classic:.4} < scikit-learn's {sklearn_reference} - 0.005"
    );
    assert!(
        extended >= classic,
        "{name}: extended forest {extended:.4} worse than classic {classic:.4}"
    );
}

#[test]
fn cardio_matches_scikit_learn() {
    check("cardio", 0.9441);
}

#[test]
fn breastw_matches_scikit_learn() {
    check("breastw", 0.9871);
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
