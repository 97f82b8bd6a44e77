//! Hyperparameters, following linfa's pattern: an unchecked builder
//! ([`IsolationForestParams`]) that becomes [`IsolationForestValidParams`] through
//! [`ParamGuard::check`]. Only checked parameters can fit, so `fit` never sees an invalid value.
//!
//! Values that depend on the data (how many rows ψ a tree samples, how many features it may
//! use, whether the extension level fits the feature count) are resolved and checked at fit
//! time by the `resolve_*` methods.

use linfa::ParamGuard;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How many training rows each tree samples (ψ in the paper).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxSamples {
    /// `min(256, n)`, the paper's and scikit-learn's default.
    Auto,
    /// A fixed count (at least 2); clamped to `n` when the training set is smaller, as
    /// scikit-learn does.
    Count(usize),
    /// A fraction in (0, 1] of the training rows, rounded down (must resolve to at least 2).
    Fraction(f64),
}

/// How many features each tree may split on (drawn per tree without replacement).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxFeatures {
    /// Every feature (the default).
    All,
    /// A fixed count in `1..=n_features` (checked at fit).
    Count(usize),
    /// A fraction in (0, 1]; resolves to `max(1, floor(fraction * n_features))` like
    /// scikit-learn.
    Fraction(f64),
}

/// Expected share of anomalies, which sets the decision threshold (the offset).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contamination {
    /// Offset −0.5, the threshold of the original paper.
    Auto,
    /// A share in (0, 0.5]: the offset is that percentile of the training scores.
    Fraction(f64),
}

/// Checked hyperparameters of an isolation forest. Obtained from
/// [`IsolationForestParams`] through [`ParamGuard::check`]; implements linfa's `Fit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsolationForestValidParams {
    pub(crate) n_estimators: usize,
    pub(crate) max_samples: MaxSamples,
    pub(crate) max_features: MaxFeatures,
    pub(crate) bootstrap: bool,
    pub(crate) contamination: Contamination,
    pub(crate) seed: Option<u64>,
    pub(crate) extension_level: usize,
}

impl Default for IsolationForestValidParams {
    fn default() -> Self {
        Self {
            n_estimators: 100,
            max_samples: MaxSamples::Auto,
            max_features: MaxFeatures::All,
            bootstrap: false,
            contamination: Contamination::Auto,
            seed: None,
            extension_level: 0,
        }
    }
}

impl IsolationForestValidParams {
    /// Number of trees.
    pub fn n_estimators(&self) -> usize {
        self.n_estimators
    }
    /// Rows sampled per tree.
    pub fn max_samples(&self) -> MaxSamples {
        self.max_samples
    }
    /// Features available to each tree.
    pub fn max_features(&self) -> MaxFeatures {
        self.max_features
    }
    /// Whether rows are sampled with replacement.
    pub fn bootstrap(&self) -> bool {
        self.bootstrap
    }
    /// Expected share of anomalies.
    pub fn contamination(&self) -> Contamination {
        self.contamination
    }
    /// RNG seed. A fitted model always records the seed it actually used (drawn from entropy
    /// when none was given), so every model can be rebuilt.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }
    /// 0 = classic forest; `l > 0` = extended forest with hyperplanes over `l + 1` features.
    pub fn extension_level(&self) -> usize {
        self.extension_level
    }

    /// Validates every data-independent value. `check()` and `check_ref()` both land here.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.n_estimators == 0 {
            return Err(Error::param(
                "n_estimators",
                "must be at least 1 (100 is typical)",
            ));
        }
        match self.max_samples {
            MaxSamples::Auto => {}
            MaxSamples::Count(c) if c < 2 => {
                return Err(Error::param(
                    "max_samples",
                    format!(
                        "Count({c}) is too small: a tree needs at least 2 rows (256 is typical)"
                    ),
                ));
            }
            MaxSamples::Count(_) => {}
            MaxSamples::Fraction(f) => {
                if !(f.is_finite() && f > 0.0 && f <= 1.0) {
                    return Err(Error::param(
                        "max_samples",
                        format!("Fraction({f}) must be in (0, 1]"),
                    ));
                }
            }
        }
        match self.max_features {
            MaxFeatures::All => {}
            MaxFeatures::Count(0) => {
                return Err(Error::param(
                    "max_features",
                    "Count(0): each tree needs at least 1 feature",
                ));
            }
            MaxFeatures::Count(_) => {}
            MaxFeatures::Fraction(f) => {
                if !(f.is_finite() && f > 0.0 && f <= 1.0) {
                    return Err(Error::param(
                        "max_features",
                        format!("Fraction({f}) must be in (0, 1]"),
                    ));
                }
            }
        }
        if let Contamination::Fraction(f) = self.contamination
            && !(f.is_finite() && f > 0.0 && f <= 0.5)
        {
            return Err(Error::param(
                "contamination",
                format!(
                    "Fraction({f}) must be in (0, 0.5]; use Contamination::Auto for offset -0.5"
                ),
            ));
        }
        Ok(())
    }

    /// ψ for a training set of `n_rows`.
    pub(crate) fn resolve_max_samples(&self, n_rows: usize) -> Result<usize> {
        let psi = match self.max_samples {
            MaxSamples::Auto => n_rows.min(256),
            MaxSamples::Count(c) => c.min(n_rows),
            // Rounded down like scikit-learn's `int(max_samples * n)`.
            MaxSamples::Fraction(f) => (f * n_rows as f64).floor() as usize,
        };
        if psi < 2 {
            return Err(Error::param(
                "max_samples",
                format!(
                    "{:?} resolves to {psi} row(s) per tree for {n_rows} training rows; \
                     each tree needs at least 2",
                    self.max_samples
                ),
            ));
        }
        Ok(psi)
    }

    /// Features per tree for `n_features` columns, checking the extension level against it.
    pub(crate) fn resolve_max_features(&self, n_features: usize) -> Result<usize> {
        let per_tree = match self.max_features {
            MaxFeatures::All => n_features,
            MaxFeatures::Count(c) if c > n_features => {
                return Err(Error::param(
                    "max_features",
                    format!("Count({c}) exceeds the {n_features} feature(s) of the training data"),
                ));
            }
            MaxFeatures::Count(c) => c,
            MaxFeatures::Fraction(f) => ((f * n_features as f64).floor() as usize).max(1),
        };
        if self.extension_level >= per_tree {
            return Err(Error::param(
                "extension_level",
                format!(
                    "{} needs {} features per split but each tree has {per_tree} \
                     (of {n_features}); the largest valid level is {}",
                    self.extension_level,
                    self.extension_level + 1,
                    per_tree - 1
                ),
            ));
        }
        Ok(per_tree)
    }
}

/// Unchecked builder of an isolation forest, returned by
/// [`IsolationForest::params`](crate::IsolationForest::params).
///
/// ```
/// use isolake_models::{IsolationForest, MaxSamples};
/// use linfa::ParamGuard;
/// let params = IsolationForest::params()
///     .n_estimators(200)
///     .max_samples(MaxSamples::Count(512))
///     .seed(7)
///     .check()
///     .expect("valid parameters");
/// assert_eq!(params.n_estimators(), 200);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IsolationForestParams(pub(crate) IsolationForestValidParams);

impl IsolationForestParams {
    /// Defaults: 100 trees, ψ = Auto, all features, no bootstrap, contamination Auto, seed
    /// from entropy, classic forest.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of trees (≥ 1).
    pub fn n_estimators(mut self, n: usize) -> Self {
        self.0.n_estimators = n;
        self
    }
    /// Rows sampled per tree.
    pub fn max_samples(mut self, m: MaxSamples) -> Self {
        self.0.max_samples = m;
        self
    }
    /// Features each tree may split on.
    pub fn max_features(mut self, m: MaxFeatures) -> Self {
        self.0.max_features = m;
        self
    }
    /// Sample rows with replacement.
    pub fn bootstrap(mut self, b: bool) -> Self {
        self.0.bootstrap = b;
        self
    }
    /// Expected share of anomalies (sets the offset).
    pub fn contamination(mut self, c: Contamination) -> Self {
        self.0.contamination = c;
        self
    }
    /// RNG seed (`Some`/a number for reproducible models, `None` for entropy).
    pub fn seed(mut self, seed: impl Into<Option<u64>>) -> Self {
        self.0.seed = seed.into();
        self
    }
    /// 0 = classic forest; `l > 0` = Extended Isolation Forest over `l + 1` features per split.
    pub fn extension_level(mut self, level: usize) -> Self {
        self.0.extension_level = level;
        self
    }
}

impl ParamGuard for IsolationForestParams {
    type Checked = IsolationForestValidParams;
    type Error = Error;

    fn check_ref(&self) -> Result<&Self::Checked> {
        self.0.validate()?;
        Ok(&self.0)
    }

    fn check(self) -> Result<Self::Checked> {
        self.0.validate()?;
        Ok(self.0)
    }
}
