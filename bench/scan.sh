#!/usr/bin/env bash
# End-to-end throughput of `meshdoctor scan` (every line of every kind parsed) on a corpus
# from the shared generator: prints MiB/s and peak RSS per run, and the median.
#
#   bench/scan.sh                       # 256 MiB corpus, seed 1, 3 runs
#   SIZE_MB=1024 RUNS=5 bench/scan.sh   # the issue-7 size
#   DATA=/path/to/corpus bench/scan.sh  # reuse a corpus
#
# Needs python3 (for the generator) and GNU time (/usr/bin/time) for peak RSS.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GEN=${GEN:-$ROOT/../shared/bench/genlogs.py}
SIZE_MB=${SIZE_MB:-256}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
DATA=${DATA:-/tmp/meshdoctor-bench/${SIZE_MB}m-seed$SEED}

if [ ! -f "$DATA/ground_truth.json" ]; then
  [ -f "$GEN" ] || { echo "generator not found: $GEN (set GEN=)" >&2; exit 2; }
  echo "generating a ${SIZE_MB} MiB corpus in $DATA" >&2
  python3 "$GEN" "$DATA" --size-mb "$SIZE_MB" --seed "$SEED" >&2
fi
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin meshdoctor
BIN="$ROOT/target/release/meshdoctor"
BYTES=$(find "$DATA" -type f -name '*.log' -printf '%s\n' | awk '{ s += $1 } END { print s }')
MIB=$(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "machine: $(nproc) cores; corpus $DATA: $MIB MiB"
cat "$DATA"/app/*.log > /dev/null  # warm the page cache
times=()
for i in $(seq "$RUNS"); do
  /usr/bin/time -f '%e %M' -o /tmp/meshdoctor-scan-time "$BIN" scan --format json "$DATA" > /tmp/meshdoctor-scan.json
  read -r secs rss_kib < /tmp/meshdoctor-scan-time
  mibs=$(awk -v m="$MIB" -v s="$secs" 'BEGIN { printf "%.0f", m / s }')
  echo "run $i: ${secs}s  ${mibs} MiB/s  peak RSS $((rss_kib / 1024)) MiB"
  times+=("$secs")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "median: ${median}s  $(awk -v m="$MIB" -v s="$median" 'BEGIN { printf "%.0f", m / s }') MiB/s"
python3 - /tmp/meshdoctor-scan.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["totals"]
print(f"lines {t['lines']}  events {t['events']}  skipped {t['skipped']}")
PY
