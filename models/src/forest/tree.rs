//! One isolation tree in its canonical, flat form: parallel node arrays.
//!
//! This form is what the artifact stores and what `explain` walks. Scoring of classic trees
//! uses a compiled copy (see `score.rs`) laid out for speed; both route a row identically.
//!
//! Layout, for a tree of `N` nodes and `terms` features per split (1 for the classic forest,
//! `extension_level + 1` for the extended one):
//! - `child[i]`: index of the left child; the right child is `child[i] + 1`. `0` marks a leaf
//!   (the root is never anyone's child). Children always come after their parent
//!   (`child[i] > i`), which makes cycles impossible and lets depth be computed in one pass.
//! - `samples[i]`: training rows that reached node `i` (leaves need it for `c(n)`; `explain`
//!   uses it to measure how much a split isolated a row).
//! - `features[i * terms ..][..terms]`, `coefs[..]`: the split `Σ coef·x[feature]`;
//!   classic splits have one term with coefficient 1.
//! - `thresholds[i]`: a row goes left when its split value is `<=` the threshold
//!   (scikit-learn's convention).

use crate::error::{Error, Result};
use crate::forest::score::average_path_length;

/// Marker in `child` for a leaf.
pub(crate) const LEAF: u32 = 0;

/// A fitted isolation tree (see the module documentation for the layout).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tree {
    pub(crate) terms: usize,
    pub(crate) child: Vec<u32>,
    pub(crate) samples: Vec<u32>,
    pub(crate) features: Vec<u32>,
    pub(crate) coefs: Vec<f64>,
    pub(crate) thresholds: Vec<f64>,
    /// Derived: depth of every node (root = 0).
    pub(crate) depth: Vec<u32>,
    /// Derived: for leaves, the path length credited to a row ending there,
    /// `depth + c(samples)`; 0 for internal nodes.
    pub(crate) path_value: Vec<f64>,
}

impl Tree {
    /// Builds a tree from its stored arrays, checking everything a malicious or corrupt
    /// artifact could get wrong before anything indexes with these values.
    /// Errors are [`Error::ArtifactMalformed`]: this is the loader's gate.
    pub(crate) fn from_parts(
        terms: usize,
        child: Vec<u32>,
        samples: Vec<u32>,
        features: Vec<u32>,
        coefs: Vec<f64>,
        thresholds: Vec<f64>,
        limits: &TreeLimits,
    ) -> Result<Self> {
        let n = child.len();
        if n == 0 {
            return Err(Error::malformed("a tree has no nodes"));
        }
        if samples.len() != n
            || thresholds.len() != n
            || features.len() != n * terms
            || coefs.len() != n * terms
        {
            return Err(Error::malformed(format!(
                "node arrays of inconsistent lengths ({n} children, {} sample counts, {} \
                 thresholds, {} features and {} coefficients for {terms} term(s) per node)",
                samples.len(),
                thresholds.len(),
                features.len(),
                coefs.len()
            )));
        }
        let depth = depths(&child, &samples, limits)?;
        check_root(&samples, limits)?;
        check_splits(
            terms,
            &child,
            &samples,
            &features,
            &coefs,
            &thresholds,
            limits,
        )?;
        let path_value = (0..n)
            .map(|i| {
                if child[i] == LEAF {
                    f64::from(depth[i]) + average_path_length(samples[i] as usize)
                } else {
                    0.0
                }
            })
            .collect();
        Ok(Tree {
            terms,
            child,
            samples,
            features,
            coefs,
            thresholds,
            depth,
            path_value,
        })
    }

    /// Number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.child.len()
    }

    /// Whether node `i` is a leaf.
    #[inline]
    pub(crate) fn is_leaf(&self, i: usize) -> bool {
        self.child[i] == LEAF
    }

    /// Depth of the deepest leaf.
    pub(crate) fn max_depth(&self) -> u32 {
        self.depth.iter().copied().max().unwrap_or(0)
    }

    /// The split value of node `i` for a row: `Σ coef·x[feature]`, summed in term order.
    /// The tree grower partitions training rows with this same function, so training rows
    /// and scored rows are routed identically, bit for bit.
    #[inline]
    pub(crate) fn split_value(&self, i: usize, x: impl Fn(usize) -> f64) -> f64 {
        let base = i * self.terms;
        if self.terms == 1 {
            // Classic split: compare the raw value (1·x is x, kept out of the arithmetic).
            return x(self.features[base] as usize);
        }
        split_dot(
            &self.features[base..base + self.terms],
            &self.coefs[base..base + self.terms],
            x,
        )
    }

    /// Child of internal node `i` that `row` goes to.
    #[inline]
    pub(crate) fn next(&self, i: usize, row: &[f64]) -> usize {
        let left = self.child[i] as usize;
        let v = self.split_value(i, |f| row[f]);
        if v <= self.thresholds[i] {
            left
        } else {
            left + 1
        }
    }

    /// Leaf reached by `row` (a slice of the model's features, in order).
    #[inline]
    pub(crate) fn leaf(&self, row: &[f64]) -> usize {
        let mut i = 0;
        while !self.is_leaf(i) {
            i = self.next(i, row);
        }
        i
    }
}

/// `Σ coef·x[feature]` in term order: the one hyperplane formula shared by growing and scoring.
#[inline]
pub(crate) fn split_dot(features: &[u32], coefs: &[f64], x: impl Fn(usize) -> f64) -> f64 {
    let mut s = 0.0;
    for (&f, &c) in features.iter().zip(coefs) {
        s += c * x(f as usize);
    }
    s
}

/// What a valid tree of a given model must respect.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TreeLimits {
    pub(crate) n_features: usize,
    pub(crate) depth_limit: usize,
    /// ψ.
    pub(crate) max_root_samples: usize,
    /// `Some(ψ)` without bootstrap (every tree holds exactly ψ rows).
    pub(crate) exact_root_samples: Option<usize>,
}

/// Every node's depth, after checking the shape: each child comes after its parent and within
/// the array, has one parent, lies within the depth limit, and the samples add up.
fn depths(child: &[u32], samples: &[u32], limits: &TreeLimits) -> Result<Vec<u32>> {
    let n = child.len();
    let mut depth = vec![0u32; n];
    let mut parents = vec![0u8; n];
    for i in 0..n {
        let c = child[i] as usize;
        if child[i] == LEAF {
            continue;
        }
        if c <= i || c + 1 >= n {
            return Err(Error::malformed(format!(
                "node {i} has child index {c}, which is not after it or out of range \
                 (tree of {n} nodes)"
            )));
        }
        for k in [c, c + 1] {
            if parents[k] != 0 {
                return Err(Error::malformed(format!("node {k} has two parents")));
            }
            parents[k] = 1;
            depth[k] = depth[i] + 1;
        }
        if depth[c] as usize > limits.depth_limit {
            return Err(Error::malformed(format!(
                "node {c} lies at depth {}, beyond the depth limit {} of ψ = {}",
                depth[c], limits.depth_limit, limits.max_root_samples
            )));
        }
        let (s, l, r) = (samples[i], samples[c], samples[c + 1]);
        if s < 2 || u64::from(l) + u64::from(r) != u64::from(s) {
            return Err(Error::malformed(format!(
                "node {i} holds {s} samples but its children hold {l} + {r}"
            )));
        }
    }
    if let Some(k) = (1..n).find(|&k| parents[k] == 0) {
        return Err(Error::malformed(format!(
            "node {k} is unreachable (no parent)"
        )));
    }
    Ok(depth)
}

/// The root holds ψ samples (exactly, when the artifact says so).
fn check_root(samples: &[u32], limits: &TreeLimits) -> Result<()> {
    let root = samples[0] as usize;
    let root_ok = match limits.exact_root_samples {
        Some(exact) => root == exact,
        None => (1..=limits.max_root_samples).contains(&root),
    };
    if !root_ok {
        return Err(Error::malformed(format!(
            "the root holds {root} samples, inconsistent with ψ = {}",
            limits.max_root_samples
        )));
    }
    Ok(())
}

/// Split features exist, coefficients and thresholds are finite, and a classic tree has unit
/// coefficients and no empty leaf.
fn check_splits(
    terms: usize,
    child: &[u32],
    samples: &[u32],
    features: &[u32],
    coefs: &[f64],
    thresholds: &[f64],
    limits: &TreeLimits,
) -> Result<()> {
    if let Some(f) = features.iter().find(|&&f| f as usize >= limits.n_features) {
        return Err(Error::malformed(format!(
            "split on feature {f} but the model has {} feature(s)",
            limits.n_features
        )));
    }
    if coefs.iter().chain(thresholds).any(|v| !v.is_finite()) {
        return Err(Error::malformed(
            "non-finite split coefficient or threshold",
        ));
    }
    for i in 0..child.len() {
        if child[i] == LEAF {
            if terms == 1 && samples[i] == 0 {
                return Err(Error::malformed(format!(
                    "classic tree leaf {i} holds no samples"
                )));
            }
        } else if terms == 1 && coefs[i] != 1.0 {
            return Err(Error::malformed(format!(
                "classic split {i} has coefficient {} instead of 1",
                coefs[i]
            )));
        }
    }
    Ok(())
}
