//! Per-row explanations: which features isolated a row.
//!
//! For every tree, the row's path is walked and each split on it is credited with how much it
//! isolated the row: `log2(n_node / n_child)`, the bits of the training sample that the split
//! separated from the row (a child holding no sample counts as 1). Along a path these credits
//! add up to `log2(ψ / n_leaf)`, the isolation the tree achieved. A split's credit goes to its
//! feature; an extended split shares it between its features in proportion to `|coefficient|`.
//! Credits are summed over trees and normalised so each row's weights sum to 1.
//!
//! Why not simply weight splits by depth (`1/(depth+1)`)? With `d` features, every level picks
//! the outlier's extreme feature with probability `1/d`, and once picked it usually ends the
//! path, so each feature collects the same expected depth weight: depth weighting cannot tell
//! the isolating feature from the bystanders. The sample-count credit can: a bystander split
//! halves the node (about 1 bit), the isolating split cuts the outlier loose (many bits).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::forest::score::order_key;
use crate::forest::tree::Tree;

/// A classic tree laid out for explaining: a complete binary heap of fixed depth (short paths
/// padded with zero-credit left turns), each slot with its feature, its threshold as an order
/// key, and the credit of going left or right. A row's walk is then a fixed number of
/// branch-free steps, with the same credits added in the same order as the canonical walk.
#[derive(Clone, Debug)]
pub(crate) struct ExplainHeap {
    depth: u32,
    features: Vec<u8>,
    keys: Vec<u64>,
    credits: Vec<[f64; 2]>,
}

/// Deepest tree laid out as a heap (deeper trees walk the canonical arrays).
const MAX_HEAP_DEPTH: u32 = 12;

/// Rows explained together (their tree walks interleave).
const LANES: usize = 8;

/// Rows of up to this many features are laid out with this fixed stride (padding unused), so
/// the hot walk indexes fixed-size arrays.
const STRIDE: usize = 8;

/// The row stride of [`lane_weights`]' buffers for `d` features.
fn stride(d: usize) -> usize {
    if d <= STRIDE { STRIDE } else { d }
}

/// Rows per parallel block (each tree is walked by the whole block before the next tree).
const BLOCK: usize = 32 * LANES;

impl ExplainHeap {
    fn compile(tree: &Tree, node_credits: &[f64]) -> Option<Self> {
        let depth = tree.max_depth();
        if tree.terms != 1 || depth > MAX_HEAP_DEPTH || tree.features.iter().any(|f| *f > 255) {
            return None;
        }
        let width = 1usize << depth;
        let mut heap = Self {
            depth,
            features: vec![0; width],
            keys: vec![order_key(f64::INFINITY); width],
            credits: vec![[0.0; 2]; width],
        };
        let mut stack = vec![(0usize, 1usize)];
        while let Some((i, h)) = stack.pop() {
            if h >= width || tree.is_leaf(i) {
                continue;
            }
            let left = tree.child[i] as usize;
            heap.features[h] = tree.features[i] as u8;
            heap.keys[h] = order_key(tree.thresholds[i]);
            heap.credits[h] = [node_credits[left], node_credits[left + 1]];
            stack.push((left, 2 * h));
            stack.push((left + 1, 2 * h + 1));
        }
        Some(heap)
    }

    /// [`credit`](Self::credit) for up to [`LANES`] rows at once (`keys` and `weights` hold
    /// `d` values per row): the rows' walks interleave, so their dependent loads overlap.
    #[inline]
    fn credit_lanes(&self, keys: &[u64], d: usize, weights: &mut [f64]) {
        let n = (keys.len() / d).min(LANES);
        if n == LANES
            && d == STRIDE
            && self.depth == 8
            && let (Ok(features), Ok(thresholds), Ok(credits)) = (
                <&[u8; 256]>::try_from(&self.features[..]),
                <&[u64; 256]>::try_from(&self.keys[..]),
                <&[[f64; 2]; 256]>::try_from(&self.credits[..]),
            )
            && let Ok(keys) = <&[[u64; STRIDE]; LANES]>::try_from(keys.as_chunks::<STRIDE>().0)
            && let Ok(weights) =
                <&mut [[f64; STRIDE]; LANES]>::try_from(weights.as_chunks_mut::<STRIDE>().0)
        {
            walk8(features, thresholds, credits, keys, weights);
            return;
        }
        let mut h = [1usize; LANES];
        for _ in 0..self.depth {
            for (l, slot) in h.iter_mut().enumerate().take(n) {
                let i = *slot;
                let f = self.features[i] as usize;
                let right = usize::from(self.keys[i] < keys[l * d + f]);
                weights[l * d + f] += self.credits[i][right];
                *slot = 2 * i + right;
            }
        }
    }

    /// One row's walk (the reference the interleaved walk is tested against).
    #[cfg(test)]
    fn credit(&self, row_keys: &[u64], weights: &mut [f64]) {
        let mut h = 1usize;
        for _ in 0..self.depth {
            let f = self.features[h] as usize;
            let right = usize::from(self.keys[h] < row_keys[f]);
            weights[f] += self.credits[h][right];
            h = 2 * h + right;
        }
    }
}

/// [`ExplainHeap::credit_lanes`] for a full group of [`LANES`] rows and a depth-8 heap: the
/// fixed-size arrays and the `& 255` let the compiler drop the bounds checks on the tree, and
/// the lanes' row slices are cut once.
#[inline]
fn walk8(
    features: &[u8; 256],
    thresholds: &[u64; 256],
    credits: &[[f64; 2]; 256],
    keys: &[[u64; STRIDE]; LANES],
    weights: &mut [[f64; STRIDE]; LANES],
) {
    let mut h = [1usize; LANES];
    for _ in 0..8 {
        for (l, slot) in h.iter_mut().enumerate() {
            let i = *slot & 255;
            let f = features[i] as usize & (STRIDE - 1);
            let right = usize::from(thresholds[i] < keys[l][f]);
            weights[l][f] += credits[i][right];
            *slot = 2 * i + right;
        }
    }
}

/// How one tree is walked for explanations.
#[derive(Clone, Debug)]
pub(crate) enum Explainer {
    Heap(ExplainHeap),
    /// Extended or very deep trees: the canonical arrays and per-node credits.
    Canonical(Vec<f64>),
}

impl Explainer {
    pub(crate) fn compile(tree: &Tree) -> Self {
        let credits = node_credits(tree);
        match ExplainHeap::compile(tree, &credits) {
            Some(heap) => Explainer::Heap(heap),
            None => Explainer::Canonical(credits),
        }
    }
}

/// One feature's share in isolating a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureContribution {
    /// Column index in the model's feature order.
    pub feature: usize,
    /// Share of the row's isolation credited to this feature, in (0, 1]; a row's weights
    /// over all features sum to 1.
    pub weight: f64,
}

/// Like [`FeatureContribution`], carrying the feature's name (what gold rows store).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedContribution {
    /// Feature (column) name.
    pub feature: String,
    /// See [`FeatureContribution::weight`].
    pub weight: f64,
}

/// Per node, the credit of the split that leads to it: `log2(n_parent / n_node)` (0 at the
/// root). Computed once per model: the `log2` per visited node dominated explaining.
pub(crate) fn node_credits(tree: &Tree) -> Vec<f64> {
    let mut credits = vec![0.0; tree.samples.len()];
    for i in 0..tree.samples.len() {
        if tree.is_leaf(i) {
            continue;
        }
        let left = tree.child[i] as usize;
        for c in [left, left + 1] {
            if let Some(credit) = credits.get_mut(c) {
                *credit = (f64::from(tree.samples[i]) / f64::from(tree.samples[c].max(1))).log2();
            }
        }
    }
    credits
}

/// Adds the isolation credit of every split on `row`'s path through `tree` to `weights`.
fn credit_tree(tree: &Tree, credits: &[f64], row: &[f64], weights: &mut [f64]) {
    let mut i = 0;
    while !tree.is_leaf(i) {
        let c = tree.next(i, row);
        let bits = credits[c];
        let base = i * tree.terms;
        let feats = &tree.features[base..base + tree.terms];
        let coefs = &tree.coefs[base..base + tree.terms];
        let total: f64 = coefs.iter().map(|c| c.abs()).sum();
        if bits > 0.0 && total > 0.0 {
            for (&f, &k) in feats.iter().zip(coefs) {
                weights[f as usize] += bits * k.abs() / total;
            }
        }
        i = c;
    }
}

/// Normalised weights of every feature for one row (all zero if no split isolated it): the
/// one-row reference of [`lane_weights`].
#[cfg(test)]
pub(crate) fn feature_weights(
    trees: &[Tree],
    explainers: &[Explainer],
    row: &[f64],
    row_keys: &mut Vec<u64>,
    weights: &mut [f64],
) {
    weights.fill(0.0);
    row_keys.clear();
    row_keys.extend(row.iter().map(|v| order_key(*v)));
    for (tree, explainer) in trees.iter().zip(explainers) {
        match explainer {
            Explainer::Heap(heap) => heap.credit(row_keys, weights),
            Explainer::Canonical(credits) => credit_tree(tree, credits, row, weights),
        }
    }
    let total: f64 = weights.iter().sum();
    if total > 0.0 {
        for w in weights.iter_mut() {
            *w /= total;
        }
    }
}

/// Top-`k` features of one row by weight (ties: lower feature index first); features with
/// zero weight are left out.
pub(crate) fn top_k(weights: &[f64], k: usize) -> Vec<FeatureContribution> {
    let mut order: Vec<usize> = (0..weights.len()).filter(|&f| weights[f] > 0.0).collect();
    order.sort_unstable_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|f| FeatureContribution {
            feature: f,
            weight: weights[f],
        })
        .collect()
}

/// Explains every row of a row-major buffer (`d` values per row, all finite).
/// [`feature_weights`] of a block of rows (`d` values each), [`LANES`] rows interleaved; same
/// sums, same order of additions per row.
fn lane_weights(
    trees: &[Tree],
    explainers: &[Explainer],
    d: usize,
    rows: &[f64],
    keys: &mut Vec<u64>,
    weights: &mut Vec<f64>,
) {
    let w = stride(d);
    let n = rows.len() / d;
    weights.clear();
    weights.resize(n * w, 0.0);
    keys.clear();
    for row in rows.chunks_exact(d) {
        keys.extend(row.iter().map(|v| order_key(*v)));
        keys.extend(std::iter::repeat_n(0, w - d));
    }
    // Tree-major: one tree's arrays stay in L1 while every lane group of the block walks it
    // (each row still adds its credits tree by tree, level by level: the same sums).
    for (tree, explainer) in trees.iter().zip(explainers) {
        match explainer {
            Explainer::Heap(heap) => {
                for (k, ws) in keys.chunks(w * LANES).zip(weights.chunks_mut(w * LANES)) {
                    heap.credit_lanes(k, w, ws);
                }
            }
            Explainer::Canonical(credits) => {
                for (row, ws) in rows.chunks_exact(d).zip(weights.chunks_exact_mut(w)) {
                    credit_tree(tree, credits, row, &mut ws[..d]);
                }
            }
        }
    }
    for ws in weights.chunks_exact_mut(w) {
        let w = &mut ws[..d];
        let total: f64 = w.iter().sum();
        if total > 0.0 {
            for v in w.iter_mut() {
                *v /= total;
            }
        }
    }
}

/// The top-`k` feature indices of every row, `k` slots per row (unused slots hold
/// [`NO_FEATURE`]): [`explain_rows`] without a vector per row.
pub(crate) fn explain_top_flat(
    trees: &[Tree],
    explainers: &[Explainer],
    d: usize,
    rows: &[f64],
    k: usize,
) -> Vec<u32> {
    rows.par_chunks(d * BLOCK)
        .map_init(
            || (Vec::with_capacity(d * BLOCK), Vec::with_capacity(d * BLOCK)),
            |(keys, weights), block| {
                lane_weights(trees, explainers, d, block, keys, weights);
                let mut out = Vec::with_capacity(k * BLOCK);
                for w in weights.chunks_exact(stride(d)) {
                    let top = top_k(&w[..d], k);
                    out.extend(top.iter().map(|c| c.feature as u32));
                    out.extend(std::iter::repeat_n(NO_FEATURE, k - top.len()));
                }
                out
            },
        )
        .flat_map_iter(|v| v)
        .collect()
}

/// An unused slot of [`explain_top_flat`].
pub const NO_FEATURE: u32 = u32::MAX;

pub(crate) fn explain_rows(
    trees: &[Tree],
    explainers: &[Explainer],
    d: usize,
    rows: &[f64],
    k: usize,
) -> Vec<Vec<FeatureContribution>> {
    rows.par_chunks(d * BLOCK)
        .map_init(
            || (Vec::with_capacity(d * BLOCK), Vec::with_capacity(d * BLOCK)),
            |(keys, weights), block| {
                lane_weights(trees, explainers, d, block, keys, weights);
                weights
                    .chunks_exact(stride(d))
                    .map(|w| top_k(&w[..d], k))
                    .collect::<Vec<_>>()
            },
        )
        .flat_map_iter(|v| v)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::IsolationForest;
    use ndarray::Array2;

    /// The heap layout adds the same credits in the same order as the canonical walk: the
    /// weights are bitwise equal, for shallow, padded and deeper trees.
    #[test]
    fn heap_walk_equals_the_canonical_walk_bit_for_bit() {
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for (rows, d, psi) in [(400, 3, 16), (2000, 6, 256), (5000, 9, 2048)] {
            let x = Array2::from_shape_fn((rows, d), |_| next() * 10.0 - 5.0);
            let m = IsolationForest::params()
                .seed(3)
                .max_samples(crate::MaxSamples::Count(psi))
                .fit_array(&x)
                .unwrap();
            let heaps: Vec<Explainer> = m.trees().iter().map(Explainer::compile).collect();
            let canonical: Vec<Explainer> = m
                .trees()
                .iter()
                .map(|t| Explainer::Canonical(node_credits(t)))
                .collect();
            assert!(heaps.iter().any(|e| matches!(e, Explainer::Heap(_))));
            let (mut a, mut b, mut keys) = (vec![0.0; d], vec![0.0; d], Vec::new());
            for row in x.rows().into_iter().take(300) {
                let row = row.to_vec();
                feature_weights(m.trees(), &heaps, &row, &mut keys, &mut a);
                feature_weights(m.trees(), &canonical, &row, &mut keys, &mut b);
                assert_eq!(
                    a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
            }
            // Interleaved blocks (full and partial) give the single-row weights.
            let flat: Vec<f64> = x.iter().copied().take(d * 13).collect();
            let mut block = Vec::new();
            lane_weights(
                m.trees(),
                &heaps,
                d,
                &flat[..d * LANES],
                &mut keys,
                &mut block,
            );
            let mut tail = Vec::new();
            lane_weights(
                m.trees(),
                &heaps,
                d,
                &flat[d * LANES..],
                &mut keys,
                &mut tail,
            );
            block.extend(tail);
            for (r, row) in flat.chunks_exact(d).enumerate() {
                feature_weights(m.trees(), &canonical, row, &mut keys, &mut b);
                let w = stride(d);
                let got: Vec<u64> = block[r * w..r * w + d]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                assert_eq!(
                    got,
                    b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "row {r}"
                );
            }
        }
    }
}
