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
