#!/usr/bin/env bash
# Many small batches (issue 17): a backlog of one-line files, one file per batch, through
# `isolake-pipeline run --once` — with auto compaction (the default, every 50 batches) and,
# as the peer in the same script, without it (`auto_compact_every = 0`). Prints the time per
# batch of each, the ratio, and the start-up time of a run with nothing new on each lake.
# Without compaction deltalake replays every live file at each commit, so each batch costs
# more than the one before.
#
#   pipeline/benches/many_batches.sh      # BATCHES=400
set -euo pipefail
batches="${BATCHES:-400}"
source "$(dirname "$0")/common.sh"

run_side() {
    local every="$1" dir="$work/every-$1"
    mkdir -p "$dir/landing"
    python3 - "$dir/landing" "$batches" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    record = {"transaction_id": f"t{i}", "account_id": "a", "event_time": "2025-01-01T00:00:00Z",
              "amount": 1.0, "quantity": 1, "unit_cost": 1.0, "distance_from_home_km": 1.0,
              "seconds_since_last_txn": 1.0, "account_age_days": 1}
    open(f"{out}/f{i:06}.json", "w").write(json.dumps(record) + "\n")
PY
    cat > "$dir/isolake.toml" <<TOML
id = "bench"
lake = "./lake"
[source]
landing = "./landing"
stability_ms = 1
max_files_per_batch = 1
[maintenance]
auto_compact_every = $every
TOML
    sleep 0.1
    timed "$bin/isolake-pipeline" run --once --config "$dir/isolake.toml" > /dev/null 2>&1
    local backlog="$seconds"
    timed "$bin/isolake-pipeline" run --once --config "$dir/isolake.toml" > /dev/null 2>&1
    echo "$every $backlog $seconds"
}

with=$(run_side 50)
without=$(run_side 0)
python3 - "$batches" "$with" "$without" <<'PY'
import sys
n = int(sys.argv[1])
_, w, ws = map(float, sys.argv[2].split())
_, wo, wos = map(float, sys.argv[3].split())
print(f"{n} one-file batches, run --once (release)")
print(f"  with auto compaction (every 50):  {w:6.1f} s  {w / n * 1000:5.0f} ms/batch  start-up after: {ws:.2f} s")
print(f"  without (auto_compact_every = 0): {wo:6.1f} s  {wo / n * 1000:5.0f} ms/batch  start-up after: {wos:.2f} s")
print(f"  ratio: {wo / w:.1f}x faster with compaction")
PY
