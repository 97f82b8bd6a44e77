#!/usr/bin/env bash
# Continuous-mode latency benchmark (issue 5): time from a 1k-row file's rename into the
# landing dir to its rows being visible in silver, p50 and p99 over 100 files (target p50
# ≤ 300 ms). "Visible" = silver's Delta log holds the batch (its app transaction), which is
# the moment any reader can see the rows. Release profile.
#
#   pipeline/benches/latency.sh
#   AUTO_COMPACT_EVERY=10 pipeline/benches/latency.sh   # auto compaction every 10 batches
#   AUTO_COMPACT_EVERY=0 pipeline/benches/latency.sh    # without it (the default is every 50)
set -euo pipefail
# PROFILE=dev gives a quick, pessimistic indication without the long release build.
source "$(dirname "$0")/common.sh"
"$bin/isolake-gen" --rows 100000 --files 100 --seed 2 --out "$work/staging" --quiet
mkdir -p "$work/landing"
cat > "$work/isolake.toml" <<TOML
id = "latency"
lake = "./lake"
trigger_interval = "5s"
[source]
landing = "./landing"
TOML
if [ -n "${AUTO_COMPACT_EVERY:-}" ]; then
    printf '[maintenance]\nauto_compact_every = %s\n' "$AUTO_COMPACT_EVERY" >> "$work/isolake.toml"
fi
"$bin/isolake-pipeline" run --continuous --config "$work/isolake.toml" &
pid=$! # stopped on exit (common.sh)
python3 - "$work" <<'PY'
import glob, json, os, sys, time
work = sys.argv[1]
log = os.path.join(work, "lake", "silver", "_delta_log")
def silver_batches():
    """Highest batch in silver's log: the txn of the newest commit."""
    best = 0
    try:
        names = sorted(n for n in os.listdir(log) if n.endswith(".json"))
    except FileNotFoundError:
        return 0
    for name in names[-3:]:
        with open(os.path.join(log, name)) as f:
            for line in f:
                a = json.loads(line)
                if "txn" in a:
                    best = max(best, a["txn"]["version"])
    return best
while not os.path.isdir(log):
    time.sleep(0.05)
staging = sorted(glob.glob(os.path.join(work, "staging", "*.json")))
lat = []
for i, path in enumerate(staging, start=1):
    before = silver_batches()
    t0 = time.perf_counter()
    os.rename(path, os.path.join(work, "landing", os.path.basename(path)))
    while silver_batches() <= before:
        time.sleep(0.002)
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.05)
lat.sort()
p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
compactions = sum(
    1 for n in os.listdir(log) if n.endswith(".json")
    and '"operation":"OPTIMIZE"' in open(os.path.join(log, n)).read())
print(f"continuous: {len(lat)} files of 1k rows, {compactions} compactions of silver meanwhile; "
      "rename → visible in silver: "
      f"p50 {p50:.0f} ms, p99 {p99:.0f} ms (target p50 ≤ 300 ms: ratio {300 / p50:.2f})")
PY
