#!/usr/bin/env bash
# Triggered backlog benchmark (issue 5): 1M generated rows in 100 files → bronze + silver,
# with `isolake-pipeline run --once` in the release profile. Prints rows/s, peak RSS, and the
# ratio against the target (300k rows/s on 2 cores). Peak RSS should follow the batch limits
# (max_bytes_per_batch), not the backlog: run with ROWS=2000000 to see that it does not grow.
#
#   pipeline/benches/backlog.sh            # ROWS=1000000 FILES=100 MAX_BYTES=67108864
#
# The first release build of polars + deltalake takes about an hour on 2 cores.
set -euo pipefail
rows="${ROWS:-1000000}"
files="${FILES:-100}"
max_bytes="${MAX_BYTES:-67108864}"
target_rows_per_s=300000
# PROFILE=dev gives a quick, pessimistic indication without the long release build.
source "$(dirname "$0")/common.sh"

"$bin/isolake-gen" --rows "$rows" --files "$files" --seed 1 --out "$work/landing" --quiet
cat > "$work/isolake.toml" <<TOML
id = "bench"
lake = "./lake"
[source]
landing = "./landing"
stability_ms = 1
max_bytes_per_batch = $max_bytes
TOML
# Files just written are "complete" at once (stability 1 ms): we time loading, not waiting.
sleep 0.1
timed "$bin/isolake-pipeline" run --once --config "$work/isolake.toml"
python3 - "$rows" "$seconds" "$rss_kb" "$target_rows_per_s" <<'PY'
import sys
rows, seconds, rss_kb, target = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rate = rows / seconds
print(f"backlog: {rows} rows in {seconds:.2f} s wall = {rate:,.0f} rows/s "
      f"(target {target:,}: ratio {rate / target:.2f}); peak RSS {rss_kb / 1024:.0f} MiB")
PY
