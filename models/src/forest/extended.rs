//! Extended Isolation Forest splits (Hariri, Carrasco Kind and Brunner, "Extended Isolation
//! Forest", IEEE TKDE 2021).
//!
//! The classic forest only cuts parallel to the axes, which leaves score artefacts (bands and
//! crosses) around clusters. The extended forest cuts with random hyperplanes: a normal vector
//! with N(0, 1) coefficients on `extension_level + 1` randomly chosen features, through a point
//! `p` drawn uniformly in the node's bounding box on those features. A row goes left when
//! `Σ nᵢ (xᵢ − pᵢ) ≤ 0`; the tree stores the equivalent `Σ nᵢ xᵢ ≤ Σ nᵢ pᵢ`, so a split is
//! one threshold like a classic one. Depth limit, leaf rules and the `c(n)` correction are
//! the classic ones. A hyperplane may leave one side empty; that child is a leaf holding no
//! sample (`c(0) = 0`), as in the reference implementation.
//!
//! `rand_distr` is not a dependency: the normal draws use the Box–Muller transform.

use super::score::padded_leaf_slot;
use rand::Rng;
use rand::seq::index;

use crate::forest::grow::uniform_below;
use crate::forest::score::LANES;
use crate::forest::tree::Tree;

/// A drawn hyperplane over local (per-tree) feature columns.
pub(crate) struct Hyperplane {
    /// Local column of each term.
    pub(crate) local: Vec<usize>,
    /// Normal vector coefficient of each term.
    pub(crate) coefs: Vec<f64>,
    /// `Σ nᵢ pᵢ`: rows with `Σ nᵢ xᵢ ≤ threshold` go left.
    pub(crate) threshold: f64,
}

/// Draws a hyperplane with `terms` terms given each local column's `(min, max)` at the node.
///
/// Terms go to features that vary at the node first; only when fewer than `terms` vary are
/// constant ones added (they shift both sides equally and do not change the partition).
/// Returns `None` — the node becomes a leaf — when no feature varies, or when the
/// intercept overflows (features near `f64::MAX`).
pub(crate) fn draw_hyperplane(
    bounds: &[(f64, f64)],
    terms: usize,
    rng: &mut impl Rng,
) -> Option<Hyperplane> {
    let (varying, constant): (Vec<usize>, Vec<usize>) =
        (0..bounds.len()).partition(|&j| bounds[j].0 < bounds[j].1);
    if varying.is_empty() {
        return None;
    }
    let q = terms.min(varying.len());
    let mut local: Vec<usize> = index::sample(rng, varying.len(), q)
        .into_iter()
        .map(|k| varying[k])
        .collect();
    if q < terms {
        let extra = (terms - q).min(constant.len());
        local.extend(
            index::sample(rng, constant.len(), extra)
                .into_iter()
                .map(|k| constant[k]),
        );
    }
    let mut coefs = Vec::with_capacity(local.len());
    let mut threshold = 0.0;
    for &j in &local {
        let (lo, hi) = bounds[j];
        let n = standard_normal(rng);
        let p = if lo < hi {
            uniform_below(rng, lo, hi)
        } else {
            lo
        };
        coefs.push(n);
        threshold += n * p;
    }
    threshold.is_finite().then_some(Hyperplane {
        local,
        coefs,
        threshold,
    })
}

/// One N(0, 1) draw (Box–Muller; `1 − u` keeps the logarithm's argument in (0, 1]).
pub(crate) fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An extended tree compiled for scoring, like the classic `HeapTree` of `score.rs`: a
/// complete binary tree in 1-based heap order (children of `h` are `2h`, `2h + 1`), padded
/// below shallow leaves with always-left slots (zero coefficients, threshold +∞), walked a
/// fixed `depth` steps without data-dependent branches, several rows interleaved.
#[derive(Clone, Debug)]
pub(crate) struct HyperplaneHeap {
    depth: u32,
    terms: usize,
    /// `terms` features per slot.
    features: Vec<u8>,
    /// `terms` coefficients per slot.
    coefs: Vec<f64>,
    thresholds: Vec<f64>,
    /// `2^depth` leaf values.
    leaves: Vec<f64>,
}

impl HyperplaneHeap {
    /// `None` when the tree is deeper than `max_depth` or has more than 256 features.
    pub(crate) fn compile(tree: &Tree, n_features: usize, max_depth: u32) -> Option<Self> {
        let depth = tree.max_depth();
        if depth > max_depth || n_features > 256 {
            return None;
        }
        let terms = tree.terms;
        let width = 1usize << depth;
        let mut features = vec![0u8; width * terms];
        let mut coefs = vec![0.0; width * terms];
        let mut thresholds = vec![f64::INFINITY; width];
        let mut leaves = vec![0.0; width];
        let mut stack = vec![(0usize, 1usize)];
        while let Some((i, h)) = stack.pop() {
            if tree.is_leaf(i) {
                leaves[padded_leaf_slot(h, width) - width] = tree.path_value[i];
            } else {
                for t in 0..terms {
                    features[h * terms + t] = tree.features[i * terms + t] as u8;
                    coefs[h * terms + t] = tree.coefs[i * terms + t];
                }
                thresholds[h] = tree.thresholds[i];
                let left = tree.child[i] as usize;
                stack.push((left, 2 * h));
                stack.push((left + 1, 2 * h + 1));
            }
        }
        Some(HyperplaneHeap {
            depth,
            terms,
            features,
            coefs,
            thresholds,
            leaves,
        })
    }

    /// Adds this tree's path length of every row (values padded to `S`, a power of two) to
    /// `acc`; `rows` may be longer than `acc` (whole groups of [`LANES`]).
    pub(crate) fn accumulate<const S: usize>(&self, rows: &[[f64; S]], acc: &mut [f64]) {
        let width = self.leaves.len();
        let terms = self.terms;
        if width == 0 || self.thresholds.len() != width || self.features.len() != width * terms {
            return; // cannot happen: built with consistent lengths
        }
        let mask = width - 1;
        for (g, group) in rows.chunks(LANES).enumerate() {
            let mut h = [1usize; LANES];
            for _ in 0..self.depth {
                for (hl, row) in h.iter_mut().zip(group) {
                    let i = *hl & mask;
                    let base = i * terms;
                    let feats = &self.features[base..base + terms];
                    let coefs = &self.coefs[base..base + terms];
                    // Same formula and order as `tree::split_dot`: bitwise the same routing.
                    let mut s = 0.0;
                    for (&f, &c) in feats.iter().zip(coefs) {
                        s += c * row[f as usize & (S - 1)];
                    }
                    // `s > t` goes right, as `!(s <= t)` does in the canonical walk for every
                    // number; a NaN sum (only in rows holding NaN/∞, scored NaN) goes left.
                    *hl = 2 * *hl + usize::from(s > self.thresholds[i]);
                }
            }
            let a = acc.iter_mut().skip(g * LANES).take(LANES);
            for (s, &hl) in a.zip(&h) {
                *s += self.leaves[hl.wrapping_sub(width) & mask];
            }
        }
    }
}
