//! `explain` ranks first the feature that isolates a row.
#![allow(clippy::unwrap_used)]

mod common;

use isolake_models::IsolationForest;
use ndarray::s;

#[test]
fn planted_outlier_is_explained_by_its_extreme_feature() {
    let d = 5;
    for level in [0, 1] {
        for j in 0..d {
            let mut x = common::gaussian(1000, d, 100 + j as u64);
            // Row 0: ordinary in every feature but j, where it is far out.
            for f in 0..d {
                x[[0, f]] = 0.1;
            }
            x[[0, j]] = 9.0;
            let m = IsolationForest::params()
                .seed(7 + j as u64)
                .extension_level(level)
                .fit_array(&x)
                .unwrap();
            let top = m.explain(&x.slice(s![0..1, ..]), 3).unwrap();
            assert_eq!(top.len(), 1);
            let row = &top[0];
            assert_eq!(row.len(), 3);
            assert_eq!(row[0].feature, j, "level {level}: {row:?}");
            assert!(row[0].weight > row[1].weight, "level {level}: {row:?}");
            let named = m.explain_named(&x.slice(s![0..1, ..]), 1).unwrap();
            assert_eq!(named[0][0].feature, format!("feature_{j}"));
            assert_eq!(named[0][0].weight, row[0].weight);
        }
    }
}

#[test]
fn weights_are_sorted_shares_summing_to_one() {
    let x = common::gaussian(500, 4, 3);
    let m = IsolationForest::params().seed(2).fit_array(&x).unwrap();
    let all = m.explain(&x.slice(s![..50, ..]), 4).unwrap();
    assert_eq!(all.len(), 50);
    for row in &all {
        let total: f64 = row.iter().map(|c| c.weight).sum();
        assert!((total - 1.0).abs() < 1e-9, "{row:?}");
        assert!(row.windows(2).all(|w| w[0].weight >= w[1].weight));
        assert!(row.iter().all(|c| c.weight > 0.0 && c.feature < 4));
    }
    let top1 = m.explain(&x.slice(s![..50, ..]), 1).unwrap();
    for (a, b) in top1.iter().zip(&all) {
        assert_eq!(a[..], b[..1]);
    }
    assert!(
        m.explain(&x.slice(s![..3, ..]), 0)
            .unwrap()
            .iter()
            .all(Vec::is_empty)
    );
}

/// Scoring and explaining in one walk gives `score_rows_into`'s scores bit for bit and
/// `explain_top_flat`'s features, for classic forests of every walk (fixed depth 8 over ≤ 8
/// features, shallower, deeper, wider) and extended ones (two walks); a NaN is refused.
#[test]
fn one_walk_scores_and_explains_like_the_two_separate_walks() {
    for (d, psi, level) in [
        (6, 256, 0),
        (3, 16, 0),
        (4, 2048, 0),
        (12, 256, 0),
        (5, 256, 2),
    ] {
        let x = common::gaussian(3000, d, 40 + d as u64);
        let m = IsolationForest::params()
            .seed(11)
            .max_samples(isolake_models::MaxSamples::Count(psi))
            .extension_level(level)
            .fit_array(&x)
            .unwrap();
        let rows: Vec<f64> = x.iter().copied().collect();
        let mut expected = vec![0.0; x.nrows()];
        m.score_rows_into(&rows, &mut expected).unwrap();
        let mut scores = vec![0.0; x.nrows()];
        let top = m.score_and_explain_rows(&rows, &mut scores, 3).unwrap();
        let bits = |v: &[f64]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&scores),
            bits(&expected),
            "d {d}, psi {psi}, level {level}"
        );
        assert_eq!(top, m.explain_top_flat(&x, 3).unwrap(), "d {d}, psi {psi}");
        assert!(
            top.iter().any(|f| *f != 0),
            "explanations name several features"
        );
    }
    let x = common::gaussian(100, 2, 1);
    let m = IsolationForest::params().seed(1).fit_array(&x).unwrap();
    let mut rows: Vec<f64> = x.iter().copied().collect();
    rows[7] = f64::NAN;
    assert!(m.score_and_explain_rows(&rows, &mut [0.0; 100], 2).is_err());
    assert!(
        m.score_and_explain_rows(&rows[1..], &mut [0.0; 100], 2)
            .is_err()
    );
}
