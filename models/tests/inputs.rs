//! Bad inputs — NaN/inf, wrong widths, empty or single-row training sets — give errors.
#![allow(clippy::unwrap_used)]

mod common;

use isolake_models::{Error, IsolationForest};
use linfa::traits::Predict;
use ndarray::{Array1, Array2, array};

fn model(d: usize) -> IsolationForest {
    IsolationForest::params()
        .n_estimators(20)
        .seed(5)
        .fit_array(&common::gaussian(200, d, 11))
        .unwrap()
}

#[test]
fn fit_refuses_non_finite_values_with_their_position() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut x = common::gaussian(100, 3, 1);
        x[[42, 2]] = bad;
        x[[77, 0]] = bad;
        let err = IsolationForest::params().seed(1).fit_array(&x).unwrap_err();
        assert!(
            matches!(err, Error::NonFiniteValue { row: 42, column: 2 }),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains("row 42, column 2"));
        // Also through a non-contiguous (transposed twice / sliced) view.
        let t = x.t().to_owned();
        let err = IsolationForest::params()
            .seed(1)
            .fit_array(&t.t())
            .unwrap_err();
        assert!(
            matches!(err, Error::NonFiniteValue { row: 42, column: 2 }),
            "{err:?}"
        );
    }
}

#[test]
fn fit_refuses_empty_single_row_and_featureless_sets() {
    let p = IsolationForest::params().seed(1);
    let err = p.fit_array(&Array2::<f64>::zeros((0, 3))).unwrap_err();
    assert!(matches!(err, Error::EmptyTrainingSet), "{err:?}");
    assert!(err.to_string().contains("at least 2 rows"));
    let err = p.fit_array(&array![[1.0, 2.0]]).unwrap_err();
    assert!(
        matches!(err, Error::TooFewTrainingRows { rows: 1, needed: 2 }),
        "{err:?}"
    );
    let err = p.fit_array(&Array2::<f64>::zeros((10, 0))).unwrap_err();
    assert!(matches!(err, Error::NoFeatures), "{err:?}");
    let err = p
        .fit_named(&common::gaussian(10, 2, 1), vec!["a".into()])
        .unwrap_err();
    assert!(matches!(
        err,
        Error::FeatureNameCountMismatch {
            names: 1,
            features: 2
        }
    ));
}

#[test]
fn scoring_refuses_non_finite_values_and_wrong_widths() {
    let m = model(3);
    let mut x = common::gaussian(5000, 3, 2);
    x[[4500, 1]] = f64::NAN;
    x[[4700, 0]] = f64::INFINITY;
    let err = m.score_samples(&x).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteValue {
                row: 4500,
                column: 1
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        m.decision_function(&x),
        Err(Error::NonFiniteValue { .. })
    ));
    assert!(matches!(
        m.try_predict(&x),
        Err(Error::NonFiniteValue { .. })
    ));
    assert!(matches!(
        m.explain(&x, 2),
        Err(Error::NonFiniteValue {
            row: 4500,
            column: 1
        })
    ));
    // Same answer through a non-contiguous view (copied chunk by chunk).
    let t = x.t().to_owned();
    let err = m.score_samples(&t.t()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteValue {
                row: 4500,
                column: 1
            }
        ),
        "{err:?}"
    );

    let wide = common::gaussian(4, 4, 3);
    let err = m.score_samples(&wide).unwrap_err();
    assert!(
        matches!(
            err,
            Error::FeatureCountMismatch {
                expected: 3,
                found: 4
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        m.explain(&wide, 1),
        Err(Error::FeatureCountMismatch { .. })
    ));
}

#[test]
fn slice_scoring_maps_non_finite_rows_to_nan_and_checks_shapes() {
    let m = model(2);
    let x = common::gaussian(10, 2, 4);
    let expected = m.score_samples(&x).unwrap();
    let mut rows = x.as_slice().unwrap().to_vec();
    rows[2 * 3 + 1] = f64::NAN; // row 3
    rows[2 * 7] = f64::NEG_INFINITY; // row 7
    let mut out = vec![0.0; 10];
    m.score_rows_into(&rows, &mut out).unwrap();
    for (i, (&s, &e)) in out.iter().zip(&expected).enumerate() {
        if i == 3 || i == 7 {
            assert!(s.is_nan(), "row {i}");
        } else {
            assert_eq!(s.to_bits(), e.to_bits(), "row {i}");
        }
    }
    let err = m.score_rows_into(&rows[..19], &mut out).unwrap_err();
    assert!(matches!(
        err,
        Error::BufferShapeMismatch {
            values: 19,
            features: 2,
            outputs: 10
        }
    ));
    let err = m.score_rows_into(&rows, &mut out[..9]).unwrap_err();
    assert!(matches!(err, Error::BufferShapeMismatch { .. }));
    // An empty batch is fine.
    m.score_rows_into(&[], &mut []).unwrap();
}

#[test]
fn linfa_predict_does_not_flag_unscorable_rows() {
    let m = model(2);
    let mut x = common::gaussian(6, 2, 6);
    x[[1, 0]] = 1e6; // far away: an anomaly
    x[[2, 1]] = f64::NAN;
    let flags: Array1<bool> = m.predict(&x);
    assert!(flags[1]);
    assert!(!flags[2]);
}
