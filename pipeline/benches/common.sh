# The preamble the pipeline's bench scripts share; they `source` it right after
# `set -euo pipefail`. It goes to the repo root, builds the pipeline's and the data crate's
# binaries in $PROFILE, and makes a work dir that is removed on exit. It sets:
#
#   CARGO_TARGET_DIR  exported; default ~/.cache/isolake/target, where .ci/run builds too
#   profile           $PROFILE, default release (PROFILE=dev gives a quick, pessimistic
#                     indication without the long release build)
#   bin               the dir of the built binaries (isolake-gen, isolake-pipeline)
#   work              the temporary work dir
#
# A script that starts a pipeline in the background puts its pid in `pid`: it is stopped
# (SIGTERM, and waited for) before the work dir goes.

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/isolake/target}"
profile="${PROFILE:-release}"
# One invocation for both: built apart, cargo unifies polars' features differently and
# rebuilds it (an hour in release).
cargo build --profile "$profile" --quiet -p isolake-pipeline -p isolake-data --bins
bin="$CARGO_TARGET_DIR/$([ "$profile" = dev ] && echo debug || echo "$profile")"

work=$(mktemp -d)
# Stops the background pipeline, if any, then removes the work dir. Never fails: under
# `set -e` a failing step would skip the removal and change the script's exit status.
bench_cleanup() {
    if [ -n "${pid:-}" ]; then
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap bench_cleanup EXIT

# Runs a command under /usr/bin/time and sets `seconds` (wall) and `rss_kb` (peak RSS) from
# it: what the throughput benches report.
timed() {
    /usr/bin/time -f '%e %M' -o "$work/time" "$@"
    read -r seconds rss_kb < "$work/time"
}
