#!/usr/bin/env bash
# Compares isolake's isolation forest with scikit-learn's on the same 1M x 6 rows.
#
#   models/benches/compare_sklearn.sh            # benchmark comparison
#   models/benches/compare_sklearn.sh --quality  # also scikit-learn's mean ROC-AUC over
#                                                # random_state 0-99 on data/samples
#
# 1. creates (or reuses) a venv at $HOME/.cache/isolake/venv-bench with pinned
#    scikit-learn and numpy from PyPI;
# 2. runs `cargo bench -p isolake-models --bench forest -- --export DIR` (release build), which
#    generates the rows, fits + scores them and exports data, labels and its scores as .npy;
# 3. runs scikit-learn's IsolationForest(n_estimators=100, max_samples=256, random_state=42) on
#    the exported rows, timing fit and score_samples with time.process_time();
# 4. prints both figures, the ratios and how well the two score vectors agree.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/isolake/target}"
venv="${ISOLAKE_BENCH_VENV:-$HOME/.cache/isolake/venv-bench}"
data="${ISOLAKE_BENCH_DIR:-$HOME/.cache/isolake/bench-data}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "scikit-learn==1.9.1" "numpy==2.4.6"

mkdir -p "$data"
(cd "$root" && cargo bench -p isolake-models --bench forest -- --export "$data") | tee "$data/rust.log"

"$venv/bin/python" "$here/compare_sklearn.py" --data "$data" --rust-log "$data/rust.log" \
    --samples "$root/data/samples" "$@"
