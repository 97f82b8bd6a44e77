//! Fit and scoring throughput of the isolation forest on 1M × 6 synthetic rows.
//!
//! `cargo bench -p isolake-models` (release build). Figures are per CPU-second of the
//! process (all threads), not wall time, so they compare fairly with single-threaded
//! scikit-learn. Options (after `--`):
//! - `--rows N`       number of rows (default 1,000,000)
//! - `--export DIR`   also write `DIR/data.npy` (f64, rows × 6), `DIR/labels.npy` (u8, 1 =
//!   planted outlier) and `DIR/rust_scores.npy` (f64 `score_samples`) for
//!   `benches/compare_sklearn.py`; also settable with `ISOLAKE_BENCH_EXPORT`.
//!
//! The last line is machine-readable: `RESULT rows=.. fit_cpu_s=.. score_rows_per_cpu_s=..`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cpu_time::ProcessTime;
use isolake_models::IsolationForest;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FEATURES: usize = 6;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Transactions-like data: three Gaussian clusters of different centres and spreads, plus
/// 1% outliers drawn uniformly from a box four times wider. Fixed seed: the same rows on
/// every run and machine.
fn generate(rows: usize) -> (Array2<f64>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(20_240_601);
    let centres = [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [5.0, -3.0, 2.0, 8.0, -1.0, 4.0],
        [-4.0, 6.0, -5.0, 1.0, 3.0, -2.0],
    ];
    let spreads = [1.0, 0.5, 1.5];
    let mut data = Vec::with_capacity(rows * FEATURES);
    let mut labels = Vec::with_capacity(rows);
    for _ in 0..rows {
        if rng.gen_bool(0.01) {
            for _ in 0..FEATURES {
                data.push(rng.gen_range(-20.0..20.0));
            }
            labels.push(1);
        } else {
            let c = rng.gen_range(0..3);
            for &centre in &centres[c] {
                data.push(centre + spreads[c] * normal(&mut rng));
            }
            labels.push(0);
        }
    }
    let x = Array2::from_shape_vec((rows, FEATURES), data).expect("shape matches the data");
    (x, labels)
}

/// Minimal NPY v1.0 writer (little-endian, C order).
fn write_npy(path: &Path, descr: &str, shape: &[usize], body: &[u8]) -> std::io::Result<()> {
    let shape = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple
    // of 64 and ended by a newline.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(body)?;
    f.flush()
}

fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn main() {
    let mut rows = 1_000_000usize;
    let mut export: Option<PathBuf> = std::env::var_os("ISOLAKE_BENCH_EXPORT").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rows" => {
                rows = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rows needs a number")
            }
            "--export" => {
                export = Some(PathBuf::from(
                    args.next().expect("--export needs a directory"),
                ))
            }
            _ => {} // cargo bench passes `--bench`; ignore unknown flags
        }
    }

    let t = Instant::now();
    let (x, labels) = generate(rows);
    println!(
        "generated {rows} x {FEATURES} rows in {:.2} s ({} rayon threads)",
        t.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );

    let params = IsolationForest::params()
        .n_estimators(100)
        .max_samples(isolake_models::MaxSamples::Count(256))
        .seed(42);

    // Warm-up (thread pool start, page faults), not measured.
    let warm = params.fit_array(&x).expect("fit");
    let _ = warm
        .score_samples(&x.slice(ndarray::s![..rows.min(100_000), ..]))
        .expect("score");

    let mut fit_cpu = f64::INFINITY;
    let mut fit_wall = f64::INFINITY;
    let mut model = None;
    for _ in 0..5 {
        let (c, w) = (ProcessTime::now(), Instant::now());
        let m = params.fit_array(&x).expect("fit");
        fit_cpu = fit_cpu.min(c.elapsed().as_secs_f64());
        fit_wall = fit_wall.min(w.elapsed().as_secs_f64());
        model = Some(m);
    }
    let model = model.expect("fitted above");
    println!("fit   (100 trees, psi=256): {fit_cpu:.4} CPU-s, {fit_wall:.4} s wall (best of 5)");

    let mut best_rate = 0.0f64;
    let mut scores = None;
    for run in 0..5 {
        let (c, w) = (ProcessTime::now(), Instant::now());
        let s = model.score_samples(&x).expect("score");
        let cpu = c.elapsed().as_secs_f64();
        let wall = w.elapsed().as_secs_f64();
        let rate = rows as f64 / cpu;
        best_rate = best_rate.max(rate);
        println!(
            "score run {run}: {cpu:.3} CPU-s, {wall:.3} s wall, {:.0} rows/CPU-s, {:.0} rows/s wall",
            rate,
            rows as f64 / wall
        );
        scores = Some(s);
    }
    let scores = scores.expect("scored above");

    let ext = IsolationForest::params()
        .n_estimators(100)
        .max_samples(isolake_models::MaxSamples::Count(256))
        .extension_level(1)
        .seed(42);
    let c = ProcessTime::now();
    let ext_model = ext.fit_array(&x).expect("fit extended");
    let ext_fit = c.elapsed().as_secs_f64();
    // The extended forest walks its canonical trees (no compiled layout): score a slice.
    let ext_rows = rows.min(200_000);
    let c = ProcessTime::now();
    let _ = ext_model
        .score_samples(&x.slice(ndarray::s![..ext_rows, ..]))
        .expect("score extended");
    let ext_rate = ext_rows as f64 / c.elapsed().as_secs_f64();
    println!(
        "extended (level 1): fit {ext_fit:.4} CPU-s, score {ext_rate:.0} rows/CPU-s ({ext_rows} rows)"
    );

    if let Some(dir) = export {
        std::fs::create_dir_all(&dir).expect("create export directory");
        let data = x.as_slice().expect("generated array is contiguous");
        write_npy(
            &dir.join("data.npy"),
            "<f8",
            &[rows, FEATURES],
            &f64_bytes(data),
        )
        .expect("write data.npy");
        write_npy(&dir.join("labels.npy"), "|u1", &[rows], &labels).expect("write labels.npy");
        let s = scores.as_slice().expect("scores are contiguous");
        write_npy(&dir.join("rust_scores.npy"), "<f8", &[rows], &f64_bytes(s))
            .expect("write rust_scores.npy");
        println!("exported data, labels and scores to {}", dir.display());
    }

    println!(
        "RESULT rows={rows} fit_cpu_s={fit_cpu:.6} score_rows_per_cpu_s={best_rate:.0} \
         ext_fit_cpu_s={ext_fit:.6} ext_score_rows_per_cpu_s={ext_rate:.0}"
    );
}
