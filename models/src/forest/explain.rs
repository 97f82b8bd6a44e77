//! Per-row explanations: which features isolated a row.
//!
//! For every tree, the row's path is walked and each split on it is credited with how much it
//! isolated the row: `log2(n_node / n_child)`, the bits of the training sample that the split
//! separated from the row (a child holding no sample counts as 1). Along a path these credits
//! add up to `log2(ψ / n_leaf)`, the isolation the tree achieved. A split's credit goes to its
//! feature; an extended split shares it between its features in proportion to `|coefficient|`.
//! Credits are summed over trees and normalised so each row's weights sum to 1. Within a tree
//! a feature's credits are first summed along the path, then added to the row's weights, tree
//! by tree: every walk below adds in that order, so they agree bit for bit.
//!
//! Why not simply weight splits by depth (`1/(depth+1)`)? With `d` features, every level picks
//! the outlier's extreme feature with probability `1/d`, and once picked it usually ends the
//! path, so each feature collects the same expected depth weight: depth weighting cannot tell
//! the isolating feature from the bystanders. The sample-count credit can: a bystander split
//! halves the node (about 1 bit), the isolating split cuts the outlier loose (many bits).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::forest::score::{order_key, padded_leaf_slot};
use crate::forest::tree::Tree;

/// A classic tree laid out for explaining: a complete binary heap of fixed depth (short paths
/// padded with zero-credit left turns), each slot with its feature, its threshold as an order
/// key, and the credit of going left or right. A row's walk is then a fixed number of
/// branch-free steps, with the same credits added in the same order as the canonical walk.
///
/// A path is fixed by the leaf slot it ends in, and so are its credits: unless the table
/// would be large, each leaf slot holds its path's credits per feature, and a row's walk is
/// the scorer's (comparisons only) plus one add of that vector, instead of a dependent
/// read-modify-write of the row's weights at every level.
#[derive(Clone, Debug)]
pub(crate) struct ExplainHeap {
    depth: u32,
    features: Vec<u8>,
    keys: Vec<u64>,
    credits: Vec<[f64; 2]>,
    /// Row stride of the leaf table (see [`stride`]).
    width: usize,
    /// `2^depth` rows of `width` credits: the path's credit per feature for each leaf slot
    /// (`h − 2^depth`); empty when the table would pass [`MAX_LEAF_TABLE`] values.
    leaf_credits: Vec<f64>,
    /// Per leaf slot, the path length the scorer adds (`depth + c(n)` of the leaf that owns
    /// it): the walk that explains a row also gives its score.
    leaf_values: Vec<f64>,
}

/// Deepest tree laid out as a heap (deeper trees walk the canonical arrays).
const MAX_HEAP_DEPTH: u32 = 12;

/// Largest leaf table (values) per tree: 64 KiB, so one tree's walk stays in L1/L2.
const MAX_LEAF_TABLE: usize = 8192;

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
    /// `width`: the row stride the walks use ([`stride`] of the model's feature count).
    fn compile(tree: &Tree, node_credits: &[f64], width: usize) -> Option<Self> {
        let depth = tree.max_depth();
        if tree.terms != 1 || depth > MAX_HEAP_DEPTH || tree.features.iter().any(|f| *f > 255) {
            return None;
        }
        let slots = 1usize << depth;
        let mut heap = Self {
            depth,
            features: vec![0; slots],
            keys: vec![order_key(f64::INFINITY); slots],
            credits: vec![[0.0; 2]; slots],
            width,
            leaf_credits: Vec::new(),
            leaf_values: vec![0.0; slots],
        };
        let mut stack = vec![(0usize, 1usize)];
        while let Some((i, h)) = stack.pop() {
            if tree.is_leaf(i) {
                heap.leaf_values[padded_leaf_slot(h, slots) - slots] = tree.path_value[i];
                continue;
            }
            let left = tree.child[i] as usize;
            heap.features[h] = tree.features[i] as u8;
            heap.keys[h] = order_key(tree.thresholds[i]);
            heap.credits[h] = [node_credits[left], node_credits[left + 1]];
            stack.push((left, 2 * h));
            stack.push((left + 1, 2 * h + 1));
        }
        if slots * width <= MAX_LEAF_TABLE && tree.features.iter().all(|f| (*f as usize) < width) {
            let mut table = vec![0.0; slots * width];
            for (leaf, path) in table.chunks_exact_mut(width).enumerate() {
                heap.path_credits(slots + leaf, path);
            }
            heap.leaf_credits = table;
        }
        Some(heap)
    }

    /// Adds the credits of the path to leaf slot `leaf` (`2^depth ≤ leaf < 2^(depth+1)`) to
    /// `path`, per feature, in path order: what a row ending there collects in this tree.
    fn path_credits(&self, leaf: usize, path: &mut [f64]) {
        for level in (1..=self.depth).rev() {
            let i = leaf >> level;
            let right = (leaf >> (level - 1)) & 1;
            path[self.features[i] as usize] += self.credits[i][right];
        }
    }

    /// [`credit`](Self::credit) for up to [`LANES`] rows at once (`keys` and `weights` hold
    /// `w` values per row; `path`: scratch of at least `LANES · w`), and each row's path
    /// length added to `sums`: the rows' walks interleave, so their dependent loads overlap.
    #[inline]
    fn credit_lanes(
        &self,
        keys: &[u64],
        w: usize,
        weights: &mut [f64],
        path: &mut [f64],
        sums: &mut [f64],
    ) {
        let n = (keys.len() / w).min(LANES);
        if n == LANES
            && w == STRIDE
            && let (Ok(features), Ok(thresholds), Ok(leaf_credits)) = (
                <&[u8; 256]>::try_from(&self.features[..]),
                <&[u64; 256]>::try_from(&self.keys[..]),
                <&[[f64; STRIDE]; 256]>::try_from(self.leaf_credits.as_chunks::<STRIDE>().0),
            )
            && let Ok(keys) = <&[[u64; STRIDE]; LANES]>::try_from(keys.as_chunks::<STRIDE>().0)
            && let Ok(weights) =
                <&mut [[f64; STRIDE]; LANES]>::try_from(weights.as_chunks_mut::<STRIDE>().0)
            && let Ok(values) = <&[f64; 256]>::try_from(&self.leaf_values[..])
            && let Ok(sums) = <&mut [f64; LANES]>::try_from(&mut sums[..])
        {
            let leaves = Leaves {
                credits: leaf_credits,
                values,
            };
            walk8(features, thresholds, &leaves, keys, weights, sums);
            return;
        }
        let table = !self.leaf_credits.is_empty() && w == self.width;
        let path = &mut path[..n * w];
        path.fill(0.0);
        let mut h = [1usize; LANES];
        for _ in 0..self.depth {
            for (l, slot) in h.iter_mut().enumerate().take(n) {
                let i = *slot;
                let f = self.features[i] as usize;
                let right = usize::from(self.keys[i] < keys[l * w + f]);
                if !table {
                    path[l * w + f] += self.credits[i][right];
                }
                *slot = 2 * i + right;
            }
        }
        let first_leaf = 1usize << self.depth;
        for (l, &slot) in h.iter().enumerate().take(n) {
            sums[l] += self.leaf_values[slot - first_leaf];
            let credits = match table {
                true => &self.leaf_credits[(slot - first_leaf) * w..][..w],
                false => &path[l * w..][..w],
            };
            for (a, b) in weights[l * w..][..w].iter_mut().zip(credits) {
                *a += b;
            }
        }
    }

    /// One row's walk (the reference the interleaved walk is tested against).
    #[cfg(test)]
    fn credit(&self, row_keys: &[u64], weights: &mut [f64]) {
        let mut path = vec![0.0; weights.len()];
        let mut h = 1usize;
        for _ in 0..self.depth {
            let f = self.features[h] as usize;
            let right = usize::from(self.keys[h] < row_keys[f]);
            path[f] += self.credits[h][right];
            h = 2 * h + right;
        }
        for (w, p) in weights.iter_mut().zip(&path) {
            *w += p;
        }
    }
}

/// A depth-8 heap's leaf tables (see [`ExplainHeap`]).
struct Leaves<'a> {
    credits: &'a [[f64; STRIDE]; 256],
    values: &'a [f64; 256],
}

/// [`ExplainHeap::credit_lanes`] for a full group of [`LANES`] rows and a depth-8 heap: the
/// scorer's eight branch-free steps (the `& 255` lets the compiler drop the bounds checks),
/// then each row adds the credits and the path length of the leaf it reached.
#[inline]
fn walk8(
    features: &[u8; 256],
    thresholds: &[u64; 256],
    leaves: &Leaves<'_>,
    keys: &[[u64; STRIDE]; LANES],
    weights: &mut [[f64; STRIDE]; LANES],
    sums: &mut [f64; LANES],
) {
    let mut h = [1usize; LANES];
    for _ in 0..8 {
        for (l, slot) in h.iter_mut().enumerate() {
            let i = *slot & 255;
            let f = features[i] as usize & (STRIDE - 1);
            *slot = 2 * i + usize::from(thresholds[i] < keys[l][f]);
        }
    }
    for ((w, s), &slot) in weights.iter_mut().zip(sums.iter_mut()).zip(&h) {
        *s += leaves.values[slot & 255];
        for (a, b) in w.iter_mut().zip(&leaves.credits[slot & 255]) {
            *a += b;
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
    /// `n_features`: the model's feature count (the width of the rows it explains).
    pub(crate) fn compile(tree: &Tree, n_features: usize) -> Self {
        let credits = node_credits(tree);
        match ExplainHeap::compile(tree, &credits, stride(n_features)) {
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

/// Adds the isolation credit of every split on `row`'s path through `tree` to `weights`:
/// summed per feature along the path in `path` (scratch of `weights.len()`), then added.
/// Returns the path length the scorer gives the row in this tree.
fn credit_tree(
    tree: &Tree,
    credits: &[f64],
    row: &[f64],
    path: &mut [f64],
    weights: &mut [f64],
) -> f64 {
    path.fill(0.0);
    let leaf = credit_path(tree, credits, row, path);
    for (w, p) in weights.iter_mut().zip(path.iter()) {
        *w += p;
    }
    tree.path_value[leaf]
}

/// The credits per feature of `row`'s path through `tree`, added to `path` in path order;
/// returns the leaf the path ends in.
fn credit_path(tree: &Tree, credits: &[f64], row: &[f64], path: &mut [f64]) -> usize {
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
                path[f as usize] += bits * k.abs() / total;
            }
        }
        i = c;
    }
    i
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
            Explainer::Canonical(credits) => {
                let mut path = vec![0.0; weights.len()];
                credit_tree(tree, credits, row, &mut path, weights);
            }
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

/// The buffers of one block's walk: row keys, weights and path sums (reused across blocks).
#[derive(Default)]
struct Block {
    keys: Vec<u64>,
    weights: Vec<f64>,
    sums: Vec<f64>,
}

/// [`feature_weights`] of a block of rows (`d` values each) into `block.weights` ([`stride`]
/// values per row), [`LANES`] rows interleaved, same sums in the same order of additions per
/// row; and each row's path length summed over the trees, in tree order (what the scorer
/// sums), into `block.sums`.
fn lane_weights(
    trees: &[Tree],
    explainers: &[Explainer],
    d: usize,
    rows: &[f64],
    block: &mut Block,
) {
    let w = stride(d);
    let n = rows.len() / d;
    let Block {
        keys,
        weights,
        sums,
    } = block;
    weights.clear();
    weights.resize(n * w, 0.0);
    sums.clear();
    sums.resize(n, 0.0);
    let mut path = vec![0.0; w * LANES];
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
                let groups = keys.chunks(w * LANES).zip(weights.chunks_mut(w * LANES));
                for ((k, ws), s) in groups.zip(sums.chunks_mut(LANES)) {
                    heap.credit_lanes(k, w, ws, &mut path, s);
                }
            }
            Explainer::Canonical(credits) => {
                let rows = rows.chunks_exact(d).zip(weights.chunks_exact_mut(w));
                for ((row, ws), s) in rows.zip(sums.iter_mut()) {
                    *s += credit_tree(tree, credits, row, &mut path[..d], &mut ws[..d]);
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
/// [`NO_FEATURE`]), and each row's path length summed over the trees (see [`lane_weights`]):
/// [`explain_rows`] without a vector per row, and the scorer's walk in the same pass.
pub(crate) fn explain_top_flat(
    trees: &[Tree],
    explainers: &[Explainer],
    d: usize,
    rows: &[f64],
    k: usize,
) -> (Vec<u32>, Vec<f64>) {
    let blocks: Vec<(Vec<u32>, Vec<f64>)> = rows
        .par_chunks(d * BLOCK)
        .map_init(Block::default, |block, rows| {
            lane_weights(trees, explainers, d, rows, block);
            let mut out = Vec::with_capacity(k * BLOCK);
            for w in block.weights.chunks_exact(stride(d)) {
                let top = top_k(&w[..d], k);
                out.extend(top.iter().map(|c| c.feature as u32));
                out.extend(std::iter::repeat_n(NO_FEATURE, k - top.len()));
            }
            (out, std::mem::take(&mut block.sums))
        })
        .collect();
    let mut top = Vec::with_capacity(k * rows.len() / d.max(1));
    let mut sums = Vec::with_capacity(rows.len() / d.max(1));
    for (t, s) in blocks {
        top.extend(t);
        sums.extend(s);
    }
    (top, sums)
}

/// An unused slot of [`explain_top_flat`].
pub const NO_FEATURE: u32 = u32::MAX;

/// Explains every row of a row-major buffer (`d` values per row, all finite).
pub(crate) fn explain_rows(
    trees: &[Tree],
    explainers: &[Explainer],
    d: usize,
    rows: &[f64],
    k: usize,
) -> Vec<Vec<FeatureContribution>> {
    rows.par_chunks(d * BLOCK)
        .map_init(Block::default, |block, rows| {
            lane_weights(trees, explainers, d, rows, block);
            block
                .weights
                .chunks_exact(stride(d))
                .map(|w| top_k(&w[..d], k))
                .collect::<Vec<_>>()
        })
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
        // Leaf tables: generic (depth 4), the fixed depth-8 walk, generic (depth 10); none
        // (depth 11 over 9 features is past MAX_LEAF_TABLE).
        for (rows, d, psi) in [
            (400, 3, 16),
            (2000, 6, 256),
            (3000, 4, 1024),
            (5000, 9, 2048),
        ] {
            let x = Array2::from_shape_fn((rows, d), |_| next() * 10.0 - 5.0);
            let m = IsolationForest::params()
                .seed(3)
                .max_samples(crate::MaxSamples::Count(psi))
                .fit_array(&x)
                .unwrap();
            let heaps: Vec<Explainer> =
                m.trees().iter().map(|t| Explainer::compile(t, d)).collect();
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
            // Interleaved blocks (full and partial) give the single-row weights, and the
            // scorer's path sums bit for bit.
            let flat: Vec<f64> = x.iter().copied().take(d * 13).collect();
            let mut full = Block::default();
            lane_weights(m.trees(), &heaps, d, &flat[..d * LANES], &mut full);
            let mut tail = Block::default();
            lane_weights(m.trees(), &heaps, d, &flat[d * LANES..], &mut tail);
            full.weights.extend(tail.weights);
            full.sums.extend(tail.sums);
            let mut canon = Block::default();
            lane_weights(m.trees(), &canonical, d, &flat, &mut canon);
            let scores = m
                .score_samples_portable(&Array2::from_shape_vec((13, d), flat.clone()).unwrap())
                .unwrap();
            let norm = crate::forest::score::path_norm(m.trees().len(), psi);
            for (r, row) in flat.chunks_exact(d).enumerate() {
                feature_weights(m.trees(), &canonical, row, &mut keys, &mut b);
                let w = stride(d);
                let got: Vec<u64> = full.weights[r * w..r * w + d]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                assert_eq!(
                    got,
                    b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "row {r}"
                );
                assert_eq!(full.sums[r].to_bits(), canon.sums[r].to_bits(), "row {r}");
                let score = crate::forest::score::score_of_path_sum(full.sums[r], norm);
                assert_eq!(score.to_bits(), scores[r].to_bits(), "row {r}");
            }
        }
    }
}
