//! Path lengths, the `c(n)` correction and the fast, chunked scorer.
//!
//! Speed comes from three choices:
//! - Classic trees are compiled into a complete binary tree in heap order ("padded": a leaf
//!   above the deepest level continues with always-left nodes down to it). A walk is then a
//!   fixed number of steps `i = 2i + 1 + (x[f] > t)` with no data-dependent branch, and the
//!   leaf holds `depth + c(n)` precomputed, so scoring is a walk plus one add.
//! - Rows are processed in chunks (parallel over chunks with rayon), and inside a chunk in
//!   small blocks, tree-outer / row-inner: one tree (a few KiB) stays in L1 while a block of
//!   rows walks it, several rows interleaved so their independent walks overlap in the CPU.
//!   Memory is bounded by the chunk, never by rows × trees.
//! - Each row's sum runs over the trees in their fixed order, independent of the chunk it
//!   falls in, so scores are bitwise identical whatever the thread count or chunk size.

use rayon::prelude::*;

use crate::forest::tree::Tree;

/// Euler–Mascheroni constant γ (numpy's `np.euler_gamma`).
pub const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Rows per rayon task. Bounded memory: the output chunk doubles as the accumulator.
pub(crate) const CHUNK_ROWS: usize = 4096;

/// Rows that walk one tree before the next tree is taken (keeps rows + tree in L1).
const BLOCK_ROWS: usize = 256;

/// Rows walked together, interleaved, through one tree.
const LANES: usize = 8;

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
    -(2f64.powf(-path_sum / (n_trees as f64 * average_path_length(psi))))
}

/// A classic tree as a complete binary tree in 1-based heap order: slot 1 is the root, the
/// children of slot `h` are `2h` (left) and `2h + 1` (right), slot 0 is unused. A walk is
/// `h = 2h + (t[h] < x[f[h]])` repeated `depth` times, then `leaves[h − 2^depth]`.
/// Array lengths are powers of two so that masking the index proves it in bounds (no bounds
/// check in the loop) without `unsafe`.
#[derive(Clone, Debug)]
pub(crate) struct HeapTree {
    depth: u32,
    /// Split feature per slot (`u8`: this layout is only used for ≤ [`MAX_STRIDE`] features).
    features: Vec<u8>,
    /// Split threshold per slot; padding slots hold +∞, which sends every row left.
    thresholds: Vec<f64>,
    /// `2^depth` leaf values (`depth + c(n)` of the leaf that owns the slot).
    leaves: Vec<f64>,
}

/// Widest row (features, rounded up to a power of two) scored with the heap layout.
const MAX_STRIDE: usize = 64;

/// A tree in the form the scorer walks.
#[derive(Clone, Debug)]
pub(crate) enum CompiledTree {
    /// Classic tree of depth ≤ 12 over ≤ 64 features.
    Heap(HeapTree),
    /// Extended, very deep or very wide tree: walk the canonical arrays.
    Canonical,
}

impl CompiledTree {
    pub(crate) fn compile(tree: &Tree, n_features: usize) -> Self {
        let depth = tree.max_depth();
        if tree.terms != 1 || depth > MAX_HEAP_DEPTH || n_features > MAX_STRIDE {
            return CompiledTree::Canonical;
        }
        let width = 1usize << depth;
        // At least SMALL slots, so every tree of depth ≤ 8 gets the fixed-size fast path.
        let len = width.max(SMALL);
        let mut features = vec![0u8; len];
        let mut thresholds = vec![f64::INFINITY; len];
        let mut leaves = vec![0.0; len];
        // (canonical node, heap slot)
        let mut stack = vec![(0usize, 1usize)];
        while let Some((i, h)) = stack.pop() {
            if tree.is_leaf(i) {
                // Padding below a shallow leaf always goes left: its slot is the leftmost
                // descendant on the last level.
                let mut slot = h;
                while slot < width {
                    slot *= 2;
                }
                leaves[slot - width] = tree.path_value[i];
            } else {
                features[h] = tree.features[i] as u8;
                thresholds[h] = tree.thresholds[i];
                let left = tree.child[i] as usize;
                stack.push((left, 2 * h));
                stack.push((left + 1, 2 * h + 1));
            }
        }
        CompiledTree::Heap(HeapTree {
            depth,
            features,
            thresholds,
            leaves,
        })
    }
}

impl HeapTree {
    /// Adds this tree's path length of every row to `acc`. Rows are padded to `S` values
    /// (a power of two), so `feature & (S − 1)` is provably in bounds.
    #[inline]
    fn accumulate<const S: usize>(&self, rows: &[[f64; S]], acc: &mut [f64]) {
        let small = (
            <&[u8; SMALL]>::try_from(&self.features[..]),
            <&[f64; SMALL]>::try_from(&self.thresholds[..]),
            <&[f64; SMALL]>::try_from(&self.leaves[..]),
        );
        match small {
            (Ok(f), Ok(t), Ok(l)) if self.depth <= SMALL_DEPTH => {
                walk_small::<S>(self.depth, f, t, l, rows, acc)
            }
            _ => self.walk_masked::<S>(rows, acc),
        }
    }

    /// Any depth ≤ [`MAX_HEAP_DEPTH`]: indices are masked by the power-of-two length.
    fn walk_masked<const S: usize>(&self, rows: &[[f64; S]], acc: &mut [f64]) {
        let n = self.features.len();
        if n == 0 || self.thresholds.len() != n || self.leaves.len() != n {
            return; // cannot happen: built with equal power-of-two lengths
        }
        let mask = n - 1;
        let first_leaf = 1usize << self.depth;
        let (features, thresholds, leaves) = (
            &self.features[..n],
            &self.thresholds[..n],
            &self.leaves[..n],
        );
        for (s, row) in acc.iter_mut().zip(rows) {
            let mut h = 1usize;
            for _ in 0..self.depth {
                let i = h & mask;
                let x = row[features[i] as usize & (S - 1)];
                h = 2 * h + usize::from(!(x <= thresholds[i]));
            }
            *s += leaves[h.wrapping_sub(first_leaf) & mask];
        }
    }
}

/// Slots of the fixed-size layout used for trees of depth ≤ 8 (ψ ≤ 256, the common case):
/// indexing a `[_; 256]` with a `u8` needs neither a bounds check nor a mask.
const SMALL: usize = 256;
const SMALL_DEPTH: u32 = 8;

/// The hot loop: `LANES` rows walk one tree interleaved, so their independent dependency
/// chains (load feature → load value → compare → next slot) overlap in the CPU.
/// `!(x <= t)` goes right: `x > t` for every finite `x` (scikit-learn's `x <= t` goes left);
/// a NaN goes right too, harmlessly, since rows holding one get a NaN score anyway.
#[inline]
fn walk_small<const S: usize>(
    depth: u32,
    features: &[u8; SMALL],
    thresholds: &[f64; SMALL],
    leaves: &[f64; SMALL],
    rows: &[[f64; S]],
    acc: &mut [f64],
) {
    let first_leaf = 1usize << depth;
    let mut blocks = acc.chunks_exact_mut(LANES);
    let mut row_blocks = rows.chunks_exact(LANES);
    for (a, r) in (&mut blocks).zip(&mut row_blocks) {
        let mut h = [1usize; LANES];
        for _ in 0..depth {
            for l in 0..LANES {
                // h < 2^depth ≤ 256 before each step: the cast only informs the compiler.
                let i = h[l] as u8 as usize;
                let x = r[l][features[i] as usize & (S - 1)];
                h[l] = 2 * h[l] + usize::from(!(x <= thresholds[i]));
            }
        }
        for l in 0..LANES {
            a[l] += leaves[h[l].wrapping_sub(first_leaf) as u8 as usize];
        }
    }
    for (s, row) in blocks
        .into_remainder()
        .iter_mut()
        .zip(row_blocks.remainder())
    {
        let mut h = 1usize;
        for _ in 0..depth {
            let i = h as u8 as usize;
            h = 2 * h + usize::from(!(row[features[i] as usize & (S - 1)] <= thresholds[i]));
        }
        *s += leaves[h.wrapping_sub(first_leaf) as u8 as usize];
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
            for (tree, _) in trees.iter().zip(compiled) {
                for (s, row) in acc.iter_mut().zip(rows.chunks_exact(d)) {
                    *s += tree.path_value[tree.leaf(row)];
                }
            }
        }
    }
}

/// [`path_sums`] for rows of at most `S` features: a block of rows is copied into rows of
/// exactly `S` values, then walks every tree (tree-outer, row-inner).
fn path_sums_padded<const S: usize>(
    trees: &[Tree],
    compiled: &[CompiledTree],
    d: usize,
    rows: &[f64],
    acc: &mut [f64],
) {
    let mut padded = vec![[0.0f64; S]; BLOCK_ROWS.min(acc.len())];
    for (a, r) in acc.chunks_mut(BLOCK_ROWS).zip(rows.chunks(BLOCK_ROWS * d)) {
        let block = &mut padded[..a.len()];
        for (p, row) in block.iter_mut().zip(r.chunks_exact(d)) {
            p[..d].copy_from_slice(row);
        }
        a.fill(0.0);
        for (tree, c) in trees.iter().zip(compiled) {
            match c {
                CompiledTree::Heap(h) => h.accumulate::<S>(block, a),
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
            score_chunk(trees, compiled, psi, d, r, o).map(|(row, col)| (k * CHUNK_ROWS + row, col))
        })
        .min()
}

/// Scores one chunk sequentially; see [`score_rows`].
pub(crate) fn score_chunk(
    trees: &[Tree],
    compiled: &[CompiledTree],
    psi: usize,
    d: usize,
    rows: &[f64],
    out: &mut [f64],
) -> Option<(usize, usize)> {
    path_sums(trees, compiled, d, rows, out);
    // Same expression as `score_from_path_sum`, with c(ψ) computed once per chunk.
    let norm = trees.len() as f64 * average_path_length(psi);
    let mut first_bad = None;
    for (i, (s, row)) in out.iter_mut().zip(rows.chunks_exact(d)).enumerate() {
        if let Some(col) = row.iter().position(|v| !v.is_finite()) {
            *s = f64::NAN;
            first_bad.get_or_insert((i, col));
        } else {
            *s = -(2f64.powf(-*s / norm));
        }
    }
    first_bad
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
        for (d, psi) in [
            (1, 256),
            (6, 256),
            (21, 256),
            (3, 16),
            (5, 1000),
            (2, 2),
            (70, 64),
        ] {
            let n = 3000;
            // Discrete-ish values so that ties with thresholds and constant nodes occur.
            let x = Array2::from_shape_fn((n, d), |_| f64::from(rng.gen_range(0..40u8)) / 8.0);
            let spec = GrowSpec {
                psi,
                features_per_tree: d,
                bootstrap: false,
                terms: 1,
                depth_limit: depth_limit(psi),
            };
            let trees: Vec<Tree> = (0..20).map(|s| grow_tree(x.view(), &spec, s)).collect();
            let heap: Vec<CompiledTree> =
                trees.iter().map(|t| CompiledTree::compile(t, d)).collect();
            let canonical: Vec<CompiledTree> =
                trees.iter().map(|_| CompiledTree::Canonical).collect();
            if d <= MAX_STRIDE && psi <= 4096 {
                assert!(heap.iter().all(|c| matches!(c, CompiledTree::Heap(_))));
            }
            let rows = x.as_slice().unwrap();
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            path_sums(&trees, &heap, d, rows, &mut a);
            path_sums(&trees, &canonical, d, rows, &mut b);
            assert_eq!(a, b, "d = {d}, ψ = {psi}");
            let expected: Vec<f64> = rows
                .chunks_exact(d)
                .map(|r| trees.iter().fold(0.0, |s, t| s + t.path_value[t.leaf(r)]))
                .collect();
            assert_eq!(a, expected);
        }
    }
}
