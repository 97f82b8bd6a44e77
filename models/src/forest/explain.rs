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

use crate::forest::tree::Tree;

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

/// Adds the isolation credit of every split on `row`'s path through `tree` to `weights`.
fn credit_tree(tree: &Tree, row: &[f64], weights: &mut [f64]) {
    let mut i = 0;
    while !tree.is_leaf(i) {
        let c = tree.next(i, row);
        let bits = (f64::from(tree.samples[i]) / f64::from(tree.samples[c].max(1))).log2();
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

/// Normalised weights of every feature for one row (all zero if no split isolated it).
pub(crate) fn feature_weights(trees: &[Tree], row: &[f64], weights: &mut [f64]) {
    weights.fill(0.0);
    for tree in trees {
        credit_tree(tree, row, weights);
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
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
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
pub(crate) fn explain_rows(
    trees: &[Tree],
    d: usize,
    rows: &[f64],
    k: usize,
) -> Vec<Vec<FeatureContribution>> {
    rows.par_chunks(d)
        .map_init(
            || vec![0.0; d],
            |weights, row| {
                feature_weights(trees, row, weights);
                top_k(weights, k)
            },
        )
        .collect()
}
