//! Evaluation metrics of the training scores: quantiles, ROC AUC and average precision
//! (scikit-learn's definitions, so the figures are comparable with a notebook's).

/// The `q` quantile (0..=1) of sorted values, linear interpolation (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

/// Groups of tied scores, highest first: (positives, negatives) per distinct score.
fn tie_groups(scores: &[f64], labels: &[bool]) -> Vec<(u64, u64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut groups: Vec<(u64, u64)> = Vec::new();
    let mut last = None;
    for i in order {
        if last != Some(scores[i].to_bits()) {
            groups.push((0, 0));
            last = Some(scores[i].to_bits());
        }
        if let Some(g) = groups.last_mut() {
            if labels[i] {
                g.0 += 1;
            } else {
                g.1 += 1;
            }
        }
    }
    groups
}

/// Area under the ROC curve of `scores` (higher = more positive) against `labels`; ties
/// count half. NaN when only one class is present.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let groups = tie_groups(scores, labels);
    let pos: u64 = groups.iter().map(|g| g.0).sum();
    let neg: u64 = groups.iter().map(|g| g.1).sum();
    if pos == 0 || neg == 0 {
        return f64::NAN;
    }
    // For each group: positives in it beat all negatives below, and tie half with its own.
    let mut neg_below = neg;
    let mut wins = 0.0;
    for (p, n) in groups {
        neg_below -= n;
        wins += p as f64 * (neg_below as f64 + n as f64 / 2.0);
    }
    wins / (pos as f64 * neg as f64)
}

/// Average precision (scikit-learn's `average_precision_score`): Σ (Rₖ − Rₖ₋₁) Pₖ over
/// the distinct score thresholds, highest first. NaN without positives.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    let groups = tie_groups(scores, labels);
    let pos: u64 = groups.iter().map(|g| g.0).sum();
    if pos == 0 {
        return f64::NAN;
    }
    let (mut tp, mut fp, mut ap, mut last_recall) = (0u64, 0u64, 0.0, 0.0);
    for (p, n) in groups {
        tp += p;
        fp += n;
        let recall = tp as f64 / pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - last_recall) * precision;
        last_recall = recall;
    }
    ap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_a_perfect_a_reversed_and_a_tied_ranking() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), 0.0);
        assert_eq!(roc_auc(&[0.5; 4], &labels), 0.5);
        assert!(roc_auc(&[0.1, 0.2], &[true, true]).is_nan());
    }

    #[test]
    fn auc_and_ap_match_scikit_learn_on_a_small_case() {
        // sklearn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.75,
        // average_precision_score(...) = 0.8333...
        let labels = [false, false, true, true];
        let scores = [0.1, 0.4, 0.35, 0.8];
        assert!((roc_auc(&scores, &labels) - 0.75).abs() < 1e-12);
        assert!((average_precision(&scores, &labels) - 5.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
    }
}
