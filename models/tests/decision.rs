//! Offsets, decision_function, predict and linfa integration.
#![allow(clippy::unwrap_used)]

mod common;

use isolake_models::{Contamination, IsolationForest, MaxSamples};
use linfa::DatasetBase;
use linfa::traits::{Fit, Predict};
use ndarray::Array1;

#[test]
fn auto_contamination_uses_offset_minus_half() {
    let x = common::gaussian(500, 3, 1);
    let m = IsolationForest::params().seed(3).fit_array(&x).unwrap();
    assert_eq!(m.offset(), -0.5);
    let s = m.score_samples(&x).unwrap();
    let d = m.decision_function(&x).unwrap();
    let p = m.try_predict(&x).unwrap();
    for i in 0..x.nrows() {
        assert_eq!(d[i], s[i] + 0.5);
        assert_eq!(p[i], d[i] < 0.0);
        assert!((-1.0..0.0).contains(&s[i]), "score {} out of [-1, 0)", s[i]);
    }
}

#[test]
fn contamination_fraction_flags_that_share_of_training_rows() {
    let x = common::gaussian(2000, 4, 2);
    let m = IsolationForest::params()
        .contamination(Contamination::Fraction(0.1))
        .seed(4)
        .fit_array(&x)
        .unwrap();
    assert_ne!(m.offset(), -0.5);
    let flagged = m.try_predict(&x).unwrap().iter().filter(|&&f| f).count();
    // The offset is the 10th percentile of the training scores: ~200 rows lie below it.
    assert!((190..=210).contains(&flagged), "{flagged} of 2000 flagged");
    // It equals numpy's linear-interpolation percentile of the training scores.
    let mut s = m.score_samples(&x).unwrap().to_vec();
    s.sort_by(f64::total_cmp);
    let pos = 0.1 * (s.len() - 1) as f64; // 199.9
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    let expected = s[lo] + (s[lo + 1] - s[lo]) * frac;
    assert!(
        (m.offset() - expected).abs() < 1e-12,
        "{} vs {expected}",
        m.offset()
    );
}

#[test]
fn linfa_fit_and_predict_match_the_inherent_api() {
    let x = common::gaussian(400, 3, 5);
    let names = vec!["amount".to_string(), "hour".into(), "velocity".into()];
    let ds = DatasetBase::new(x.clone(), ()).with_feature_names(names.clone());
    let params = IsolationForest::params()
        .seed(8)
        .max_samples(MaxSamples::Count(128));
    let m: IsolationForest = params.fit(&ds).unwrap();
    assert_eq!(m.feature_names(), names.as_slice());
    assert_eq!(m.samples_per_tree(), 128);
    assert_eq!(m.metadata().training_rows, 400);
    let direct = params.fit_array(&x).unwrap();
    assert_eq!(m.fingerprint(), direct.fingerprint());
    assert_eq!(direct.feature_names()[2], "feature_2");

    let mut probe = x.clone();
    probe[[7, 1]] = 50.0;
    let flags: Array1<bool> = m.predict(&probe);
    assert_eq!(flags, m.try_predict(&probe).unwrap());
    assert!(flags[7]);
    let flags_ds: Array1<bool> = m.predict(&DatasetBase::new(probe.clone(), ()));
    assert_eq!(flags, flags_ds);
}

#[test]
fn anomalies_score_lower_than_inliers() {
    let mut x = common::gaussian(1000, 2, 9);
    for i in 0..10 {
        x[[i, 0]] = 8.0 + i as f64;
        x[[i, 1]] = -8.0 - i as f64;
    }
    for level in [0, 1] {
        let m = IsolationForest::params()
            .seed(1)
            .extension_level(level)
            .fit_array(&x)
            .unwrap();
        let s = m.score_samples(&x).unwrap();
        let y: Vec<u8> = (0..1000).map(|i| u8::from(i < 10)).collect();
        let anomaly: Vec<f64> = s.iter().map(|v| -v).collect();
        let auc = common::roc_auc(&anomaly, &y);
        assert!(auc > 0.99, "level {level}: AUC {auc}");
        assert!(m.try_predict(&x).unwrap().iter().take(10).all(|&f| f));
    }
}
