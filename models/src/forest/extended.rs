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

use rand::Rng;
use rand::seq::index;

use crate::forest::grow::uniform_below;

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
