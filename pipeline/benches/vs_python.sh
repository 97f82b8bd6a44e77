#!/usr/bin/env bash
# The whole pipeline against the Python peer a user would otherwise write (issue 18), in one
# script on the same data: ROWS (1M) generated rows in FILES (20) files, 1% malformed.
#
#   isolake   `run --once --drain`, a registered model (contamination auto) + small-then-large
#   peer      ../shared/bench/python-peer/baseline_pipeline.py --overlap-writes (polars +
#             deltalake + scikit-learn, its fastest variant), in a pinned venv made once
#   floor     ../shared/bench/python-peer/floor.py: the JSON parse and ONE parquet write
#
# Both models are trained untimed (isolake on silver of a first run, the peer with its own
# `train`). Then the three run interleaved, ROUNDS (3) rounds, each on a fresh lake; the best
# wall time of each is reported with its CPU seconds and peak RSS, and the ratios
# isolake/peer and isolake/floor. isolake's five tables are counted with the peer venv's
# deltalake (an independent reader): bronze = lines, silver + quarantine = bronze, scored =
# silver, so a fast wrong run cannot pass. The event log gives where isolake's time goes.
#
#   pipeline/benches/vs_python.sh          # ROWS=1000000 FILES=20 ROUNDS=3 (release)
set -euo pipefail
rows="${ROWS:-1000000}"
files="${FILES:-20}"
rounds="${ROUNDS:-3}"
source "$(dirname "$0")/common.sh"
peer_dir="${PEER_DIR:-$(pwd)/../shared/bench/python-peer}"
venv="${PEER_VENV:-$HOME/.cache/isolake/venv-peer}"
requirements="polars==2.1.0 deltalake==1.6.6 scikit-learn==1.9.1 numpy==2.4.6 pyarrow==26.0.1 scipy==1.17.1 pandas==3.1.1"
if [ "$(cat "$venv/.isolake-requirements" 2>/dev/null)" != "$requirements" ]; then
    echo "==> creating the peer's venv at $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    read -ra packages <<< "$requirements"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
    echo "$requirements" > "$venv/.isolake-requirements"
fi
py="$venv/bin/python"
# Training is untimed: the dev build trains the same model (a release build of the train crate
# on its own would unify polars' features differently and rebuild it).
cargo build --quiet -p isolake-train --bin isolake-train
train="$CARGO_TARGET_DIR/debug/isolake-train"

"$bin/isolake-gen" --rows "$rows" --files "$files" --seed 1 --bad-fraction 0.01 \
    --out "$work/landing" --quiet
lines=$(cat "$work/landing"/* | grep -c . || true)

config() { # $1: lake dir; $2: with the model and rule (1) or not (0)
    printf 'id = "bench"\nlake = "%s"\n[source]\nlanding = "%s"\nstability_ms = 1\n' "$1" "$work/landing"
    if [ "$2" = 1 ]; then
        printf '[model]\nuri = "models:/fraud@production"\nregistry = "%s"\n' "$work/registry"
        printf '[[detectors]]\nname = "stl"\nkind = "small_then_large"\nwindow = "60s"\n'
    fi
}
echo "==> training both models (untimed)"
config "$work/first" 0 > "$work/first.toml"
sleep 0.1
"$bin/isolake-pipeline" run --once --config "$work/first.toml" > /dev/null
"$train" --input "$work/first/silver" --registry "$work/registry" \
    --model-name fraud --promote production --seed 1 --contamination auto \
    --max-flag-rate 0.5 --quiet > /dev/null
"$py" "$peer_dir/baseline_pipeline.py" train "$work/landing" --model "$work/model.pkl" > /dev/null

# One timed run: appends "wall cpu rss_mb" to the file $1.
measure() {
    local out="$1"; shift
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" > /dev/null 2>&1
    read -r wall user sys rss < "$work/time"
    echo "$wall $(awk "BEGIN { print $user + $sys }") $((rss / 1024))" >> "$out"
}
run_isolake() {
    rm -rf "$work/lake"; config "$work/lake" 1 > "$work/isolake.toml"
    measure "$work/isolake.times" "$bin/isolake-pipeline" run --once --drain --config "$work/isolake.toml"
}
run_peer() {
    rm -rf "$work/peer-lake"
    measure "$work/peer.times" "$py" "$peer_dir/baseline_pipeline.py" "$work/landing" \
        "$work/peer-lake" --model "$work/model.pkl" --overlap-writes
}
run_floor() {
    rm -rf "$work/floor"
    measure "$work/floor.times" "$py" "$peer_dir/floor.py" "$work/landing" "$work/floor"
}
echo "==> warm-up, then $rounds interleaved rounds"
run_isolake; run_peer; run_floor
rm -f "$work"/*.times
for _ in $(seq "$rounds"); do run_isolake; run_peer; run_floor; done

# Memory must not grow with the backlog: the same run on twice the rows (one run, after the
# rounds; BACKLOG_CHECK=0 skips it).
if [ "${BACKLOG_CHECK:-1}" = 1 ]; then
    "$bin/isolake-gen" --rows "$((rows * 2))" --files "$((files * 2))" --seed 1 \
        --bad-fraction 0.01 --out "$work/landing2" --quiet
    rm -rf "$work/lake2"
    sed "s|$work/landing|$work/landing2|; s|$work/lake|$work/lake2|" "$work/isolake.toml" \
        > "$work/isolake2.toml"
    measure "$work/double.times" "$bin/isolake-pipeline" run --once --drain \
        --config "$work/isolake2.toml"
fi

"$py" - "$work" "$lines" "$rows" "$files" <<'PY'
import sys
from collections import defaultdict
from deltalake import DeltaTable
work, lines, rows, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def count(table):
    return DeltaTable(f"{work}/lake/{table}").to_pyarrow_dataset().count_rows()
bronze, silver, quarantine = count("bronze"), count("silver"), count("quarantine")
scored = count("gold/scored_transactions")
checks = {"bronze = lines": bronze == lines, "silver + quarantine = bronze": silver + quarantine == bronze,
          "scored = silver": scored == silver}
best = {}
for side in ("isolake", "peer", "floor"):
    runs = [tuple(map(float, l.split())) for l in open(f"{work}/{side}.times")]
    best[side] = min(runs)
print(f"{rows} rows in {files} files (1% malformed), best of the rounds, release")
for side, (wall, cpu, rss) in best.items():
    print(f"  {side:8} {wall:6.2f} s wall  {cpu:6.2f} CPU-s  {rss:6.0f} MB peak RSS")
print(f"  isolake / peer  (wall): {best['isolake'][0] / best['peer'][0]:.2f}  "
      f"(peer is {best['peer'][0] / best['isolake'][0]:.2f}x isolake's time; target >= 3.5x)")
print(f"  isolake / floor (wall): {best['isolake'][0] / best['floor'][0]:.2f}  (target <= 1.0)")
print(f"  peak RSS: {best['isolake'][2]:.0f} MB (target <= 600)")
try:
    wall2, cpu2, rss2 = map(float, open(f"{work}/double.times").read().split())
    print(f"  twice the rows ({2 * int(rows)} in {2 * int(files)} files, one run): {wall2:.2f} s wall, "
          f"{rss2:.0f} MB peak RSS ({rss2 / best['isolake'][2]:.2f}x the 1M-row peak)")
except FileNotFoundError:
    pass
events = DeltaTable(f"{work}/lake/event_log").to_pyarrow_table().to_pylist()
by_flow = defaultdict(float)
for e in events:
    by_flow[e["flow"]] += (e["duration_ms"] or 0) / 1000
# A batch's read, bronze, silver and quarantine share one duration (one step); gold has its own.
# Across a backlog the two overlap (the next batch is prepared while gold runs), so the steps
# add up to more than the wall time.
shared = by_flow.get("bronze", 0.0)
rest = {f: s for f, s in by_flow.items() if f not in ("bronze", "silver", "quarantine")}
batches = len({e["batch_id"] for e in events if e["flow"] == "bronze"})
print(f"  isolake's last run, from the event log ({batches} batches, steps overlapped): "
      f"read + bronze + silver + quarantine {shared:.2f} s, "
      + ", ".join(f"{f} {s:.2f} s" for f, s in sorted(rest.items(), key=lambda x: -x[1])))
print(f"  tables: bronze {bronze}, silver {silver}, quarantine {quarantine}, scored {scored}: "
      + ("all checks hold" if all(checks.values()) else f"FAILED {checks}"))
sys.exit(0 if all(checks.values()) else 1)
PY
