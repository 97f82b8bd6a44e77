#!/usr/bin/env bash
# Start-up on an old lake (issue 17): a lake of BATCHES one-file batches (default 20,000),
# then `isolake-pipeline run --once` with nothing new — it opens every table, rebuilds the
# seen-files index, lists the landing zone (BATCHES files, all seen), polls once and exits.
# Measured with the seen-files checkpoint (`_state/<id>/seen_files.json`, what every run
# leaves), and, as the peer in the same script, with it removed (start-up then reads every
# bronze commit, as before the checkpoint existed). Interleaved, ROUNDS rounds each (default
# 3), after one untimed warm-up of each. Prints best and median wall time, the bronze commits
# each side read, and the ratio. The target: under 2 s with the checkpoint.
#
# Building the lake takes a while (about 0.1 s per batch), so it is kept between runs in
# STARTUP_LAKE (default ~/.cache/isolake/bench/startup-$BATCHES); delete it to build anew.
#
#   pipeline/benches/startup.sh            # BATCHES=20000 ROUNDS=3
set -euo pipefail
batches="${BATCHES:-20000}"
rounds="${ROUNDS:-3}"
source "$(dirname "$0")/common.sh"
lake_dir="${STARTUP_LAKE:-$HOME/.cache/isolake/bench/startup-$batches}"
config="$lake_dir/isolake.toml"

build_lake() {
    rm -rf "$lake_dir"
    mkdir -p "$lake_dir/landing"
    python3 - "$lake_dir/landing" "$batches" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    record = {"transaction_id": f"t{i}", "account_id": f"a{i % 50}",
              "event_time": f"2025-01-01T{(i // 3600) % 24:02}:{(i // 60) % 60:02}:{i % 60:02}Z",
              "amount": 1.0 + i % 7, "quantity": 1, "unit_cost": 1.0,
              "distance_from_home_km": 1.0, "seconds_since_last_txn": 1.0,
              "account_age_days": 1}
    open(f"{out}/f{i:06}.json", "w").write(json.dumps(record) + "\n")
PY
    cat > "$config" <<TOML
id = "bench"
lake = "./lake"
[source]
landing = "./landing"
stability_ms = 1
max_files_per_batch = 1
TOML
    sleep 0.1
    echo "building a lake of $batches one-file batches in $lake_dir ..."
    timed "$bin/isolake-pipeline" run --once --config "$config" > /dev/null
    echo "  built in $seconds s"
    touch "$lake_dir/built"
}

# The batches bronze holds, counted from its log with Python (an independent reader).
bronze_batches() {
    python3 - "$lake_dir/lake/bronze/_delta_log" <<'PY'
import glob, json, sys
batches = set()
for path in glob.glob(f"{sys.argv[1]}/*.json"):
    for line in open(path):
        info = json.loads(line).get("commitInfo", {}).get("isolake")
        if info and info.get("flow") == "bronze":
            batches.add(info["batch"])
print(len(batches))
PY
}

[ -f "$lake_dir/built" ] || build_lake
held=$(bronze_batches)
if [ "$held" -ne "$batches" ]; then
    echo "the lake holds $held batches, not $batches: delete $lake_dir" >&2
    exit 1
fi

# One start: sets `seconds` and `read` (bronze commits read while loading the index).
start() {
    RUST_LOG="warn,isolake_pipeline::pipeline=debug" \
        timed "$bin/isolake-pipeline" run --once --config "$config" > /dev/null 2> "$work/log"
    read=$(sed -n 's/.*seen-files index loaded.*commits[^0-9]*\([0-9]*\).*/\1/p' "$work/log" | tail -1)
}
checkpoint="$lake_dir/lake/_state/bench/seen_files.json"
with_checkpoint() { start; }
without_checkpoint() { rm -f "$checkpoint"; start; }

with_checkpoint; without_checkpoint # warm-up (and a checkpoint for the first round)
with_times=() without_times=()
for _ in $(seq "$rounds"); do
    with_checkpoint; with_times+=("$seconds"); with_read="$read"
    without_checkpoint; without_times+=("$seconds"); without_read="$read"
done
if [ "$(bronze_batches)" -ne "$batches" ]; then
    echo "a start with nothing new committed a batch" >&2
    exit 1
fi
python3 - "$batches" "$with_read" "$without_read" "${with_times[*]}" "${without_times[*]}" <<'PY'
import statistics, sys
n, with_read, without_read = sys.argv[1], sys.argv[2], sys.argv[3]
w = [float(x) for x in sys.argv[4].split()]
wo = [float(x) for x in sys.argv[5].split()]
print(f"start-up of a lake of {n} batches, run --once with nothing new (release)")
print(f"  with the seen-files checkpoint:  best {min(w):5.2f} s  median {statistics.median(w):5.2f} s"
      f"  bronze commits read: {with_read}")
print(f"  without it (whole bronze log):   best {min(wo):5.2f} s  median {statistics.median(wo):5.2f} s"
      f"  bronze commits read: {without_read}")
print(f"  ratio: {statistics.median(wo) / statistics.median(w):.1f}x faster with the checkpoint"
      f"  (target: under 2 s: {'met' if statistics.median(w) < 2 else 'NOT met'})")
PY
