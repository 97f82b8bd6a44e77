//! The isolation forest (Liu, Ting and Zhou, 2008) and its extended variant (Hariri et al.),
//! with scikit-learn's exact scoring convention so its figures are directly comparable.
//!
//! - [`params`]: builder and checked hyperparameters (linfa's `ParamGuard` pattern).
//! - `tree`: the canonical flat tree; `grow` builds one from a subsample, `extended` draws
//!   hyperplane splits.
//! - [`score`]: `c(n)`, the compiled layout and the chunked parallel scorer.
//! - `ranked` + `simd`: the same walk on rank-compressed trees, 32 rows per AVX-512
//!   register, used when the CPU has it (bitwise the same scores).
//! - [`explain`]: per-row feature attributions.
//!
//! Determinism: a master ChaCha8 generator seeded with the model's seed draws one seed per
//! tree, in order; trees are then grown in parallel and collected in order. The same seed
//! and data give the same trees and, since each row's score sums trees in a fixed order,
//! bitwise the same scores, whatever the thread count.

pub mod explain;
mod extended;
mod grow;
pub mod params;
mod ranked;
pub mod score;
mod simd;
pub(crate) mod tree;

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

use chrono::Utc;
use linfa::ParamGuard;
use linfa::dataset::DatasetBase;
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, ArrayBase, ArrayView2, Data, Ix2, s};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::metadata::{ModelMetadata, TrainingDataRef};
use explain::{FeatureContribution, NamedContribution};
use grow::{GrowSpec, grow_tree};
use params::{Contamination, IsolationForestParams, IsolationForestValidParams};
use ranked::RankedForest;
use score::{CHUNK_ROWS, CompiledTree, depth_limit};
use tree::{Tree, TreeLimits};

/// A fitted isolation forest.
///
/// Scores follow scikit-learn: [`score_samples`](Self::score_samples) is
/// `−2^(−E[h(x)] / c(ψ))`, in [−1, 0), lower = more abnormal;
/// [`decision_function`](Self::decision_function) subtracts the offset, and negative values
/// are anomalies ([`try_predict`](Self::try_predict), or linfa's `predict`).
#[derive(Clone, Debug)]
pub struct IsolationForest {
    metadata: ModelMetadata,
    trees: Vec<Tree>,
    compiled: Vec<CompiledTree>,
    /// The SIMD form, built on first scoring (fitting stays cheap when nothing is scored);
    /// `None` inside when the CPU or the forest does not fit it.
    ranked: OnceLock<Option<RankedForest>>,
    /// Per tree, its explanation walk (built on first explain).
    explainers: OnceLock<Vec<explain::Explainer>>,
}

impl IsolationForest {
    /// The hyperparameter builder (defaults: 100 trees, ψ = min(256, n), all features,
    /// no bootstrap, contamination Auto, classic forest).
    pub fn params() -> IsolationForestParams {
        IsolationForestParams::new()
    }

    /// Assembles a model from metadata and trees, compiling the trees for scoring.
    pub(crate) fn from_parts(metadata: ModelMetadata, trees: Vec<Tree>) -> Self {
        let d = metadata.n_features();
        let compiled = trees.iter().map(|t| CompiledTree::compile(t, d)).collect();
        IsolationForest {
            metadata,
            trees,
            compiled,
            ranked: OnceLock::new(),
            explainers: OnceLock::new(),
        }
    }

    pub(crate) fn trees(&self) -> &[Tree] {
        &self.trees
    }

    /// Limits every tree of this model satisfies (used to validate loaded trees).
    pub(crate) fn tree_limits(metadata: &ModelMetadata) -> TreeLimits {
        let psi = metadata.samples_per_tree;
        TreeLimits {
            n_features: metadata.n_features(),
            depth_limit: depth_limit(psi),
            max_root_samples: psi,
            exact_root_samples: (!metadata.hyperparameters.bootstrap).then_some(psi),
        }
    }

    /// Everything the model says about itself (feature names, hyperparameters, offset...).
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// Records the training data's table and Delta version (done by the training job).
    pub fn set_training_data(&mut self, reference: TrainingDataRef) {
        self.metadata.training_data = Some(reference);
    }

    /// Renames the features (same count, same order).
    pub fn set_feature_names(&mut self, names: Vec<String>) -> Result<()> {
        if names.len() != self.n_features() {
            return Err(Error::FeatureNameCountMismatch {
                names: names.len(),
                features: self.n_features(),
            });
        }
        self.metadata.feature_names = names;
        Ok(())
    }

    /// Number of features rows must have.
    pub fn n_features(&self) -> usize {
        self.metadata.n_features()
    }

    /// Feature names, in column order.
    pub fn feature_names(&self) -> &[String] {
        &self.metadata.feature_names
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// ψ, training rows per tree.
    pub fn samples_per_tree(&self) -> usize {
        self.metadata.samples_per_tree
    }

    /// `decision_function = score_samples − offset`: −0.5 for contamination Auto, else the
    /// contamination percentile of the training scores.
    pub fn offset(&self) -> f64 {
        self.metadata.offset
    }

    fn check_width(&self, found: usize) -> Result<()> {
        if found != self.n_features() {
            return Err(Error::FeatureCountMismatch {
                expected: self.n_features(),
                found,
            });
        }
        Ok(())
    }

    /// The SIMD scorer, if `simd` is asked for and available.
    fn ranked(&self, simd: bool) -> Option<&RankedForest> {
        if !simd {
            return None;
        }
        self.ranked
            .get_or_init(|| RankedForest::build(&self.compiled, self.n_features()))
            .as_ref()
    }

    /// Scores a row-major buffer; rows holding a non-finite value get NaN, and the position
    /// of the first such value is returned.
    fn score_buffer(&self, rows: &[f64], out: &mut [f64], simd: bool) -> Option<(usize, usize)> {
        score::score_rows(
            &self.trees,
            &self.compiled,
            self.ranked(simd),
            self.samples_per_tree(),
            self.n_features(),
            rows,
            out,
        )
    }

    /// Scores any 2-D view; NaN for rows with a non-finite value, whose first position is
    /// returned. Non-contiguous views are copied one chunk at a time.
    fn score_view(
        &self,
        x: ArrayView2<'_, f64>,
        simd: bool,
    ) -> (Array1<f64>, Option<(usize, usize)>) {
        let mut out = Array1::zeros(x.nrows());
        let Some(o) = out.as_slice_mut() else {
            unreachable!("a fresh Array1 is contiguous")
        };
        let bad = if let Some(rows) = x.as_slice() {
            self.score_buffer(rows, o, simd)
        } else {
            let d = self.n_features();
            let ranked = self.ranked(simd);
            o.par_chunks_mut(CHUNK_ROWS)
                .enumerate()
                .filter_map(|(k, o)| {
                    let start = k * CHUNK_ROWS;
                    let rows: Vec<f64> = x
                        .slice(s![start..start + o.len(), ..])
                        .iter()
                        .copied()
                        .collect();
                    score::score_chunk(
                        &self.trees,
                        &self.compiled,
                        ranked,
                        self.samples_per_tree(),
                        d,
                        &rows,
                        o,
                    )
                    .map(|(r, c)| (start + r, c))
                })
                .min()
        };
        (out, bad)
    }

    /// [`score_samples`](Self::score_samples) through the portable scalar scorer only, never
    /// the SIMD one: for tests that check both give bitwise-identical scores.
    #[doc(hidden)]
    pub fn score_samples_portable<D: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<D, Ix2>,
    ) -> Result<Array1<f64>> {
        self.check_width(x.ncols())?;
        Ok(self.score_view(x.view(), false).0)
    }

    /// Whether this model scores with the SIMD kernel on this CPU (for tests and benches).
    #[doc(hidden)]
    pub fn uses_simd(&self) -> bool {
        self.ranked(true).is_some()
    }

    /// Anomaly score of each row, scikit-learn's `score_samples`: `−2^(−E[h(x)] / c(ψ))`,
    /// in [−1, 0); the lower, the more abnormal.
    ///
    /// Errors on a feature-count mismatch or a NaN/infinite value.
    pub fn score_samples<D: Data<Elem = f64>>(&self, x: &ArrayBase<D, Ix2>) -> Result<Array1<f64>> {
        self.check_width(x.ncols())?;
        match self.score_view(x.view(), true) {
            (_, Some((row, column))) => Err(Error::NonFiniteValue { row, column }),
            (scores, None) => Ok(scores),
        }
    }

    /// Allocation-free scoring for the pipeline: `rows` is row-major with
    /// [`n_features`](Self::n_features) values per row, `out` gets one score per row.
    /// Rows holding a NaN or infinity get a NaN score (the pipeline stores a null) instead of
    /// failing the batch. Errors only on a shape mismatch.
    pub fn score_rows_into(&self, rows: &[f64], out: &mut [f64]) -> Result<()> {
        self.buffer_view(rows, out.len())?;
        self.score_buffer(rows, out, true);
        Ok(())
    }

    /// `rows` (row-major) as `outputs` rows of [`n_features`](Self::n_features) values, or
    /// the shape error of the allocation-free calls.
    fn buffer_view<'a>(&self, rows: &'a [f64], outputs: usize) -> Result<ArrayView2<'a, f64>> {
        let d = self.n_features();
        let mismatch = || Error::BufferShapeMismatch {
            values: rows.len(),
            features: d,
            outputs,
        };
        if rows.len() != outputs * d {
            return Err(mismatch());
        }
        ArrayView2::from_shape((outputs, d), rows).map_err(|_| mismatch())
    }

    /// `score_samples(x) − offset`: negative for anomalies.
    pub fn decision_function<D: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<D, Ix2>,
    ) -> Result<Array1<f64>> {
        let offset = self.offset();
        Ok(self.score_samples(x)?.mapv_into(|s| s - offset))
    }

    /// Anomaly flags (`decision_function < 0`), with errors instead of linfa's panics.
    pub fn try_predict<D: Data<Elem = f64>>(&self, x: &ArrayBase<D, Ix2>) -> Result<Array1<bool>> {
        Ok(self.decision_function(x)?.mapv(|v| v < 0.0))
    }

    /// The `k` features that contributed most to isolating each row, heaviest first (ties:
    /// lower index first); weights are shares of the row's isolation (all features' shares
    /// sum to 1) and features with no share are omitted. See [`explain`] for the method.
    pub fn explain<D: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<D, Ix2>,
        k: usize,
    ) -> Result<Vec<Vec<FeatureContribution>>> {
        self.with_explainers(x, |trees, explainers, d, rows| {
            explain::explain_rows(trees, explainers, d, rows, k)
        })
    }

    /// [`explain`](Self::explain)'s top-`k` feature indices only, `k` slots per row in one
    /// vector (unused slots hold [`explain::NO_FEATURE`]): no allocation per row, for scoring
    /// millions of rows.
    pub fn explain_top_flat<D: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<D, Ix2>,
        k: usize,
    ) -> Result<Vec<u32>> {
        self.with_explainers(x, |trees, explainers, d, rows| {
            explain::explain_top_flat(trees, explainers, d, rows, k).0
        })
    }

    /// [`score_rows_into`](Self::score_rows_into) and [`explain_top_flat`](Self::explain_top_flat)
    /// in one walk of the trees: the walk that explains a row ends in its leaf, so it gives
    /// the path lengths too, and scoring costs no second walk. `out` gets the same scores,
    /// bit for bit. Every value must be finite (a NaN or infinity is an error, as for
    /// `explain`). Extended forests walk twice (the scorer's hyperplane layout is its own).
    pub fn score_and_explain_rows(
        &self,
        rows: &[f64],
        out: &mut [f64],
        k: usize,
    ) -> Result<Vec<u32>> {
        let view = self.buffer_view(rows, out.len())?;
        if self.trees.iter().any(|t| t.terms != 1) {
            let top = self.explain_top_flat(&view, k)?;
            self.score_buffer(rows, out, true);
            return Ok(top);
        }
        let (top, sums) = self.with_explainers(&view, |trees, explainers, d, rows| {
            explain::explain_top_flat(trees, explainers, d, rows, k)
        })?;
        let norm = score::path_norm(self.trees.len(), self.samples_per_tree());
        for (s, sum) in out.iter_mut().zip(sums) {
            *s = score::score_of_path_sum(sum, norm);
        }
        Ok(top)
    }

    /// Checks `x` and hands its rows (row-major) to `f` with the explanation walks.
    fn with_explainers<D: Data<Elem = f64>, R>(
        &self,
        x: &ArrayBase<D, Ix2>,
        f: impl FnOnce(&[Tree], &[explain::Explainer], usize, &[f64]) -> R,
    ) -> Result<R> {
        self.check_width(x.ncols())?;
        check_finite(x.view())?;
        let rows = x.as_standard_layout();
        let Some(rows) = rows.as_slice() else {
            unreachable!("standard layout is contiguous")
        };
        let explainers = self.explainers.get_or_init(|| {
            let d = self.n_features();
            self.trees
                .iter()
                .map(|t| explain::Explainer::compile(t, d))
                .collect()
        });
        Ok(f(&self.trees, explainers, self.n_features(), rows))
    }

    /// [`explain`](Self::explain) with feature names.
    pub fn explain_named<D: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<D, Ix2>,
        k: usize,
    ) -> Result<Vec<Vec<NamedContribution>>> {
        let names = self.feature_names();
        Ok(self
            .explain(x, k)?
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|c| NamedContribution {
                        feature: names[c.feature].clone(),
                        weight: c.weight,
                    })
                    .collect()
            })
            .collect())
    }
}

/// First non-finite value of `x`, as an error.
pub(crate) fn check_finite(x: ArrayView2<'_, f64>) -> Result<()> {
    let first_bad = |rows: &[f64], d: usize| -> Option<usize> {
        // Branch-free scan per block, so the common all-finite case vectorises.
        let block = 4096 * d.max(1);
        rows.chunks(block).enumerate().find_map(|(b, chunk)| {
            let all = chunk.iter().fold(true, |ok, v| ok & v.is_finite());
            (!all).then(|| b * block + chunk.iter().position(|v| !v.is_finite()).unwrap_or(0))
        })
    };
    let d = x.ncols();
    let pos = if let Some(rows) = x.as_slice() {
        first_bad(rows, d)
    } else {
        let owned = x.as_standard_layout();
        owned.as_slice().and_then(|rows| first_bad(rows, d))
    };
    match pos {
        Some(p) if d > 0 => Err(Error::NonFiniteValue {
            row: p / d,
            column: p % d,
        }),
        _ => Ok(()),
    }
}

/// Seed for `seed: None`: std's per-process random hasher keys (from the OS) mixed with the
/// clock, so no extra RNG dependency is needed. The model records it, so it can be rebuilt.
fn entropy_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.finish()
}

/// numpy's `percentile(a, q)` with its default linear method, on sorted `a`.
fn percentile_linear(sorted: &[f64], q_percent: f64) -> f64 {
    let n = sorted.len();
    let q = q_percent / 100.0;
    // numpy's `_compute_virtual_index(n, q, alpha=1, beta=1)`:
    // `n·q + (alpha + q·(1 − alpha − beta)) − 1`, where `alpha + q·(−1)` is exactly `1 − q`.
    let virtual_index = (n as f64 * q + (1.0 - q)) - 1.0;
    let lo = virtual_index.floor().clamp(0.0, (n - 1) as f64);
    let hi = (lo + 1.0).min((n - 1) as f64);
    let gamma = virtual_index - lo;
    let (a, b) = (sorted[lo as usize], sorted[hi as usize]);
    // numpy's `_lerp`.
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

impl IsolationForestValidParams {
    /// Fits on the rows of `x` (features unnamed: `feature_0`, `feature_1`, ...).
    pub fn fit_array<D: Data<Elem = f64>>(&self, x: &ArrayBase<D, Ix2>) -> Result<IsolationForest> {
        self.fit_view(x.view(), None)
    }

    /// Fits on the rows of `x` with the given feature names.
    pub fn fit_named<D: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<D, Ix2>,
        feature_names: Vec<String>,
    ) -> Result<IsolationForest> {
        self.fit_view(x.view(), Some(feature_names))
    }

    fn fit_view(
        &self,
        x: ArrayView2<'_, f64>,
        names: Option<Vec<String>>,
    ) -> Result<IsolationForest> {
        // Checked params can also come from deserialisation: check again (it is cheap).
        self.validate()?;
        let (n, d) = x.dim();
        if d == 0 {
            return Err(Error::NoFeatures);
        }
        match n {
            0 => return Err(Error::EmptyTrainingSet),
            1 => return Err(Error::TooFewTrainingRows { rows: 1, needed: 2 }),
            _ => {}
        }
        let feature_names = match names {
            Some(names) if names.len() != d => {
                return Err(Error::FeatureNameCountMismatch {
                    names: names.len(),
                    features: d,
                });
            }
            Some(names) => names,
            None => (0..d).map(|i| format!("feature_{i}")).collect(),
        };
        let psi = self.resolve_max_samples(n)?;
        let features_per_tree = self.resolve_max_features(d)?;
        check_finite(x)?;

        let seed = self.seed.unwrap_or_else(entropy_seed);
        let mut master = ChaCha8Rng::seed_from_u64(seed);
        let tree_seeds: Vec<u64> = (0..self.n_estimators).map(|_| master.next_u64()).collect();
        let spec = GrowSpec {
            psi,
            features_per_tree,
            bootstrap: self.bootstrap,
            terms: self.extension_level + 1,
            depth_limit: depth_limit(psi),
        };
        let trees: Vec<Tree> = tree_seeds
            .par_iter()
            .map(|&s| grow_tree(x, &spec, s))
            .collect();

        let mut hyperparameters = self.clone();
        hyperparameters.seed = Some(seed);
        let metadata = ModelMetadata {
            feature_names,
            hyperparameters,
            samples_per_tree: psi,
            features_per_tree,
            offset: -0.5,
            training_rows: n,
            training_data: None,
            created_at: Utc::now(),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let mut model = IsolationForest::from_parts(metadata, trees);
        if let Contamination::Fraction(c) = self.contamination {
            // scikit-learn: `np.percentile(score_samples(X), 100 * contamination)`.
            let mut scores = model.score_samples(&x)?.to_vec();
            scores.sort_unstable_by(f64::total_cmp);
            model.metadata.offset = percentile_linear(&scores, 100.0 * c);
        }
        Ok(model)
    }
}

impl IsolationForestParams {
    /// Checks the parameters, then [`IsolationForestValidParams::fit_array`].
    pub fn fit_array<D: Data<Elem = f64>>(&self, x: &ArrayBase<D, Ix2>) -> Result<IsolationForest> {
        self.check_ref()?.fit_array(x)
    }

    /// Checks the parameters, then [`IsolationForestValidParams::fit_named`].
    pub fn fit_named<D: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<D, Ix2>,
        feature_names: Vec<String>,
    ) -> Result<IsolationForest> {
        self.check_ref()?.fit_named(x, feature_names)
    }
}

/// linfa's `Fit` on an unsupervised dataset: targets are ignored; the dataset's feature
/// names, when set, become the model's.
impl<D: Data<Elem = f64>, T> Fit<ArrayBase<D, Ix2>, T, Error> for IsolationForestValidParams {
    type Object = IsolationForest;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<IsolationForest> {
        let names = dataset.feature_names();
        let names = (!names.is_empty()).then(|| names.to_vec());
        self.fit_view(dataset.records.view(), names)
    }
}

/// linfa's `predict`: `true` flags an anomaly (`decision_function < 0`).
///
/// linfa's trait cannot return errors: rows holding a NaN or infinity are not flagged
/// (`false`), and a feature-count mismatch panics, as in linfa's own models. Use
/// [`IsolationForest::try_predict`] to get errors instead.
impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<bool>> for IsolationForest {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<bool>) {
        assert_eq!(
            x.ncols(),
            self.n_features(),
            "the model was trained on {} features but the input has {}",
            self.n_features(),
            x.ncols()
        );
        assert_eq!(x.nrows(), y.len(), "one target slot per row is needed");
        let (scores, _) = self.score_view(x.view(), true);
        let offset = self.offset();
        for (flag, s) in y.iter_mut().zip(scores) {
            *flag = s - offset < 0.0;
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<bool> {
        Array1::from_elem(x.nrows(), false)
    }
}
