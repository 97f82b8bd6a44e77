#!/usr/bin/env bash
# `isolake-score` on a parquet file of ROWS (1M) silver rows, the whole process (read, score,
# write parquet), against scikit-learn's `score_samples` ALONE on the same rows already in a
# numpy array (no I/O at all): CPU seconds of each and the ratio (issue 18). Both forests:
# 100 trees, 256 samples. scikit-learn's fit, the data export and isolake's training are
# untimed. Both sides run once untimed, then ROUNDS (3) interleaved timed rounds; the best
# of each is reported. The scored file's rows are counted, so a fast wrong run cannot pass.
#
#   pipeline/benches/score_vs_sklearn.sh          # ROWS=1000000 ROUNDS=3 (release)
set -euo pipefail
rows="${ROWS:-1000000}"
rounds="${ROUNDS:-3}"
source "$(dirname "$0")/common.sh"
venv="${PEER_VENV:-$HOME/.cache/isolake/venv-peer}"
if [ ! -x "$venv/bin/python" ]; then
    echo "error: run pipeline/benches/vs_python.sh once first: it makes the venv $venv" >&2
    exit 1
fi
py="$venv/bin/python"
# Built with the pipeline's binaries (one feature set, no second polars build).
cargo build --profile "$profile" --quiet -p isolake-pipeline -p isolake-data -p isolake-score --bins
cargo build --quiet -p isolake-train --bin isolake-train
train="$CARGO_TARGET_DIR/debug/isolake-train"

"$bin/isolake-gen" --rows "$rows" --files 4 --seed 3 --out "$work/landing" --quiet
printf 'id = "score"\nlake = "%s"\n[source]\nlanding = "%s"\nstability_ms = 1\n' \
    "$work/lake" "$work/landing" > "$work/isolake.toml"
sleep 0.1
"$bin/isolake-pipeline" run --once --config "$work/isolake.toml" > /dev/null
"$train" --input "$work/lake/silver" --registry "$work/registry" --model-name fraud \
    --promote production --seed 1 --quiet > /dev/null
features="amount,quantity,unit_cost,distance_from_home_km,seconds_since_last_txn,account_age_days"
"$py" - "$work" "$features" <<'PY'
import sys
import numpy as np
import pyarrow.parquet as pq
from deltalake import DeltaTable
work, features = sys.argv[1], sys.argv[2].split(",")
table = DeltaTable(f"{work}/lake/silver").to_pyarrow_table()
pq.write_table(table, f"{work}/silver.parquet")
x = np.column_stack([table[f].to_numpy(zero_copy_only=False).astype(np.float64) for f in features])
np.save(f"{work}/x.npy", x)
PY

run_isolake() {
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$bin/isolake-score" \
        --model models:/fraud@production --registry "$work/registry" \
        --cache-dir "$work/cache" --input "$work/silver.parquet" \
        --output "$work/scored.parquet" --if-exists overwrite --quiet
    read -r wall user sys rss < "$work/time"
    echo "$wall $(awk "BEGIN { print $user + $sys }") $((rss / 1024))" >> "$work/isolake.times"
}
run_sklearn() {
    "$py" - "$work" <<'PY' >> "$work/sklearn.times"
import sys, time
import numpy as np
from sklearn.ensemble import IsolationForest
x = np.load(f"{sys.argv[1]}/x.npy")
model = IsolationForest(n_estimators=100, max_samples=256, random_state=1).fit(x)
t, w = time.process_time(), time.perf_counter()
scores = model.score_samples(x)
print(f"{time.perf_counter() - w} {time.process_time() - t} {len(scores)}")
PY
}
echo "==> warm-up, then $rounds interleaved rounds"
run_isolake; run_sklearn
rm -f "$work"/*.times
for _ in $(seq "$rounds"); do run_isolake; run_sklearn; done

"$py" - "$work" <<'PY'
import sys
import pyarrow.parquet as pq
work = sys.argv[1]
iso = min(tuple(map(float, l.split())) for l in open(f"{work}/isolake.times"))
sk = min(tuple(map(float, l.split())) for l in open(f"{work}/sklearn.times"))
scored = pq.ParquetFile(f"{work}/scored.parquet").metadata.num_rows
n = int(sk[2])
print(f"{n} rows, 6 features, 100 trees x 256 samples; best of the rounds, release")
print(f"  isolake-score, whole process (parquet in, score, parquet out): {iso[0]:.2f} s wall, "
      f"{iso[1]:.2f} CPU-s, {iso[2]:.0f} MB peak RSS")
print(f"  scikit-learn score_samples alone (numpy in memory):            {sk[0]:.2f} s wall, "
      f"{sk[1]:.2f} CPU-s")
print(f"  ratio (CPU-s): scikit-learn needs {sk[1] / iso[1]:.1f}x isolake's whole process")
ok = scored == n
print(f"  scored rows: {scored} of {n}: " + ("check holds" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY
