#!/usr/bin/env bash
# Continuous latency from a file's rename into the landing dir to its batch's alerts being
# committed (`gold/alerts`, the last table a batch commits before the event log), with a
# model scoring every row and small-then-large running: FILES (240) files of ROWS/FILES rows
# landed on a fixed schedule at RATE (2,000) rows/s, whatever the pipeline does (issue 18).
# Which batch took a file is read from bronze's log (the commit lists its files); when that
# batch's alerts were committed from the alerts log's commit timestamps. p50/p99 printed.
# The model is trained untimed on other generated data. Release profile.
#
#   pipeline/benches/alert_latency.sh      # ROWS=120000 FILES=240 RATE=2000
set -euo pipefail
rows="${ROWS:-120000}"
files="${FILES:-240}"
rate="${RATE:-2000}"
source "$(dirname "$0")/common.sh"
cargo build --quiet -p isolake-train --bin isolake-train
train="$CARGO_TARGET_DIR/debug/isolake-train"

echo "==> training the model (untimed)"
"$bin/isolake-gen" --rows 100000 --files 2 --seed 9 --out "$work/history" --quiet
printf 'id = "history"\nlake = "%s"\n[source]\nlanding = "%s"\nstability_ms = 1\n' \
    "$work/history-lake" "$work/history" > "$work/history.toml"
sleep 0.1
"$bin/isolake-pipeline" run --once --config "$work/history.toml" > /dev/null
"$train" --input "$work/history-lake/silver" --registry "$work/registry" --model-name fraud \
    --promote production --seed 1 --contamination auto --max-flag-rate 0.5 --quiet > /dev/null

"$bin/isolake-gen" --rows "$rows" --files "$files" --seed 2 --out "$work/staging" --quiet
mkdir -p "$work/landing"
cat > "$work/isolake.toml" <<TOML
id = "latency"
lake = "$work/lake"
[source]
landing = "$work/landing"
[model]
uri = "models:/fraud@production"
registry = "$work/registry"
[[detectors]]
name = "stl"
kind = "small_then_large"
window = "60s"
TOML
"$bin/isolake-pipeline" run --continuous --config "$work/isolake.toml" 2> "$work/pipeline.log" &
pid=$! # stopped on exit (common.sh)
python3 - "$work" "$rows" "$files" "$rate" <<'PY'
import glob, json, os, sys, time
work, rows, files, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

def commits(table):
    """(commitInfo, txn version) of every commit of `table` so far."""
    log = os.path.join(work, "lake", table, "_delta_log")
    out = []
    for name in sorted(n for n in os.listdir(log) if n.endswith(".json")):
        info, version = None, None
        with open(os.path.join(log, name)) as f:
            for line in f:
                a = json.loads(line)
                info = a.get("commitInfo", info)
                version = a["txn"]["version"] if "txn" in a else version
        out.append((info, version))
    return out

while not os.path.isdir(os.path.join(work, "lake", "gold", "alerts", "_delta_log")):
    time.sleep(0.05)
time.sleep(0.5)
staging = sorted(glob.glob(os.path.join(work, "staging", "*.json")))
interval = rows / files / rate
renamed = {}
start = time.time()
for i, path in enumerate(staging):
    time.sleep(max(0.0, start + i * interval - time.time()))
    name = os.path.basename(path)
    renamed[name] = time.time()
    os.rename(path, os.path.join(work, "landing", name))
landing_s = time.time() - start
batch_of = {}
deadline = time.time() + 120
while time.time() < deadline:
    batch_of = {f["path"]: i["isolake"]["batch"] for i, _ in commits("bronze")
                if i and "isolake" in i for f in i["isolake"].get("files", [])}
    alerted = {v: i["timestamp"] / 1000 for i, v in commits("gold/alerts") if v is not None}
    if len(batch_of) == len(renamed) and all(b in alerted for b in batch_of.values()):
        break
    time.sleep(0.2)
else:
    sys.exit(f"FAILED: only {len(batch_of)} of {len(renamed)} files reached alerts in time")
lat = sorted((alerted[batch_of[n]] - t) * 1000 for n, t in renamed.items())
p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
print(f"continuous, model + small-then-large: {files} files of {rows // files} rows landed at "
      f"{rows / landing_s:,.0f} rows/s in {len(set(batch_of.values()))} batches (release)")
print(f"  rename -> alerts committed: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {lat[-1]:.0f} ms")
PY
