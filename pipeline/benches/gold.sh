#!/usr/bin/env bash
# Gold benchmark (issue 6): 1M generated rows in 100 files through the whole pipeline with a
# registered model (scoring + top-3 explanation), small_then_large and a threshold rule, in the
# release profile. Prints the gold step's rows/s (from the event log's per-flow durations),
# its ratio against the target (500k rows/s on 2 cores) and its share of the run's wall time.
#
#   pipeline/benches/gold.sh               # ROWS=1000000 FILES=100 CONTAMINATION=auto; PROFILE=dev
#
# Needs the Python venv .ci/run creates (deltalake) to read the event log.
set -euo pipefail
rows="${ROWS:-1000000}"
files="${FILES:-100}"
target_rows_per_s=500000
python="${ISOLAKE_PYTHON:-$HOME/.cache/isolake/venv/bin/python}"
source "$(dirname "$0")/common.sh"

# Training speed is not measured here: the dev build trains the same model.
cargo build --quiet -p isolake-train --bin isolake-train
train="$CARGO_TARGET_DIR/debug/isolake-train"
"$bin/isolake-gen" --rows 50000 --files 1 --seed 2 --out "$work/train" --quiet
# CONTAMINATION: the share of rows the model flags (auto: scikit-learn's 0.5 offset, which
# flags ~10% of these rows; a fraud team alerts on far fewer).
"$train" --input "$work/train" --registry "$work/lake/_registry" \
  --model-name fraud --promote production --seed 1 --quiet \
  --contamination "${CONTAMINATION:-auto}" --max-flag-rate 0.5 > /dev/null
"$bin/isolake-gen" --rows "$rows" --files "$files" --seed 1 --out "$work/landing" --quiet
cat > "$work/isolake.toml" <<TOML
id = "bench"
lake = "./lake"
[source]
landing = "./landing"
stability_ms = 1

[model]
uri = "models:/fraud@production"

[[detectors]]
name = "small_then_large"
kind = "small_then_large"
window = "60s"

[[detectors]]
name = "big_amount"
kind = "threshold"
expr = "amount > 2000"
key = "account_id"
TOML
sleep 0.1
timed "$bin/isolake-pipeline" run --once --drain --config "$work/isolake.toml" > /dev/null
"$python" - "$work/lake" "$seconds" "$rss_kb" "$target_rows_per_s" <<'PY'
import sys
from deltalake import DeltaTable
lake, wall, rss_kb, target = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
events = DeltaTable(f"{lake}/event_log").to_pyarrow_table().to_pylist()
gold = [e for e in events if e["flow"] == "gold"]
rows = sum(e["rows_in"] for e in gold)
gold_s = sum(e["duration_ms"] for e in gold) / 1000
alerts = sum(e["alerts"] for e in gold)
rate = rows / gold_s if gold_s else float("inf")
print(f"gold: {rows} rows in {gold_s:.2f} s = {rate:,.0f} rows/s (target {target:,}: ratio "
      f"{rate / target:.2f}); {alerts} alerts; {100 * gold_s / wall:.0f}% of the run's "
      f"{wall:.2f} s wall ({rows / wall:,.0f} rows/s end to end); peak RSS {rss_kb / 1024:.0f} MiB")
PY
