//! The AVX-512 kernels of the rank-compressed forest ([`ranked`](super::ranked)): the tree
//! walk and the conversion of row values to ranks.
//!
//! This is the only module of the crate allowed `unsafe` (the workspace denies it), for two
//! reasons: loading or storing a 512-bit register takes a raw pointer, and calling a
//! `#[target_feature]` function is unsafe until the CPU has been checked. Every pointer here
//! comes from a reference to a 64-byte [`Lanes`] or [`Block`](super::ranked::Block)
//! (unaligned loads and stores), so each access is in bounds by type; each call into a
//! kernel is guarded by runtime feature detection ([`available`]). Everything else (permutes, compares, blends) is safe
//! inside a `#[target_feature]` function.
//!
//! The walk, for one tree and 32 rows (one `u16` per row in each register):
//! - The tree's 256 slot ranks and 256 slot features sit in 8 + 8 registers; a level's
//!   lookup is one `vpermi2w` (a 64-entry table lookup) for levels 2 to 6, two and a blend for
//!   level 7. Levels 0 and 1 have one or two candidate nodes and are blends of constants.
//! - A row's value for the node's feature is picked from the group's column registers by the
//!   same kind of permute: index `feature·32 + lane`, one `vpermi2w` per pair of features,
//!   then blends on the feature's higher bits.
//! - `h = 2h + (rank[h] < x)` as an add and a masked add.
//! - One group's walk is a chain of dependent steps (~15 cycles a level), so several groups
//!   are walked side by side, level by level.
//!
//! No gathers: on the AMD Zen 4 this was tuned on, a 64-bit 8-lane gather costs ~15× a
//! permute.

#![allow(unsafe_code)]

use crate::forest::ranked::{Cuts, Group, Lanes, RankedTree, fill_ranks_portable, walk_portable};

/// Whether this CPU runs the kernels (AVX-512 F and BW, and POPCNT).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Walks `tree` for every group of 32 rows (`d` features each) and writes each row's final
/// heap slot (256..512) to `out`.
pub(crate) fn walk(tree: &RankedTree, groups: &[Group], d: usize, out: &mut [Lanes]) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `available()` checked AVX-512 F and BW, the kernels' only target features.
        unsafe {
            match d {
                0 | 1 => avx512::walk::<0>(tree, groups, out),
                2 => avx512::walk::<1>(tree, groups, out),
                3 | 4 => avx512::walk::<2>(tree, groups, out),
                5 | 6 => avx512::walk::<3>(tree, groups, out),
                _ => avx512::walk::<4>(tree, groups, out),
            }
        }
        return;
    }
    let _ = d;
    walk_portable(tree, groups, out);
}

/// Converts row-major `rows` (`d` values each) to ranks, one [`Group`] per 32 rows.
pub(crate) fn fill_ranks(cuts: &[Cuts], d: usize, rows: &[f64], groups: &mut [Group]) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `available()` checked AVX-512 F and BW and POPCNT, the kernel's features.
        unsafe { avx512::fill_ranks(cuts, d, rows, groups) };
        return;
    }
    fill_ranks_portable(cuts, d, rows, groups);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use crate::forest::ranked::{Block, Cuts, GROUP, Group, Lanes, RankedTree};
    use crate::forest::score::order_key;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn load(l: &Lanes) -> __m512i {
        // SAFETY: `l` is a valid reference to 64 bytes; unaligned load, no alignment needed.
        unsafe { _mm512_loadu_si512((l as *const Lanes).cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn store(l: &mut Lanes, v: __m512i) {
        // SAFETY: `l` is a valid, exclusive reference to 64 bytes.
        unsafe { _mm512_storeu_si512((l as *mut Lanes).cast(), v) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn load_block(b: &Block) -> __m512i {
        // SAFETY: `b` is a valid reference to 64 bytes; unaligned load, no alignment needed.
        unsafe { _mm512_loadu_si512((b as *const Block).cast()) }
    }

    /// See [`super::fill_ranks`]. Per group and feature, the 32 rows' searches run level by
    /// level in lockstep ([`Cuts::rank`] with one 8-wide compare per level), so they are 32
    /// independent chains instead of one long dependent one.
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    pub(super) fn fill_ranks(cuts: &[Cuts], d: usize, rows: &[f64], groups: &mut [Group]) {
        for (g, chunk) in groups.iter_mut().zip(rows.chunks(GROUP * d)) {
            for (f, (column, cuts)) in g.iter_mut().zip(cuts).enumerate() {
                let mut keys = [0u64; GROUP];
                for (k, row) in keys.iter_mut().zip(chunk.chunks_exact(d)) {
                    *k = row.get(f).map_or(0, |&v| order_key(v));
                }
                let mut b = [0usize; GROUP];
                for level in cuts.levels.iter().rev() {
                    for (b, &key) in b.iter_mut().zip(&keys) {
                        // `*b` is always a block of this level (see `Cuts`); `get` keeps that
                        // claim out of the memory-safety argument.
                        let below = level.get(*b).map_or(0, |blk| {
                            _mm512_cmplt_epu64_mask(load_block(blk), _mm512_set1_epi64(key as i64))
                        });
                        *b = 8 * *b + below.count_ones() as usize;
                    }
                }
                for (r, &b) in column.0.iter_mut().zip(&b) {
                    *r = b as u16;
                }
            }
        }
    }

    /// The row values for each lane's feature, from the group's column registers `x`.
    /// `ix = feature·32 + lane`; `P` pairs of features (0: a single feature, no select).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn select<const P: usize>(ix: __m512i, x: &[__m512i; 8]) -> __m512i {
        let pair = |k: usize| _mm512_permutex2var_epi16(x[2 * k], ix, x[2 * k + 1]);
        let bit1 = _mm512_test_epi16_mask(ix, _mm512_set1_epi16(64));
        let bit2 = _mm512_test_epi16_mask(ix, _mm512_set1_epi16(128));
        match P {
            0 => x[0],
            1 => pair(0),
            2 => _mm512_mask_blend_epi16(bit1, pair(0), pair(1)),
            3 => {
                let low = _mm512_mask_blend_epi16(bit1, pair(0), pair(1));
                _mm512_mask_blend_epi16(bit2, low, pair(2))
            }
            _ => {
                let low = _mm512_mask_blend_epi16(bit1, pair(0), pair(1));
                let high = _mm512_mask_blend_epi16(bit1, pair(2), pair(3));
                _mm512_mask_blend_epi16(bit2, low, high)
            }
        }
    }

    /// One level below level 1: `rank`/`feat` are the level's slot tables (already resolved
    /// to one register each by the caller's permute).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn step<const P: usize>(h: __m512i, rank: __m512i, feat: __m512i, x: &[__m512i; 8]) -> __m512i {
        let lane = _mm512_set_epi16(
            31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10,
            9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
        );
        let v = select::<P>(_mm512_or_si512(feat, lane), x);
        let right = _mm512_cmplt_epu16_mask(rank, v);
        let twice = _mm512_add_epi16(h, h);
        _mm512_mask_add_epi16(twice, right, twice, _mm512_set1_epi16(1))
    }

    /// A tree's tables in registers, and its first three nodes as constants.
    struct Tables {
        ranks: [__m512i; 8],
        features: [__m512i; 8],
        top_ranks: [__m512i; 3],
        top_features: [usize; 3],
    }

    /// Groups walked in one interleaved pass: the walk of one group is a long dependency
    /// chain (~15 cycles a level), so several chains are kept in flight side by side.
    const INTERLEAVE: usize = 6;

    /// See [`super::walk`]; `P` = pairs of features (0 for one feature).
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn walk<const P: usize>(tree: &RankedTree, groups: &[Group], out: &mut [Lanes]) {
        let t = Tables {
            ranks: [0, 1, 2, 3, 4, 5, 6, 7].map(|k| load(&tree.ranks[k])),
            features: [0, 1, 2, 3, 4, 5, 6, 7].map(|k| load(&tree.feature_x32[k])),
            top_ranks: [1, 2, 3].map(|h| _mm512_set1_epi16(tree.rank(h) as i16)),
            top_features: [1, 2, 3].map(|h| tree.feature(h)),
        };
        let mut gs = groups.chunks_exact(INTERLEAVE);
        let mut os = out.chunks_exact_mut(INTERLEAVE);
        for (g, o) in (&mut gs).zip(&mut os) {
            let h = walk_groups::<P, INTERLEAVE>(&t, g);
            for (o, h) in o.iter_mut().zip(h) {
                store(o, h);
            }
        }
        for (g, o) in gs.remainder().iter().zip(os.into_remainder()) {
            let [h] = walk_groups::<P, 1>(&t, std::slice::from_ref(g));
            store(o, h);
        }
    }

    /// Walks `G` groups (`groups.len() ≥ G`) through the tree, interleaved level by level;
    /// returns each row's final slot.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn walk_groups<const P: usize, const G: usize>(t: &Tables, groups: &[Group]) -> [__m512i; G] {
        let one = _mm512_set1_epi16(1);
        let mut x = [[_mm512_setzero_si512(); 8]; G];
        let mut h = [one; G];
        for ((x, h), g) in x.iter_mut().zip(&mut h).zip(groups) {
            for (k, xk) in x
                .iter_mut()
                .enumerate()
                .take(if P == 0 { 1 } else { 2 * P })
            {
                *xk = load(&g[k]);
            }
            // Levels 0 and 1: nodes 1, 2, 3. Features are < d ≤ 8 by construction; `% 8`
            // only spares a bounds check.
            let column = |k: usize| load(&g[t.top_features[k] % 8]);
            let [r1, r2, r3] = t.top_ranks;
            let right0 = _mm512_cmplt_epu16_mask(r1, column(0));
            let v1 = _mm512_mask_blend_epi16(right0, column(1), column(2));
            let r12 = _mm512_mask_blend_epi16(right0, r2, r3);
            let right1 = _mm512_cmplt_epu16_mask(r12, v1);
            let two = _mm512_set1_epi16(2);
            let h1 = _mm512_mask_add_epi16(two, right0, two, one);
            let twice = _mm512_add_epi16(h1, h1);
            *h = _mm512_mask_add_epi16(twice, right1, twice, one);
        }
        let (r, f) = (&t.ranks, &t.features);
        // Levels 2 to 5: slots 4..64, tables 0 and 1 (the permute reads h's low 6 bits).
        for _ in 2..6 {
            for (h, x) in h.iter_mut().zip(&x) {
                let rk = _mm512_permutex2var_epi16(r[0], *h, r[1]);
                let ft = _mm512_permutex2var_epi16(f[0], *h, f[1]);
                *h = step::<P>(*h, rk, ft, x);
            }
        }
        // Level 6: slots 64..128, tables 2 and 3.
        for (h, x) in h.iter_mut().zip(&x) {
            let rk = _mm512_permutex2var_epi16(r[2], *h, r[3]);
            let ft = _mm512_permutex2var_epi16(f[2], *h, f[3]);
            *h = step::<P>(*h, rk, ft, x);
        }
        // Level 7: slots 128..256, tables 4 to 7, split on bit 6 of h.
        for (h, x) in h.iter_mut().zip(&x) {
            let upper = _mm512_test_epi16_mask(*h, _mm512_set1_epi16(64));
            let pick = |a: &[__m512i; 8]| {
                _mm512_mask_blend_epi16(
                    upper,
                    _mm512_permutex2var_epi16(a[4], *h, a[5]),
                    _mm512_permutex2var_epi16(a[6], *h, a[7]),
                )
            };
            *h = step::<P>(*h, pick(r), pick(f), x);
        }
        h
    }
}
