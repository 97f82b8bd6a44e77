//! The SIMD scorer (AVX-512, chosen at run time) gives bitwise the same scores as the
//! portable scalar scorer, NaN rows included, for every shape it accepts or declines.
#![allow(clippy::unwrap_used)]

use isolake_models::{IsolationForest, MaxSamples};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Rows mixing continuous values, a few repeated values (ties, constant nodes), signed zeros
/// and extremes; every 97th row holds a NaN or an infinity.
fn rows(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::from_shape_fn((n, d), |(_, j)| match rng.gen_range(0..10) {
        0 => f64::from(rng.gen_range(0..4u8)),
        1 => [0.0, -0.0, 1e300, -1e300, f64::MIN_POSITIVE][rng.gen_range(0..5)],
        _ => rng.r#gen::<f64>() * (j as f64 + 1.0) - 0.5,
    });
    for i in (0..n).step_by(97) {
        let j = rng.gen_range(0..d);
        x[[i, j]] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][i % 3];
    }
    x
}

fn bits(v: impl IntoIterator<Item = f64>) -> Vec<u64> {
    v.into_iter().map(f64::to_bits).collect()
}

#[test]
fn simd_scores_are_bitwise_identical_to_scalar() {
    let simd_cpu = cfg!(target_arch = "x86_64") && {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    };
    if !simd_cpu {
        // Said visibly: without AVX-512 only the portable kernel runs, compared with itself.
        let reason = "no AVX-512 (avx512f + avx512bw) on this CPU: the SIMD kernel did not run";
        eprintln!("SKIPPED: simd_scores_are_bitwise_identical_to_scalar: {reason}");
        if let Some(log) = std::env::var_os("ISOLAKE_SKIP_LOG") {
            use std::io::Write;
            let line = format!("simd_scores_are_bitwise_identical_to_scalar: {reason}\n");
            let _ = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(log)
                .and_then(|mut f| f.write_all(line.as_bytes()));
        }
        return;
    }
    for (d, psi, level, n) in [
        (1, 256, 0, 5_001),
        (2, 64, 0, 4_097),
        (3, 16, 0, 777),
        (5, 100, 0, 9_999),
        (6, 256, 0, 12_345),
        (8, 256, 0, 3_001),
        (9, 256, 0, 1_001),
        (21, 256, 0, 2_049),
        (6, 300, 0, 2_001),
        (4, 2_000, 0, 1_003),
        (6, 256, 1, 1_501),
        (1, 2, 0, 33),
    ] {
        let train = rows(3_000, d, d as u64 * 7 + psi as u64);
        let train = train.map(|v| if v.is_finite() { *v } else { 0.5 });
        let model = IsolationForest::params()
            .n_estimators(37)
            .max_samples(MaxSamples::Count(psi))
            .extension_level(level)
            .seed(psi as u64 + 3)
            .fit_array(&train)
            .unwrap();
        let case = format!("d {d}, ψ {psi}, level {level}, {n} rows");
        if simd_cpu && d <= 8 && psi <= 256 && level == 0 {
            assert!(model.uses_simd(), "{case}: SIMD path expected");
        }
        let x = rows(n, d, n as u64);
        let scalar = model.score_samples_portable(&x).unwrap();
        let mut fast = vec![0.0; n];
        model
            .score_rows_into(x.as_slice().unwrap(), &mut fast)
            .unwrap();
        assert_eq!(
            bits(fast.iter().copied()),
            bits(scalar.iter().copied()),
            "{case}"
        );
        assert!(fast.iter().step_by(97).all(|s| s.is_nan()), "{case}");
        assert!(fast.iter().any(|s| !s.is_nan()), "{case}");
        // A non-contiguous view goes through the copying path.
        let finite = x.map(|v| if v.is_finite() { *v } else { 0.25 });
        let fortran = finite.t().as_standard_layout().to_owned();
        let view = fortran.t();
        let a = model.score_samples(&view).unwrap();
        let b = model.score_samples_portable(&finite).unwrap();
        assert_eq!(bits(a), bits(b), "{case}: strided view");
    }
}
