//! Same seed and data → identical model and bitwise-identical scores, whatever the thread
//! count; different seeds → different models.
#![allow(clippy::unwrap_used)]

mod common;

use isolake_models::{IsolationForest, IsolationForestValidParams, MaxFeatures};
use linfa::ParamGuard;
use ndarray::Array2;

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|s| s.to_bits()).collect()
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

fn params(seed: u64, level: usize) -> IsolationForestValidParams {
    IsolationForest::params()
        .n_estimators(50)
        .seed(seed)
        .extension_level(level)
        .max_features(MaxFeatures::Count(3))
        .check()
        .unwrap()
}

/// 10,000 rows: several scoring chunks, so the parallel split really differs.
fn data() -> Array2<f64> {
    common::gaussian(10_000, 4, 8)
}

#[test]
fn same_seed_same_model_and_scores_for_any_thread_count() {
    let x = data();
    for level in [0, 1] {
        let p = params(42, level);
        let (m1, s1) = in_pool(1, || {
            let m = p.fit_array(&x).unwrap();
            let s = m.score_samples(&x).unwrap();
            (m, s)
        });
        let (m2, s2) = in_pool(2, || {
            let m = p.fit_array(&x).unwrap();
            let s = m.score_samples(&x).unwrap();
            (m, s)
        });
        assert_eq!(
            m1.fingerprint(),
            m2.fingerprint(),
            "level {level}: trees differ"
        );
        assert_eq!(bits(s1.as_slice().unwrap()), bits(s2.as_slice().unwrap()));
        // Scoring one model with 1 vs 2 threads, contiguous and strided input.
        let t = x.t().to_owned();
        let strided = t.t();
        let a = in_pool(1, || m1.score_samples(&x).unwrap());
        let b = in_pool(2, || m1.score_samples(&strided).unwrap());
        assert_eq!(bits(a.as_slice().unwrap()), bits(b.as_slice().unwrap()));
        // Row by row (other chunk boundaries) gives the same bits too.
        let mut one = [0.0];
        for i in (0..x.nrows()).step_by(997) {
            m1.score_rows_into(x.row(i).as_slice().unwrap(), &mut one)
                .unwrap();
            assert_eq!(one[0].to_bits(), a[i].to_bits(), "row {i}");
        }
    }
}

#[test]
fn different_seeds_give_different_models() {
    let x = data();
    let a = params(1, 0).fit_array(&x).unwrap();
    let b = params(2, 0).fit_array(&x).unwrap();
    assert_ne!(a.fingerprint(), b.fingerprint());
    let sa = a.score_samples(&x).unwrap();
    let sb = b.score_samples(&x).unwrap();
    assert!(sa.iter().zip(&sb).filter(|(p, q)| p != q).count() > x.nrows() / 2);
}

#[test]
fn unseeded_fit_records_the_seed_it_used() {
    let x = common::gaussian(300, 2, 3);
    let m = IsolationForest::params()
        .n_estimators(10)
        .fit_array(&x)
        .unwrap();
    let seed = m.metadata().hyperparameters.seed().unwrap();
    let again = IsolationForest::params()
        .n_estimators(10)
        .seed(seed)
        .fit_array(&x)
        .unwrap();
    assert_eq!(m.fingerprint(), again.fingerprint());
}
