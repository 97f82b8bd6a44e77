#!/usr/bin/env bash
# The pipeline on object storage against the same run on local disk (issue 19), in one script
# on the same data: ROWS (1M) generated rows in FILES (20) files, 1% malformed.
#
#   s3     the landing zone and the lake on a local S3-compatible server (moto, the venv
#          .ci/run makes; $ISOLAKE_MOTO overrides), `run --once`
#   local  the same landing files and a lake in a local directory, `run --once`
#
# Interleaved, ROUNDS (3) rounds, each on a fresh lake; the best wall time of each gives its
# rows/s, and the ratio s3/local. The requests the S3 run sent (list, get, put, …, counted by
# isolake's store wrapper) are printed in all and per batch: on real S3 they are what costs
# money and time. Each run's bronze, silver and quarantine are counted (silver + quarantine
# = bronze = lines) so a fast wrong run cannot pass. moto is a Python server on the same 2
# cores: the ratio is an upper bound of what S3 costs isolake, not a figure of S3 itself.
#
#   pipeline/benches/s3_vs_local.sh        # ROWS=1000000 FILES=20 ROUNDS=3 (release)
set -euo pipefail
rows="${ROWS:-1000000}"
files="${FILES:-20}"
rounds="${ROUNDS:-3}"
source "$(dirname "$0")/common.sh"
moto="${ISOLAKE_MOTO:-$HOME/.cache/isolake/venv-moto/bin/moto_server}"
[ -x "$moto" ] || { echo "no moto server at $moto: run .ci/run once (it installs it)"; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$moto" -H 127.0.0.1 -p "$port" > /dev/null 2>&1 &
pid=$!
endpoint="http://127.0.0.1:$port"
export AWS_ENDPOINT_URL="$endpoint" AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=test \
    AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
for _ in $(seq 100); do curl -sf -X PUT "$endpoint/bench" > /dev/null && break; sleep 0.1; done

"$bin/isolake-gen" --rows "$rows" --files "$files" --seed 1 --bad-fraction 0.01 \
    --out "$work/landing" --quiet
lines=$(cat "$work/landing"/* | grep -c . || true)
echo "==> uploading the landing files to s3://bench/landing/"
"${moto%/moto_server}/python" - "$endpoint" "$work/landing" <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
for name in sorted(os.listdir(sys.argv[2])):
    s3.upload_file(os.path.join(sys.argv[2], name), "bench", f"landing/{name}")
PY

config() { # $1: lake location, $2: landing location
    printf 'id = "bench"\nlake = "%s"\n[source]\nlanding = "%s"\nstability_ms = 1\n' "$1" "$2"
}
count() { # $1: table location → rows (isolake's own reader through `query`)
    "$bin/isolake-pipeline" query --format csv --config "$work/counted.toml" \
        "SELECT count(*) AS n FROM $1" | tail -1
}
check() { # $1: config → fails unless silver + quarantine = bronze = lines
    cp "$1" "$work/counted.toml"
    local bronze silver quarantine
    bronze=$(count bronze); silver=$(count silver); quarantine=$(count quarantine)
    if [ "$bronze" != "$lines" ] || [ $((silver + quarantine)) != "$bronze" ]; then
        echo "wrong counts: bronze $bronze silver $silver quarantine $quarantine, lines $lines"
        exit 1
    fi
}
rm -f "$work"/*.times
for round in $(seq "$rounds"); do
    config "s3://bench/lake-$round" "s3://bench/landing/" > "$work/s3.toml"
    /usr/bin/time -f '%e' -o "$work/time" "$bin/isolake-pipeline" run --once \
        --config "$work/s3.toml" > "$work/s3.out" 2>&1
    echo "$(cat "$work/time") $(grep -c . "$work/s3.out")" >> "$work/s3.times"
    grep '^object-store requests' "$work/s3.out" > "$work/requests"
    grep -Eo '^[0-9]+ batch' "$work/s3.out" | grep -Eo '[0-9]+' > "$work/batches"
    check "$work/s3.toml"
    config "$work/lake-$round" "$work/landing" > "$work/local.toml"
    /usr/bin/time -f '%e' -o "$work/time" "$bin/isolake-pipeline" run --once \
        --config "$work/local.toml" > /dev/null 2>&1
    echo "$(cat "$work/time") 0" >> "$work/local.times"
    check "$work/local.toml"
done
python3 - "$work" "$rows" "$files" <<'PY'
import re, sys
work, rows, files = sys.argv[1], int(sys.argv[2]), sys.argv[3]
best = {side: min(float(l.split()[0]) for l in open(f"{work}/{side}.times"))
        for side in ("s3", "local")}
print(f"{rows} rows in {files} files (1% malformed), run --once, best of the rounds, release")
for side, wall in best.items():
    print(f"  {side:6} {wall:6.2f} s wall  {rows / wall:10,.0f} rows/s")
print(f"  s3 / local (wall): {best['s3'] / best['local']:.2f}")
requests = open(f"{work}/requests").read().strip()
batches = int(open(f"{work}/batches").read().strip())
print(f"  S3 run: {batches} batches; {requests}")
counts = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", requests.split(":", 1)[1])}
per = ", ".join(f"{k} {v / batches:.1f}" for k, v in counts.items() if k != "keys")
print(f"  per batch: {per}")
PY
