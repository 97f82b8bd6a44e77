//! Rank-compressed form of a classic forest, walked 32 rows at a time by the AVX-512 kernel
//! of [`simd`](super::simd).
//!
//! Why ranks: the SIMD walk keeps a whole depth-8 tree in registers and looks nodes up with
//! register permutes (gathers are several times slower on the CPUs we measured). 256 slots
//! fit in 8 registers only as 16-bit values, so thresholds and row values are replaced by
//! ranks. For feature `f`, `cuts[f]` holds every distinct [`order_key`] that any slot of any
//! tree compares feature `f` against (padding slots included), sorted. A node stores the
//! index `i` of its key `k` in `cuts[f]`; a row value `v` becomes
//! `r(v) = #{c ∈ cuts[f] : c < order_key(v)}`. Then `k < order_key(v) ⇔ i < r(v)` for every
//! key, so the rank walk takes exactly the scalar walk's path for every row, NaN or not, and
//! the path sums (added per row in tree order) are bitwise identical.
//!
//! Limits (else the forest is scored by the scalar path): classic trees compiled to the fixed
//! depth-8 heap (ψ ≤ 256), at most [`MAX_FEATURES`] features, at most 65,535 distinct keys
//! per feature (so ranks fit in `u16`), and a CPU with AVX-512 F + BW.

use crate::forest::score::{CompiledTree, order_key};
use crate::forest::simd;

/// Rows walked together: one 512-bit register of `u16`.
pub(crate) const GROUP: usize = 32;

/// Widest row the kernel selects values from (four register pairs).
pub(crate) const MAX_FEATURES: usize = 8;

/// Rows converted to ranks at a time; each tree walks all of them before the next tree.
const BLOCK_ROWS: usize = 1024;

/// 32 `u16`, aligned to a cache line: one register's worth.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub(crate) struct Lanes(pub(crate) [u16; GROUP]);

/// The ranks of 32 rows, one [`Lanes`] per feature (column-major; unused features are 0).
pub(crate) type Group = [Lanes; MAX_FEATURES];

/// One depth-8 tree: per heap slot (1-based, `256 = 8 × 32` slots), the rank of its split key
/// and its feature shifted left by 5 (the form the kernel's value select wants), plus the
/// leaf values of the 256 slots of the last level.
#[derive(Clone, Debug)]
pub(crate) struct RankedTree {
    pub(crate) ranks: [Lanes; 8],
    pub(crate) feature_x32: [Lanes; 8],
    pub(crate) leaves: [f64; 256],
}

impl RankedTree {
    /// Split feature of heap slot `h` (< 256).
    pub(crate) fn feature(&self, h: usize) -> usize {
        usize::from(self.feature_x32[(h / GROUP) % 8].0[h % GROUP] >> 5)
    }

    /// Rank of the split key of heap slot `h` (< 256).
    pub(crate) fn rank(&self, h: usize) -> u16 {
        self.ranks[(h / GROUP) % 8].0[h % GROUP]
    }
}

/// 8 keys, one cache line: a node of [`Cuts`].
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Block(pub(crate) [u64; 8]);

/// The sorted distinct split keys of one feature, as a static B+ tree of 8-key nodes so
/// that a row value's rank takes one 8-wide compare per level (≤ 6 levels) instead of ~13
/// dependent binary-search steps.
///
/// `levels[0]` is the sorted keys followed by at least one `u64::MAX` and padded with it to
/// whole blocks; `levels[k + 1]` holds the last key of each block of `levels[k]`, padded the
/// same way; the last level is one block. Each level's last real key is `u64::MAX`, which no
/// key is below, so from block `b` the search goes to block `8b + #{keys below}` of the next
/// level, which exists; on level 0 that number is the rank.
#[derive(Clone, Debug)]
pub(crate) struct Cuts {
    pub(crate) levels: Vec<Vec<Block>>,
}

impl Cuts {
    fn new(sorted: &[u64]) -> Self {
        let blocks = |keys: &[u64]| -> Vec<Block> {
            keys.chunks(8)
                .map(|c| {
                    let mut b = Block([u64::MAX; 8]);
                    b.0[..c.len()].copy_from_slice(c);
                    b
                })
                .collect()
        };
        let mut keys = sorted.to_vec();
        keys.push(u64::MAX);
        let mut levels = vec![blocks(&keys)];
        while let Some(last) = levels.last().filter(|l| l.len() > 1) {
            let maxima: Vec<u64> = last.iter().map(|b| b.0[7]).collect();
            levels.push(blocks(&maxima));
        }
        Cuts { levels }
    }

    /// Position of `key` among the sorted keys (it must be one of them).
    fn position(&self, key: u64) -> usize {
        let blocks = &self.levels[0];
        let b = blocks.partition_point(|blk| blk.0[7] < key);
        8 * b
            + blocks
                .get(b)
                .map_or(0, |blk| blk.0.iter().filter(|&&c| c < key).count())
    }

    /// `#{keys below key}`, one row value's rank (portable version of the SIMD search).
    pub(crate) fn rank(&self, key: u64) -> u16 {
        let mut b = 0usize;
        for level in self.levels.iter().rev() {
            let below = level
                .get(b)
                .map_or(0, |blk| blk.0.iter().filter(|&&c| c < key).count());
            b = 8 * b + below;
        }
        u16::try_from(b).unwrap_or(u16::MAX)
    }
}

/// A classic forest in rank form; see the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct RankedForest {
    d: usize,
    /// Per feature, the sorted distinct split keys (see the module documentation).
    cuts: Vec<Cuts>,
    trees: Vec<RankedTree>,
}

impl RankedForest {
    /// The rank form of `compiled`, or `None` when the forest or the CPU is outside the limits
    /// listed in the module documentation.
    pub(crate) fn build(compiled: &[CompiledTree], d: usize) -> Option<Self> {
        if !simd::available() || d == 0 || d > MAX_FEATURES || compiled.is_empty() {
            return None;
        }
        let heaps: Vec<_> = compiled
            .iter()
            .map(|c| match c {
                CompiledTree::Heap(h) => h.fixed8(),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let mut cuts = vec![Vec::new(); d];
        for (features, keys, _) in &heaps {
            for h in 1..256 {
                cuts.get_mut(usize::from(features[h]))?.push(keys[h]);
            }
        }
        for c in &mut cuts {
            c.sort_unstable();
            c.dedup();
            // Ranks (≤ len) and positions (< len) must fit in u16.
            if c.len() >= usize::from(u16::MAX) {
                return None;
            }
        }
        let cuts: Vec<Cuts> = cuts.iter().map(|c| Cuts::new(c)).collect();
        let trees = heaps
            .iter()
            .map(|(features, keys, leaves)| {
                let mut t = RankedTree {
                    ranks: [Lanes::default(); 8],
                    feature_x32: [Lanes::default(); 8],
                    leaves: **leaves,
                };
                for h in 1..256 {
                    let f = usize::from(features[h]);
                    // Present by construction; `len ≤ u16::MAX` was checked above.
                    let rank = cuts[f].position(keys[h]);
                    t.ranks[h / GROUP].0[h % GROUP] = u16::try_from(rank).ok()?;
                    t.feature_x32[h / GROUP].0[h % GROUP] = u16::from(features[h]) << 5;
                }
                Some(t)
            })
            .collect::<Option<_>>()?;
        Some(RankedForest { d, cuts, trees })
    }

    /// Sums every tree's path length for each row of `rows` (row-major, `d` per row) into
    /// `acc` (overwritten), in tree order: the same sums as the scalar `path_sums`.
    pub(crate) fn path_sums(&self, rows: &[f64], acc: &mut [f64]) {
        let d = self.d;
        let cap = BLOCK_ROWS.min(acc.len()).div_ceil(GROUP);
        let mut groups = vec![[Lanes::default(); MAX_FEATURES]; cap];
        let mut slots = vec![Lanes::default(); cap];
        for (a, r) in acc.chunks_mut(BLOCK_ROWS).zip(rows.chunks(BLOCK_ROWS * d)) {
            let n = a.len().div_ceil(GROUP);
            let (groups, slots) = (&mut groups[..n], &mut slots[..n]);
            self.fill_ranks(r, groups);
            a.fill(0.0);
            for tree in &self.trees {
                simd::walk(tree, groups, d, slots);
                // The tail of the last group holds stale rows: `zip` stops at `a`'s end.
                for (a, s) in a.chunks_mut(GROUP).zip(&*slots) {
                    for (a, &h) in a.iter_mut().zip(&s.0) {
                        *a += tree.leaves[usize::from(h) % 256];
                    }
                }
            }
        }
    }

    /// Converts rows to ranks, column-major per group of 32.
    fn fill_ranks(&self, rows: &[f64], groups: &mut [Group]) {
        simd::fill_ranks(&self.cuts, self.d, rows, groups);
    }
}

/// Portable twin of [`simd::fill_ranks`].
pub(crate) fn fill_ranks_portable(cuts: &[Cuts], d: usize, rows: &[f64], groups: &mut [Group]) {
    for (g, chunk) in groups.iter_mut().zip(rows.chunks(GROUP * d)) {
        for (lane, row) in chunk.chunks_exact(d).enumerate() {
            for ((column, cuts), &v) in g.iter_mut().zip(cuts).zip(row) {
                column.0[lane] = cuts.rank(order_key(v));
            }
        }
    }
}

/// Portable twin of the SIMD kernel (same ranks, one row at a time): used where AVX-512 is
/// missing, and by the unit tests to check the rank transform itself.
pub(crate) fn walk_portable(tree: &RankedTree, groups: &[Group], out: &mut [Lanes]) {
    for (g, o) in groups.iter().zip(out) {
        for lane in 0..GROUP {
            let mut h = 1usize;
            for _ in 0..8 {
                let x = g[tree.feature(h) % MAX_FEATURES].0[lane];
                h = 2 * h + usize::from(tree.rank(h) < x);
            }
            o.0[lane] = h as u16;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{Cuts, RankedForest};
    use crate::forest::grow::{GrowSpec, grow_tree};
    use crate::forest::score::{CompiledTree, depth_limit, path_sums};
    use crate::forest::tree::Tree;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn cuts_rank_counts_smaller_keys() {
        for n in [0u64, 1, 7, 8, 9, 63, 64, 65, 100, 600] {
            let sorted: Vec<u64> = (0..n).map(|i| 10 * i + 5).collect();
            let cuts = Cuts::new(&sorted);
            for key in (0..(10 * n + 20)).chain([u64::MAX - 1, u64::MAX]) {
                let expected = sorted.iter().filter(|&&c| c < key).count();
                assert_eq!(usize::from(cuts.rank(key)), expected, "n {n} key {key}");
            }
            for (i, &k) in sorted.iter().enumerate() {
                assert_eq!(cuts.position(k), i);
            }
        }
    }

    /// Rows equal to thresholds (the one case where `<` and `<=` differ), signed zeros and
    /// NaN: the rank walk still sums exactly what the scalar heap walk sums.
    #[test]
    fn rank_walk_matches_scalar_walk_on_thresholds() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (d, psi) in [(1, 256), (3, 256), (6, 100), (8, 16)] {
            let x = Array2::from_shape_fn((2000, d), |_| f64::from(rng.gen_range(0..30u8)) / 4.0);
            let spec = GrowSpec {
                psi,
                features_per_tree: d,
                bootstrap: false,
                terms: 1,
                depth_limit: depth_limit(psi),
            };
            let trees: Vec<Tree> = (0..30).map(|s| grow_tree(x.view(), &spec, s)).collect();
            let compiled: Vec<CompiledTree> =
                trees.iter().map(|t| CompiledTree::compile(t, d)).collect();
            let Some(ranked) = RankedForest::build(&compiled, d) else {
                return; // no AVX-512 here: nothing to compare
            };
            let mut values: Vec<f64> = trees.iter().flat_map(|t| t.thresholds.clone()).collect();
            values.extend([0.0, -0.0, f64::NAN, f64::INFINITY, -1.0, 1e9]);
            let n = 3001;
            let rows: Vec<f64> = (0..n * d)
                .map(|_| values[rng.gen_range(0..values.len())])
                .collect();
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            ranked.path_sums(&rows, &mut a);
            path_sums(&trees, &compiled, d, &rows, &mut b);
            let bits = |v: &[f64]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "d {d} ψ {psi}");
        }
    }
}
