#![allow(clippy::unwrap_used)]
mod common;
use isolake_models::IsolationForest;
#[test]
fn probe() {
    for name in ["cardio", "breastw"] {
        let data = common::load_sample(name);
        for level in [0usize, 1] {
            let mut aucs = vec![];
            let mut means = vec![];
            for seed in 0..100u64 {
                let m = IsolationForest::params()
                    .seed(seed)
                    .extension_level(level)
                    .fit_array(&data.x)
                    .unwrap();
                let s = m.score_samples(&data.x).unwrap();
                means.push(s.mean().unwrap());
                let a: Vec<f64> = s.iter().map(|v| -v).collect();
                aucs.push(common::roc_auc(&a, &data.y));
            }
            let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
            println!(
                "{name} level {level}: auc mean {:.4} min {:.4} max {:.4}; score mean {:.5}",
                mean(&aucs),
                aucs.iter().cloned().fold(1.0, f64::min),
                aucs.iter().cloned().fold(0.0, f64::max),
                mean(&means)
            );
        }
    }
}
