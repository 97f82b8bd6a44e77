//! Growing one isolation tree from a fresh subsample.
//!
//! Fit cost must not grow with the number of training rows (scikit-learn's does): a tree
//! touches only the ψ rows it samples. Sampling without replacement uses
//! `rand::seq::index::sample`, which needs O(ψ) work for large `n`; the sampled rows are then
//! copied into a small column-major buffer so the node scans below stay in cache.

use ndarray::ArrayView2;
use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::forest::extended::draw_hyperplane;
use crate::forest::tree::{LEAF, Tree, TreeLimits};

/// Everything a tree needs to know besides the data and its seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GrowSpec {
    /// ψ: rows drawn per tree.
    pub(crate) psi: usize,
    /// Features drawn per tree (without replacement; all when equal to the column count).
    pub(crate) features_per_tree: usize,
    pub(crate) bootstrap: bool,
    /// Terms per split: 1 classic, `extension_level + 1` extended.
    pub(crate) terms: usize,
    pub(crate) depth_limit: usize,
}

/// The rows of one tree, column-major over the tree's own features.
struct Sample {
    /// Global feature index of each local column.
    features: Vec<u32>,
    /// `values[j * rows + r]`: local column `j` of sampled row `r`.
    values: Vec<f64>,
    rows: usize,
}

impl Sample {
    #[inline]
    fn value(&self, column: usize, row: u32) -> f64 {
        self.values[column * self.rows + row as usize]
    }
}

/// Grows one tree from `x` (all training rows, already checked finite) with its own seed.
pub(crate) fn grow_tree(x: ArrayView2<'_, f64>, spec: &GrowSpec, seed: u64) -> Tree {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sample = draw_sample(x, spec, &mut rng);
    let mut b = Builder::new(spec, &sample);
    b.grow(&sample, &mut rng);
    let limits = TreeLimits {
        n_features: x.ncols(),
        depth_limit: spec.depth_limit,
        max_root_samples: spec.psi,
        exact_root_samples: (!spec.bootstrap).then_some(spec.psi),
    };
    // The builder only produces valid trees; from_parts re-derives depth and leaf values.
    match Tree::from_parts(
        spec.terms,
        b.child,
        b.samples,
        b.features,
        b.coefs,
        b.thresholds,
        &limits,
    ) {
        Ok(tree) => tree,
        Err(e) => unreachable!("the tree grower produced an invalid tree: {e}"),
    }
}

/// Picks the tree's features and rows, and copies those values out.
fn draw_sample(x: ArrayView2<'_, f64>, spec: &GrowSpec, rng: &mut ChaCha8Rng) -> Sample {
    let (n, d) = x.dim();
    let mut features: Vec<u32> = if spec.features_per_tree < d {
        let mut f: Vec<u32> = index::sample(rng, d, spec.features_per_tree)
            .into_iter()
            .map(|i| i as u32)
            .collect();
        f.sort_unstable();
        f
    } else {
        (0..d as u32).collect()
    };
    features.shrink_to_fit();
    let rows: Vec<usize> = if spec.bootstrap {
        // With replacement; like scikit-learn (which turns the draws into sample weights and
        // grows the tree on the distinct rows), a tree holds each drawn row once.
        let mut r: Vec<usize> = (0..spec.psi).map(|_| rng.gen_range(0..n)).collect();
        r.sort_unstable();
        r.dedup();
        r
    } else {
        index::sample(rng, n, spec.psi).into_vec()
    };
    let m = rows.len();
    let mut values = vec![0.0; features.len() * m];
    for (j, &f) in features.iter().enumerate() {
        let col = x.column(f as usize);
        let dst = &mut values[j * m..(j + 1) * m];
        match (col.as_slice(), x.as_slice()) {
            (Some(c), _) => dst.iter_mut().zip(&rows).for_each(|(v, &r)| *v = c[r]),
            // Row-major (the usual layout): stride d through the flat buffer.
            (None, Some(flat)) => dst
                .iter_mut()
                .zip(&rows)
                .for_each(|(v, &r)| *v = flat[r * d + f as usize]),
            (None, None) => dst.iter_mut().zip(&rows).for_each(|(v, &r)| *v = col[r]),
        }
    }
    Sample {
        features,
        values,
        rows: m,
    }
}

/// Node arrays under construction plus the per-node work list.
struct Builder {
    terms: usize,
    depth_limit: usize,
    child: Vec<u32>,
    samples: Vec<u32>,
    features: Vec<u32>,
    coefs: Vec<f64>,
    thresholds: Vec<f64>,
    /// Sampled-row ids, partitioned in place so each node owns a contiguous range.
    order: Vec<u32>,
    /// Scratch: candidate local features of the classic splitter.
    candidates: Vec<usize>,
}

impl Builder {
    fn new(spec: &GrowSpec, sample: &Sample) -> Self {
        Builder {
            terms: spec.terms,
            depth_limit: spec.depth_limit,
            child: Vec::new(),
            samples: Vec::new(),
            features: Vec::new(),
            coefs: Vec::new(),
            thresholds: Vec::new(),
            order: (0..sample.rows as u32).collect(),
            candidates: Vec::with_capacity(sample.features.len()),
        }
    }

    fn push_node(&mut self, samples: usize) -> usize {
        let id = self.child.len();
        self.child.push(LEAF);
        self.samples.push(samples as u32);
        self.features.extend(std::iter::repeat_n(0, self.terms));
        self.coefs.extend(std::iter::repeat_n(0.0, self.terms));
        self.thresholds.push(0.0);
        id
    }

    /// Depth-first growth with an explicit stack. Siblings are allocated together so the right
    /// child is always `left + 1`.
    fn grow(&mut self, sample: &Sample, rng: &mut ChaCha8Rng) {
        let root = self.push_node(sample.rows);
        // (node, start, end, depth) over `order`.
        let mut stack = vec![(root, 0usize, sample.rows, 0usize)];
        while let Some((node, start, end, depth)) = stack.pop() {
            if depth >= self.depth_limit || end - start <= 1 {
                continue; // leaf
            }
            let split = if self.terms == 1 {
                self.classic_split(sample, start, end, rng)
            } else {
                self.extended_split(sample, start, end, rng)
            };
            let Some(mid) = split.map(|s| self.apply(node, s, sample, start, end)) else {
                continue; // every feature is constant here: leaf
            };
            let left = self.push_node(mid - start);
            self.push_node(end - mid);
            self.child[node] = left as u32;
            stack.push((left + 1, mid, end, depth + 1));
            stack.push((left, start, mid, depth + 1));
        }
    }

    /// scikit-learn's ExtraTree random split: a feature drawn uniformly among those not
    /// constant at this node, a threshold uniform in `[min, max)`.
    fn classic_split(
        &mut self,
        sample: &Sample,
        start: usize,
        end: usize,
        rng: &mut ChaCha8Rng,
    ) -> Option<Split> {
        self.candidates.clear();
        self.candidates.extend(0..sample.features.len());
        while !self.candidates.is_empty() {
            // Drawing among the remaining candidates until one is non-constant yields a
            // feature uniform among the non-constant ones.
            let j = self
                .candidates
                .swap_remove(rng.gen_range(0..self.candidates.len()));
            let (lo, hi) = min_max(sample, j, &self.order[start..end]);
            if lo < hi {
                let t = uniform_below(rng, lo, hi);
                return Some(Split {
                    features: vec![sample.features[j]],
                    local: vec![j],
                    coefs: vec![1.0],
                    threshold: t,
                });
            }
        }
        None
    }

    fn extended_split(
        &mut self,
        sample: &Sample,
        start: usize,
        end: usize,
        rng: &mut ChaCha8Rng,
    ) -> Option<Split> {
        let rows = &self.order[start..end];
        let bounds: Vec<(f64, f64)> = (0..sample.features.len())
            .map(|j| min_max(sample, j, rows))
            .collect();
        let plane = draw_hyperplane(&bounds, self.terms, rng)?;
        Some(Split {
            features: plane.local.iter().map(|&j| sample.features[j]).collect(),
            local: plane.local,
            coefs: plane.coefs,
            threshold: plane.threshold,
        })
    }

    /// Records the split on `node` and partitions its rows; returns the first right-hand
    /// position.
    fn apply(
        &mut self,
        node: usize,
        split: Split,
        sample: &Sample,
        start: usize,
        end: usize,
    ) -> usize {
        let base = node * self.terms;
        for (k, (&f, &c)) in split.features.iter().zip(&split.coefs).enumerate() {
            self.features[base + k] = f;
            self.coefs[base + k] = c;
        }
        self.thresholds[node] = split.threshold;
        let goes_left = |row: u32| -> bool {
            let v = if let [j] = split.local[..] {
                sample.value(j, row)
            } else {
                // Same formula and term order as `tree::split_dot` on a scored row, over the
                // same values, so training rows and scored rows are routed identically.
                let mut s = 0.0;
                for (&j, &c) in split.local.iter().zip(&split.coefs) {
                    s += c * sample.value(j, row);
                }
                s
            };
            v <= split.threshold
        };
        partition(&mut self.order[start..end], goes_left) + start
    }
}

/// A chosen split, with each term's local column (to read the sample) and global feature.
struct Split {
    features: Vec<u32>,
    local: Vec<usize>,
    coefs: Vec<f64>,
    threshold: f64,
}

/// Min and max of local column `j` over `rows`.
fn min_max(sample: &Sample, j: usize, rows: &[u32]) -> (f64, f64) {
    let col = &sample.values[j * sample.rows..(j + 1) * sample.rows];
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for &r in rows {
        let v = col[r as usize];
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo, hi)
}

/// A value uniform in `[lo, hi)` for finite `lo < hi`, without overflow even when `hi - lo`
/// is not representable (the lerp form never exceeds either bound's magnitude). As in
/// scikit-learn, a draw that rounds up to `hi` falls back to `lo`.
pub(crate) fn uniform_below(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    let u: f64 = rng.r#gen();
    let t = lo * (1.0 - u) + hi * u;
    if t >= lo && t < hi { t } else { lo }
}

/// Stable-order-independent in-place partition: `true` first. Returns the count of `true`.
fn partition(xs: &mut [u32], pred: impl Fn(u32) -> bool) -> usize {
    let mut i = 0;
    let mut j = xs.len();
    while i < j {
        if pred(xs[i]) {
            i += 1;
        } else {
            j -= 1;
            xs.swap(i, j);
        }
    }
    i
}
