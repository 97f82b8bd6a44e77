"""scikit-learn's IsolationForest on the rows exported by `cargo bench --bench forest`.

Called by compare_sklearn.sh. Prints scikit-learn's fit CPU-seconds and scoring rows per
CPU-second (time.process_time: all threads of the process), the Rust figures parsed from the
benchmark's `RESULT` line, the ratios, and the agreement of the two score vectors. With
--quality, also scikit-learn's ROC-AUC over random_state 0-99 on data/samples (the reference
of models/tests/quality.rs).
"""

import argparse
import re
import time
from pathlib import Path

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score


def ranks(v):
    r = np.empty(len(v))
    r[np.argsort(v, kind="stable")] = np.arange(len(v))
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--rust-log", type=Path, required=True)
    ap.add_argument("--samples", type=Path)
    ap.add_argument("--quality", action="store_true")
    args = ap.parse_args()

    X = np.load(args.data / "data.npy")
    labels = np.load(args.data / "labels.npy")
    rust_scores = np.load(args.data / "rust_scores.npy")
    n = X.shape[0]
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}: {n} x {X.shape[1]} rows")

    model = IsolationForest(n_estimators=100, max_samples=256, random_state=42)
    t = time.process_time()
    model.fit(X)
    fit_cpu = time.process_time() - t
    t = time.process_time()
    sk_scores = model.score_samples(X)
    score_cpu = time.process_time() - t
    sk_rate = n / score_cpu
    print(f"scikit-learn fit:   {fit_cpu:.3f} CPU-s")
    print(f"scikit-learn score: {score_cpu:.3f} CPU-s, {sk_rate:,.0f} rows/CPU-s")

    result = re.search(r"^RESULT (.*)$", args.rust_log.read_text(), re.M)
    rust = dict(kv.split("=") for kv in result.group(1).split())
    rust_fit = float(rust["fit_cpu_s"])
    rust_rate = float(rust["score_rows_per_cpu_s"])
    print(f"isolake fit:        {rust_fit:.4f} CPU-s")
    print(f"isolake score:      {rust_rate:,.0f} rows/CPU-s")
    print(f"ratio fit:   isolake {fit_cpu / rust_fit:.1f}x faster (target >= 50x)")
    print(f"ratio score: isolake {rust_rate / sk_rate:.1f}x more rows per CPU-second (target >= 20x)")

    auc_sk = roc_auc_score(labels, -sk_scores)
    auc_rs = roc_auc_score(labels, -rust_scores)
    pearson = np.corrcoef(sk_scores, rust_scores)[0, 1]
    spearman = np.corrcoef(ranks(sk_scores), ranks(rust_scores))[0, 1]
    print(f"ROC-AUC vs planted outliers: scikit-learn {auc_sk:.4f}, isolake {auc_rs:.4f}")
    print(f"score agreement (different RNGs): Pearson {pearson:.4f}, Spearman {spearman:.4f}")
    print(f"mean score: scikit-learn {sk_scores.mean():.5f}, isolake {rust_scores.mean():.5f}")

    if args.quality and args.samples:
        for name in ["cardio", "breastw"]:
            a = np.loadtxt(args.samples / f"{name}.csv", delimiter=",", skiprows=1)
            Xs, y = a[:, :-1], a[:, -1]
            aucs = []
            for rs in range(100):
                m = IsolationForest(n_estimators=100, max_samples=256, random_state=rs).fit(Xs)
                aucs.append(roc_auc_score(y, -m.score_samples(Xs)))
            aucs = np.array(aucs)
            print(
                f"{name}: scikit-learn ROC-AUC over random_state 0-99: mean {aucs.mean():.4f}, "
                f"min {aucs.min():.4f}, max {aucs.max():.4f}; random_state=42: {aucs[42]:.4f}"
            )


if __name__ == "__main__":
    main()
