//! c(n), the depth limit and the score formula against values computed by hand.
#![allow(clippy::unwrap_used)]

use isolake_models::{
    EULER_GAMMA, IsolationForest, average_path_length, depth_limit, score_from_path_sum,
};
use ndarray::array;

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn c_of_n_matches_hand_computed_values() {
    // Special cases of scikit-learn's _average_path_length.
    assert_eq!(average_path_length(0), 0.0);
    assert_eq!(average_path_length(1), 0.0);
    assert_eq!(average_path_length(2), 1.0);
    // c(3) = 2(ln 2 + γ) − 2·2/3 = 2(0.6931471805599453 + 0.5772156649015329) − 1.3333333333333333
    //      = 2.5407256909229564 − 1.3333333333333333 = 1.2073923575896231
    close(average_path_length(3), 1.207_392_357_589_623);
    // c(4) = 2(ln 3 + γ) − 2·3/4 = 2(1.0986122886681098 + 0.5772156649015329) − 1.5
    //      = 3.3516559071392854 − 1.5 = 1.8516559071392854
    close(average_path_length(4), 1.851_655_907_139_285);
    // c(256) = 2(ln 255 + γ) − 2·255/256 = 2(5.541263545158426 + 0.5772156649015329) − 1.9921875
    //        = 12.236958420119917 − 1.9921875 = 10.244770920119917
    close(average_path_length(256), 10.244_770_920_119_917);
    assert_eq!(EULER_GAMMA, 0.577_215_664_901_532_9);
}

#[test]
fn depth_limit_is_ceil_log2_psi() {
    // ceil(log2(max(ψ, 2))): 2 → 1, 3 → 2, 4 → 2, 5 → 3, 256 → 8, 257 → 9.
    for (psi, depth) in [
        (0, 1),
        (1, 1),
        (2, 1),
        (3, 2),
        (4, 2),
        (5, 3),
        (256, 8),
        (257, 9),
    ] {
        assert_eq!(depth_limit(psi), depth, "ψ = {psi}");
    }
}

#[test]
fn score_formula_matches_hand_computed_values() {
    // −2^(−E[h]/c(ψ)). ψ = 2 (c = 1), 4 trees.
    assert_eq!(score_from_path_sum(4.0, 4, 2), -0.5); // E[h] = 1 → −2^−1
    assert_eq!(score_from_path_sum(8.0, 4, 2), -0.25); // E[h] = 2 → −2^−2
    assert_eq!(score_from_path_sum(0.0, 4, 2), -1.0); // E[h] = 0 → −2^0
    // E[h] = c(ψ) → −0.5 for any ψ: the paper's "no anomaly" point.
    let c = average_path_length(256);
    close(score_from_path_sum(100.0 * c, 100, 256), -0.5);
}

/// A data set whose every tree is known without knowing the random draws: one feature,
/// values {0, 0, 0, 1}. ψ = 4, depth limit 2. The root must split the only feature with a
/// threshold in [0, 1): left holds the three 0s (constant: a leaf at depth 1), right the 1.
#[test]
fn end_to_end_scores_match_hand_computed_values() {
    let x = array![[0.0], [0.0], [0.0], [1.0]];
    let model = IsolationForest::params()
        .n_estimators(7)
        .seed(3)
        .fit_array(&x)
        .unwrap();
    let s = model
        .score_samples(&array![[0.0], [1.0], [-5.0], [5.0]])
        .unwrap();
    let c4 = 1.851_655_907_139_285;
    // h(0) = depth 1 + c(3) = 2.2073923575896231; h(1) = depth 1 + c(1) = 1.
    let inlier = -(2f64.powf(-2.207_392_357_589_623 / c4));
    let outlier = -(2f64.powf(-1.0 / c4));
    close(s[0], inlier);
    close(s[1], outlier);
    close(s[2], inlier); // beyond the minimum: left like the 0s
    close(s[3], outlier);
    // Two distinct rows, ψ = 2: every row is isolated at depth 1, E[h] = 1 = c(2) → −0.5.
    let two = IsolationForest::params()
        .seed(1)
        .fit_array(&array![[1.0, 5.0], [2.0, 5.0]])
        .unwrap();
    let s = two.score_samples(&array![[1.0, 5.0], [2.0, 5.0]]).unwrap();
    assert_eq!(s.to_vec(), vec![-0.5, -0.5]);
}
