//! Path lengths, the `c(n)` correction and the fast, chunked scorer.
//!
//! Speed comes from these choices:
//! - Classic trees are compiled into a complete binary tree in 1-based heap order
//!   ("padded": below a shallow leaf, always-left nodes lead to its copy on the last level).
//!   A walk is then a fixed number of steps `h = 2h + (t[h] < x[f[h]])` with no
//!   data-dependent branch, and the leaf holds `depth + c(n)` precomputed: a walk plus one add.
//! - Trees of depth ≤ 8 (ψ ≤ 256, the common case) use fixed 256-slot arrays and a fully
//!   unrolled 8-step walk, so the compiler proves every index in bounds (no checks, no
//!   `unsafe`) and hoists the root, which every row visits.
//! - Values and thresholds are compared as order-preserving integer keys (`order_key`),
//!   which compiles to one integer compare-with-memory per step.
//! - Rows are processed in chunks (parallel over chunks with rayon), and inside a chunk in
//!   blocks, tree-outer / row-inner: one tree (a few KiB) stays in L1 while the block walks
//!   it, `LANES` rows interleaved so their independent dependency chains overlap in the CPU.
//!   Memory is bounded by the chunk, never by rows × trees.
//! - Each row's sum runs over the trees in their fixed order, independent of the chunk it
//!   falls in, so scores are bitwise identical whatever the thread count or chunk size.
//!
//! This scalar walk is the portable path. On CPUs with AVX-512, classic forests of depth ≤ 8
//! over ≤ 8 features are instead scored by `ranked` + `simd` (32 rows per register, ~5×
//! faster), which takes exactly the same path through every tree and so gives bitwise the
//! same scores.

use rayon::prelude::*;

use crate::forest::extended::HyperplaneHeap;
use crate::forest::ranked::RankedForest;
use crate::forest::tree::Tree;

/// Euler–Mascheroni constant γ (numpy's `np.euler_gamma`).
pub const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Rows per rayon task. Bounded memory: the output chunk doubles as the accumulator.
pub(crate) const CHUNK_ROWS: usize = 4096;

/// Rows that walk one tree before the next tree is taken (keeps rows + tree in L1); a
/// multiple of [`LANES`].
const BLOCK_ROWS: usize = 252;

/// Rows walked together, interleaved, through one tree (as many as fit in registers).
pub(crate) const LANES: usize = 12;

/// Deepest classic tree compiled to the padded heap layout (2^12 leaves = 80 KiB); deeper
/// trees (ψ > 4096) are walked in their canonical form.
const MAX_HEAP_DEPTH: u32 = 12;

/// `c(n)`: the average path length of an unsuccessful search in a binary search tree of `n`
/// nodes, used both to credit a leaf that still holds `n` samples and to normalise scores.
///
/// `c(n) = 2 H(n − 1) − 2 (n − 1) / n` with the harmonic number approximated by
/// `H(i) ≈ ln(i) + γ`, exactly as in Liu et al. (2008) and scikit-learn's
/// `_average_path_length`; `c(0) = c(1) = 0` and `c(2) = 1` are special-cased there too.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

/// Depth limit of a tree grown on ψ samples: `ceil(log2(max(ψ, 2)))`, the average height of
/// a random binary tree, beyond which rows are "normal" anyway (scikit-learn's `max_depth`).
pub fn depth_limit(psi: usize) -> usize {
    let psi = psi.max(2);
    (usize::BITS - (psi - 1).leading_zeros()) as usize
}

/// The anomaly score of a row from its summed path length over `n_trees` trees:
/// `−2^(−E[h(x)] / c(ψ))` (scikit-learn's `score_samples`; lower is more abnormal).
#[inline]
pub fn score_from_path_sum(path_sum: f64, n_trees: usize, psi: usize) -> f64 {
    score_of_path_sum(path_sum, path_norm(n_trees, psi))
}

/// Order-preserving map from `f64` to `u64`: for non-NaN `a`, `b`,
/// `a < b ⇔ order_key(a) < order_key(b)`. Negative zero is first turned into positive zero
/// (`v + 0.0`) so that `-0.0` and `0.0` stay equal. NaN keys are meaningless; rows holding a
/// NaN get a NaN score whatever their walk does.
#[inline]
pub(crate) fn order_key(v: f64) -> u64 {
    let bits = (v + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// A classic tree as a complete binary tree in 1-based heap order: slot 1 is the root, the
/// children of slot `h` are `2h` (left) and `2h + 1` (right), slot 0 is unused. A walk is
/// `h = 2h + (key(t[h]) < key(x[f[h]]))` repeated `depth` times, then `leaves[h − 2^depth]`.
#[derive(Clone, Debug)]
pub(crate) struct HeapTree {
    /// Steps of a walk: 8 for every tree of depth ≤ 8 (the fixed layout), else the depth.
    depth: u32,
    /// Split feature per slot (`u8`: this layout is only used for ≤ [`MAX_STRIDE`] features).
    features: Vec<u8>,
    /// [`order_key`] of the split threshold per slot; padding slots hold the key of +∞,
    /// which sends every finite value left.
    keys: Vec<u64>,
    /// `2^depth` leaf values (`depth + c(n)` of the leaf that owns the slot).
    leaves: Vec<f64>,
}

/// Widest row (features, rounded up to a power of two) scored with the heap layout.
const MAX_STRIDE: usize = 64;

/// Slots of the fixed layout, and its walk length.
const SMALL: usize = 256;
const SMALL_DEPTH: u32 = 8;

/// A tree in the form the scorer walks.
#[derive(Clone, Debug)]
pub(crate) enum CompiledTree {
    /// Classic tree of depth ≤ 12 over ≤ 64 features.
    Heap(HeapTree),
    /// Extended tree of depth ≤ 12 over ≤ 64 features.
    Hyperplane(HyperplaneHeap),
    /// Very deep or very wide tree: walk the canonical arrays.
    Canonical,
}

impl CompiledTree {
    pub(crate) fn compile(tree: &Tree, n_features: usize) -> Self {
        let max_depth = tree.max_depth();
        if max_depth > MAX_HEAP_DEPTH || n_features > MAX_STRIDE {
            return CompiledTree::Canonical;
        }
        if tree.terms != 1 {
            return HyperplaneHeap::compile(tree, n_features, MAX_HEAP_DEPTH)
                .map_or(CompiledTree::Canonical, CompiledTree::Hyperplane);
        }
        // Shallow trees are padded to the fixed 8-level layout.
        let depth = max_depth.max(SMALL_DEPTH);
        let width = 1usize << depth;
        let mut features = vec![0u8; width];
        let mut keys = vec![order_key(f64::INFINITY); width];
        let mut leaves = vec![0.0; width];
        // (canonical node, heap slot)
        let mut stack = vec![(0usize, 1usize)];
        while let Some((i, h)) = stack.pop() {
            if tree.is_leaf(i) {
                leaves[padded_leaf_slot(h, width) - width] = tree.path_value[i];
            } else {
                features[h] = tree.features[i] as u8;
                keys[h] = order_key(tree.thresholds[i]);
                let left = tree.child[i] as usize;
                stack.push((left, 2 * h));
                stack.push((left + 1, 2 * h + 1));
            }
        }
        CompiledTree::Heap(HeapTree {
            depth,
            features,
            keys,
            leaves,
        })
    }
}

impl HeapTree {
    /// The fixed depth-8 layout's arrays (features, keys, leaves), if this tree uses it.
    pub(crate) fn fixed8(&self) -> Option<(&[u8; SMALL], &[u64; SMALL], &[f64; SMALL])> {
        if self.depth != SMALL_DEPTH {
            return None;
        }
        Some((
            self.features[..].try_into().ok()?,
            self.keys[..].try_into().ok()?,
            self.leaves[..].try_into().ok()?,
        ))
    }

    /// Adds this tree's path length of every row of `rows` (row keys padded to `S` values, a
    /// power of two, so `feature & (S − 1)` is provably in bounds) to `acc`.
    /// `rows.len()` is `acc.len()` rounded up to a multiple of [`LANES`].
    #[inline]
    fn accumulate<const S: usize>(&self, rows: &[[u64; S]], acc: &mut [f64]) {
        match self.fixed8() {
            Some((f, k, l)) => walk8::<S>(f, k, l, rows, acc),
            None => self.walk_masked::<S>(rows, acc),
        }
    }

    /// Depths 9 to 12: indices are masked by the power-of-two length (one instruction that
    /// proves them in bounds).
    fn walk_masked<const S: usize>(&self, rows: &[[u64; S]], acc: &mut [f64]) {
        let n = self.features.len();
        if n == 0 || self.keys.len() != n || self.leaves.len() != n {
            return; // cannot happen: built with equal power-of-two lengths
        }
        let mask = n - 1;
        let first_leaf = 1usize << self.depth;
        let (features, keys, leaves) = (&self.features[..n], &self.keys[..n], &self.leaves[..n]);
        for (s, row) in acc.iter_mut().zip(rows) {
            let mut h = 1usize;
            for _ in 0..self.depth {
                let i = h & mask;
                h = 2 * h + usize::from(keys[i] < row[features[i] as usize & (S - 1)]);
            }
            *s += leaves[h.wrapping_sub(first_leaf) & mask];
        }
    }
}

/// One level of the walk for a group of rows. Inlined eight times in [`walk8`]: after `k`
/// steps `h < 2^(k+1)`, which the compiler tracks, so the 256-slot arrays need no checks.
#[inline(always)]
fn step<const S: usize>(
    h: &mut [usize; LANES],
    features: &[u8; SMALL],
    keys: &[u64; SMALL],
    rows: &[[u64; S]; LANES],
) {
    for l in 0..LANES {
        let i = h[l];
        let x = rows[l][features[i] as usize & (S - 1)];
        h[l] = i + i + usize::from(keys[i] < x);
    }
}

/// The hot loop: trees of depth ≤ 8, [`LANES`] rows at a time.
#[inline]
fn walk8<const S: usize>(
    features: &[u8; SMALL],
    keys: &[u64; SMALL],
    leaves: &[f64; SMALL],
    rows: &[[u64; S]],
    acc: &mut [f64],
) {
    for (g, group) in rows.chunks_exact(LANES).enumerate() {
        let Ok(group) = <&[[u64; S]; LANES]>::try_from(group) else {
            continue;
        };
        // An opaque base pointer keeps row addresses to `base + feature·8 + constant`.
        let group = std::hint::black_box(group);
        let mut h = [1usize; LANES];
        step::<S>(&mut h, features, keys, group);
        step::<S>(&mut h, features, keys, group);
        step::<S>(&mut h, features, keys, group);
        step::<S>(&mut h, features, keys, group);
        step::<S>(&mut h, features, keys, group);
        step::<S>(&mut h, features, keys, group);
        step::<S>(&mut h, features, keys, group);
        step::<S>(&mut h, features, keys, group);
        let start = g * LANES;
        let a = acc.iter_mut().skip(start).take(LANES);
        for (s, &hl) in a.zip(&h) {
            *s += leaves[hl - SMALL];
        }
    }
}

/// Sums every tree's path length for each row of `rows` (row-major, `d` per row) into
/// `acc` (overwritten).
pub(crate) fn path_sums(
    trees: &[Tree],
    compiled: &[CompiledTree],
    d: usize,
    rows: &[f64],
    acc: &mut [f64],
) {
    match d.next_power_of_two() {
        1 => path_sums_padded::<1>(trees, compiled, d, rows, acc),
        2 => path_sums_padded::<2>(trees, compiled, d, rows, acc),
        4 => path_sums_padded::<4>(trees, compiled, d, rows, acc),
        8 => path_sums_padded::<8>(trees, compiled, d, rows, acc),
        16 => path_sums_padded::<16>(trees, compiled, d, rows, acc),
        32 => path_sums_padded::<32>(trees, compiled, d, rows, acc),
        64 => path_sums_padded::<64>(trees, compiled, d, rows, acc),
        _ => {
            acc.fill(0.0);
            for tree in trees {
                for (s, row) in acc.iter_mut().zip(rows.chunks_exact(d)) {
                    *s += tree.path_value[tree.leaf(row)];
                }
            }
        }
    }
}

/// [`path_sums`] for rows of at most `S` features: each block of rows is converted once to
/// keys padded to `S` values, then walks every tree (tree-outer, row-inner).
fn path_sums_padded<const S: usize>(
    trees: &[Tree],
    compiled: &[CompiledTree],
    d: usize,
    rows: &[f64],
    acc: &mut [f64],
) {
    let cap = BLOCK_ROWS.min(acc.len().next_multiple_of(LANES));
    let needs = |f: fn(&CompiledTree) -> bool| compiled.iter().any(f);
    // Classic heaps compare integer keys, extended ones compute with the values.
    let mut keys = vec![
        [0u64; S];
        if needs(|c| matches!(c, CompiledTree::Heap(_))) {
            cap
        } else {
            0
        }
    ];
    let mut vals = vec![
        [0.0f64; S];
        if needs(|c| matches!(c, CompiledTree::Hyperplane(_))) {
            cap
        } else {
            0
        }
    ];
    for (a, r) in acc.chunks_mut(BLOCK_ROWS).zip(rows.chunks(BLOCK_ROWS * d)) {
        // Whole groups of LANES rows; the tail of the last group holds stale rows whose
        // results are never added.
        let whole = a.len().next_multiple_of(LANES);
        let key_block = keys.get_mut(..whole).unwrap_or_default();
        for (k, row) in key_block.iter_mut().zip(r.chunks_exact(d)) {
            for (kv, &v) in k.iter_mut().zip(row) {
                *kv = order_key(v);
            }
        }
        let val_block = vals.get_mut(..whole).unwrap_or_default();
        for (p, row) in val_block.iter_mut().zip(r.chunks_exact(d)) {
            p[..d].copy_from_slice(row);
        }
        a.fill(0.0);
        for (tree, c) in trees.iter().zip(compiled) {
            match c {
                CompiledTree::Heap(h) => h.accumulate::<S>(key_block, a),
                CompiledTree::Hyperplane(h) => h.accumulate::<S>(val_block, a),
                CompiledTree::Canonical => {
                    for (s, row) in a.iter_mut().zip(r.chunks_exact(d)) {
                        *s += tree.path_value[tree.leaf(row)];
                    }
                }
            }
        }
    }
}

/// Scores `rows` (row-major, `d` per row) into `out`, in parallel over chunks of
/// [`CHUNK_ROWS`]. Rows holding a NaN or infinity get a NaN score; the first such value's
/// `(row, column)` is returned (row counted from 0 at the start of `rows`).
pub(crate) fn score_rows(
    trees: &[Tree],
    compiled: &[CompiledTree],
    ranked: Option<&RankedForest>,
    psi: usize,
    d: usize,
    rows: &[f64],
    out: &mut [f64],
) -> Option<(usize, usize)> {
    debug_assert_eq!(rows.len(), out.len() * d);
    out.par_chunks_mut(CHUNK_ROWS)
        .zip(rows.par_chunks(CHUNK_ROWS * d))
        .enumerate()
        .filter_map(|(k, (o, r))| {
            score_chunk(trees, compiled, ranked, psi, d, r, o)
                .map(|(row, col)| (k * CHUNK_ROWS + row, col))
        })
        .min()
}

/// Scores one chunk sequentially; see [`score_rows`].
pub(crate) fn score_chunk(
    trees: &[Tree],
    compiled: &[CompiledTree],
    ranked: Option<&RankedForest>,
    psi: usize,
    d: usize,
    rows: &[f64],
    out: &mut [f64],
) -> Option<(usize, usize)> {
    match ranked {
        Some(r) => r.path_sums(rows, out),
        None => path_sums(trees, compiled, d, rows, out),
    }
    let norm = path_norm(trees.len(), psi);
    let mut first_bad = None;
    for (i, (s, row)) in out.iter_mut().zip(rows.chunks_exact(d)).enumerate() {
        if let Some(col) = row.iter().position(|v| !v.is_finite()) {
            *s = f64::NAN;
            first_bad.get_or_insert((i, col));
        } else {
            *s = score_of_path_sum(*s, norm);
        }
    }
    first_bad
}

/// `n_trees · c(ψ)`: what a path sum is normalised by (computed once per chunk).
pub(crate) fn path_norm(n_trees: usize, psi: usize) -> f64 {
    n_trees as f64 * average_path_length(psi)
}

/// The score of a path sum over the trees, given [`path_norm`]: the one expression every
/// scorer uses.
#[inline]
pub(crate) fn score_of_path_sum(path_sum: f64, norm: f64) -> f64 {
    -(2f64.powf(-path_sum / norm))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::forest::grow::{GrowSpec, grow_tree};
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The compiled heap layout routes every row exactly like the canonical tree.
    #[test]
    fn heap_layout_matches_canonical_walk() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (d, psi, terms) in [
            (1, 256, 1),
            (6, 256, 1),
            (21, 256, 1),
            (3, 16, 1),
            (5, 1000, 1),
            (2, 2, 1),
            (70, 64, 1),
            (6, 256, 2),
            (4, 100, 3),
            (3, 1000, 2),
            (70, 64, 2),
        ] {
            let n = 3000;
            // Discrete-ish values so that ties with thresholds and constant nodes occur.
            let x = Array2::from_shape_fn((n, d), |_| f64::from(rng.gen_range(0..40u8)) / 8.0);
            let spec = GrowSpec {
                psi,
                features_per_tree: d,
                bootstrap: false,
                terms,
                depth_limit: depth_limit(psi),
            };
            let trees: Vec<Tree> = (0..20).map(|s| grow_tree(x.view(), &spec, s)).collect();
            let heap: Vec<CompiledTree> =
                trees.iter().map(|t| CompiledTree::compile(t, d)).collect();
            let canonical: Vec<CompiledTree> =
                trees.iter().map(|_| CompiledTree::Canonical).collect();
            if d <= MAX_STRIDE && psi <= 4096 {
                assert!(heap.iter().all(|c| match c {
                    CompiledTree::Heap(_) => terms == 1,
                    CompiledTree::Hyperplane(_) => terms > 1,
                    CompiledTree::Canonical => false,
                }));
            }
            let rows = x.as_slice().unwrap();
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            path_sums(&trees, &heap, d, rows, &mut a);
            path_sums(&trees, &canonical, d, rows, &mut b);
            assert_eq!(a, b, "d = {d}, ψ = {psi}, terms = {terms}");
            let expected: Vec<f64> = rows
                .chunks_exact(d)
                .map(|r| trees.iter().fold(0.0, |s, t| s + t.path_value[t.leaf(r)]))
                .collect();
            assert_eq!(a, expected);
        }
    }
}

#[cfg(test)]
mod key_tests {
    use super::order_key;

    #[test]
    fn order_key_preserves_float_order_and_zero_equality() {
        let v = [
            f64::NEG_INFINITY,
            f64::MIN,
            -1.5,
            -f64::MIN_POSITIVE,
            -5e-324,
            -0.0,
            0.0,
            5e-324,
            f64::MIN_POSITIVE,
            1.0,
            f64::MAX,
            f64::INFINITY,
        ];
        for &a in &v {
            for &b in &v {
                assert_eq!(a < b, order_key(a) < order_key(b), "{a} < {b}");
                assert_eq!(a == b, order_key(a) == order_key(b), "{a} == {b}");
            }
        }
    }
}

/// The heap slot, on the last level of a complete heap `width` wide, that a leaf at slot `h`
/// is padded down to: padding below a shallow leaf always goes left, so it is the leftmost
/// descendant of `h`.
pub(crate) fn padded_leaf_slot(mut h: usize, width: usize) -> usize {
    while h < width {
        h *= 2;
    }
    h
}
