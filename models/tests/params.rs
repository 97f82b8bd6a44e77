//! Invalid hyperparameters are errors (from `check()` or at fit), never panics.
#![allow(clippy::unwrap_used)]

mod common;

use isolake_models::{
    Contamination, Error, IsolationForest, IsolationForestParams, MaxFeatures, MaxSamples,
};
use linfa::ParamGuard;

fn invalid(p: IsolationForestParams, name: &str) {
    match p.check() {
        Err(Error::InvalidParameter { name: n, reason }) => {
            assert_eq!(n, name, "wrong parameter blamed ({reason})");
            assert!(!reason.is_empty());
        }
        other => panic!("expected InvalidParameter({name}), got {other:?}"),
    }
}

#[test]
fn check_refuses_out_of_range_values() {
    let p = IsolationForest::params;
    invalid(p().n_estimators(0), "n_estimators");
    invalid(p().max_samples(MaxSamples::Count(0)), "max_samples");
    invalid(p().max_samples(MaxSamples::Count(1)), "max_samples");
    invalid(p().max_samples(MaxSamples::Fraction(0.0)), "max_samples");
    invalid(p().max_samples(MaxSamples::Fraction(1.5)), "max_samples");
    invalid(
        p().max_samples(MaxSamples::Fraction(f64::NAN)),
        "max_samples",
    );
    invalid(p().max_features(MaxFeatures::Count(0)), "max_features");
    invalid(p().max_features(MaxFeatures::Fraction(0.0)), "max_features");
    invalid(
        p().max_features(MaxFeatures::Fraction(1.01)),
        "max_features",
    );
    invalid(
        p().contamination(Contamination::Fraction(0.0)),
        "contamination",
    );
    invalid(
        p().contamination(Contamination::Fraction(0.51)),
        "contamination",
    );
    invalid(
        p().contamination(Contamination::Fraction(-0.1)),
        "contamination",
    );
    invalid(
        p().contamination(Contamination::Fraction(f64::INFINITY)),
        "contamination",
    );
}

#[test]
fn check_accepts_boundaries_and_keeps_values() {
    let v = IsolationForest::params()
        .n_estimators(1)
        .max_samples(MaxSamples::Fraction(1.0))
        .max_features(MaxFeatures::Fraction(1.0))
        .contamination(Contamination::Fraction(0.5))
        .bootstrap(true)
        .extension_level(2)
        .seed(9)
        .check()
        .unwrap();
    assert_eq!(v.n_estimators(), 1);
    assert_eq!(v.max_samples(), MaxSamples::Fraction(1.0));
    assert_eq!(v.max_features(), MaxFeatures::Fraction(1.0));
    assert_eq!(v.contamination(), Contamination::Fraction(0.5));
    assert!(v.bootstrap());
    assert_eq!(v.extension_level(), 2);
    assert_eq!(v.seed(), Some(9));
    let d = IsolationForest::params().check().unwrap();
    assert_eq!(
        (
            d.n_estimators(),
            d.max_samples(),
            d.max_features(),
            d.bootstrap()
        ),
        (100, MaxSamples::Auto, MaxFeatures::All, false)
    );
    assert_eq!(
        (d.contamination(), d.seed(), d.extension_level()),
        (Contamination::Auto, None, 0)
    );
}

#[test]
fn data_dependent_values_are_checked_at_fit() {
    let x = common::gaussian(50, 3, 1);
    let fit_err = |p: IsolationForestParams| p.seed(1).fit_array(&x).unwrap_err();
    let blamed = |e: Error| match e {
        Error::InvalidParameter { name, .. } => name,
        other => panic!("expected InvalidParameter, got {other:?}"),
    };
    let p = IsolationForest::params;
    assert_eq!(
        blamed(fit_err(p().max_features(MaxFeatures::Count(4)))),
        "max_features"
    );
    assert_eq!(blamed(fit_err(p().extension_level(3))), "extension_level");
    assert_eq!(blamed(fit_err(p().extension_level(7))), "extension_level");
    // With 2 features per tree, level 2 needs 3 features per split.
    assert_eq!(
        blamed(fit_err(
            p().max_features(MaxFeatures::Count(2)).extension_level(2)
        )),
        "extension_level"
    );
    // 1% of 50 rows is 0 rows per tree.
    assert_eq!(
        blamed(fit_err(p().max_samples(MaxSamples::Fraction(0.01)))),
        "max_samples"
    );
    // The largest valid level fits; a Count above n is clamped to n (as scikit-learn does).
    let m = p().extension_level(2).seed(1).fit_array(&x).unwrap();
    assert_eq!(m.metadata().hyperparameters.extension_level(), 2);
    let m = p()
        .max_samples(MaxSamples::Count(1000))
        .seed(1)
        .fit_array(&x)
        .unwrap();
    assert_eq!(m.samples_per_tree(), 50);
}

#[test]
fn linfa_fit_on_unchecked_params_reports_the_check_error() {
    use linfa::traits::Fit;
    let ds = linfa::DatasetBase::from(common::gaussian(20, 2, 2));
    let r: Result<IsolationForest, Error> = IsolationForest::params().n_estimators(0).fit(&ds);
    assert!(matches!(
        r,
        Err(Error::InvalidParameter {
            name: "n_estimators",
            ..
        })
    ));
}
