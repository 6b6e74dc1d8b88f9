#!/usr/bin/env bash
# Time and peak memory of meshdoctor at growing corpus sizes (issue 7: time linear in the
# input, timeline/scan memory flat, diagnose memory sublinear). One warm run per command
# after `rg` has pulled the corpus into the page cache; times are wall seconds.
#
#   bench/scaling.sh                         # 1, 2 and 4 GiB corpora, seed 1 (generated if missing)
#   SIZES="256 512" bench/scaling.sh         # other sizes, in MiB
#   BIN=target/release/meshdoctor bench/scaling.sh
#
# Needs python3 and GNU time (/usr/bin/time); corpora go to /tmp/meshbench/<size>m-seed1.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
[ -d "$SHARED" ] || SHARED=/work/shared/bench
GEN=${GEN:-$SHARED/genlogs.py}
SIZES=${SIZES:-1024 2048 4096}
SEED=${SEED:-1}
GNU_TIME=${GNU_TIME:-/usr/bin/time}
[ -x "$GNU_TIME" ] || { echo "GNU time is needed (apt-get install time)" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin meshdoctor || exit 1
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/meshdoctor
fi

# One run: prints "<wall s> <peak RSS MiB>".
measure() {
  "$GNU_TIME" -f '%e %M' -o /tmp/meshbench-scaling.time "$@" > /dev/null 2>&1
  tail -n 1 /tmp/meshbench-scaling.time | awk '{ printf "%.2f %.0f", $1, $2 / 1024 }'
}

echo "| corpus | timeline resets s / MiB | timeline 503s s / MiB | scan s / MiB | scan MiB/s | diagnose s / MiB |"
echo "|---:|---:|---:|---:|---:|---:|"
for size in $SIZES; do
  data=/tmp/meshbench/${size}m-seed$SEED
  if [ ! -f "$data/ground_truth.json" ]; then
    python3 "$GEN" "$data" --size-mb "$size" --seed "$SEED" >&2 || exit 1
  fi
  cat "$data"/*/*.log > /dev/null  # warm the page cache
  cd "$data" || exit 1
  read -r t1 m1 <<< "$(measure "$BIN" timeline app/ --signature connection-reset --bucket 1d --by service --format json)"
  read -r t2 m2 <<< "$(measure "$BIN" timeline envoy-access/ --signature status:503 --bucket 1d --by flag --format json)"
  read -r t3 m3 <<< "$(measure "$BIN" scan --format json app envoy-access envoy-debug)"
  read -r t4 m4 <<< "$(measure "$BIN" diagnose app envoy-access envoy-debug)"
  rate=$(awk -v s="$size" -v t="$t3" 'BEGIN { printf "%.0f", s / t }')
  echo "| $size MiB | $t1 / $m1 | $t2 / $m2 | $t3 / $m3 | $rate | $t4 / $m4 |"
  cd - > /dev/null || exit 1
done
