#!/usr/bin/env bash
# meshdoctor next to `rg -c` on the issue-7 tasks, on a corpus from the shared generator, with
# every answer checked against the generator's ground truth.
#
#   bench/compare.sh                          # 1 GiB corpus (seed 1), 5 alternating rounds
#   SIZE_MB=256 RUNS=3 bench/compare.sh       # quicker, for development
#   DATA=/path/to/corpus bench/compare.sh     # reuse a corpus made by genlogs.py
#   BIN=/path/to/meshdoctor bench/compare.sh  # skip the release build
#
# Groups, each timed in alternation (round 1: A B, round 2: A B, ...) so that a noisy shared
# machine slows both sides alike; the "x rg" column is the median of the per-round ratios to
# the group's `rg -c` yardstick, which is the robust number (the same method as
# ../shared/bench/ANCHORS.md):
#   app:    rg -c 'Connection reset' app/   vs  timeline --signature connection-reset --by service
#   access: rg -c ' 503 ' envoy-access/     vs  timeline --signature status:503 --by flag
#   all:    rg -c 'Connection reset' <all>  vs  scan <all>  vs  diagnose <all>
# hyperfine is not used for timing because it cannot alternate commands; bash's
# $EPOCHREALTIME (microseconds) times each run after one warm-up run per command.
#
# The answer run is also measured with GNU time: peak RSS and user+system CPU seconds (MiB per
# CPU second does not depend on how busy the machine is, unlike the wall time).
#
# Environment (all optional): SIZE_MB=1024 SEED=1 RUNS=5 DATA=... OUT=... BIN=... RG=rg
# GEN=../shared/bench/genlogs.py CHECK=../shared/bench/check.py GNU_TIME=/usr/bin/time
# Needs bash >= 5, python3, awk. Missing rg or GNU time is reported and skipped.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
[ -d "$SHARED" ] || SHARED=/work/shared/bench
GEN=${GEN:-$SHARED/genlogs.py}
CHECK=${CHECK:-$SHARED/check.py}
SIZE_MB=${SIZE_MB:-1024}
SEED=${SEED:-1}
RUNS=${RUNS:-5}
DATA=${DATA:-/tmp/meshbench/${SIZE_MB}m-seed$SEED}
OUT=${OUT:-/tmp/meshbench/compare-$(date +%Y%m%d-%H%M%S)}
RG=${RG:-rg}
GNU_TIME=${GNU_TIME:-/usr/bin/time}
PYTHON=${PYTHON:-python3}

have() { command -v "$1" > /dev/null 2>&1; }
note() { echo "$*" >&2; }

if [ -z "${EPOCHREALTIME:-}" ]; then
  note "bash >= 5 is needed (\$EPOCHREALTIME)"; exit 2
fi

# ------------------------------------------------------------------ corpus and binary
if [ ! -f "$DATA/ground_truth.json" ]; then
  [ -f "$GEN" ] || { note "generator not found: $GEN (set GEN= or DATA=)"; exit 2; }
  note "generating a ${SIZE_MB} MiB corpus (seed $SEED) in $DATA"
  "$PYTHON" "$GEN" "$DATA" --size-mb "$SIZE_MB" --seed "$SEED" >&2 || exit 1
fi
GT=$DATA/ground_truth.json
if [ -z "${BIN:-}" ]; then
  note "building meshdoctor (release)"
  cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin meshdoctor || exit 1
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/meshdoctor
fi
[ -x "$BIN" ] || { note "no meshdoctor binary at $BIN"; exit 2; }
mkdir -p "$OUT/answers"

have "$RG" || note "ripgrep ($RG) not installed: the rg -c yardsticks and x rg ratios are skipped (apt-get install ripgrep)"
HAVE_TIME=1
[ -x "$GNU_TIME" ] || { HAVE_TIME=; note "GNU time ($GNU_TIME) not installed: peak RSS is skipped (apt-get install time)"; }
[ -f "$CHECK" ] || note "check.py not found ($CHECK): answers are not checked"

bytes_of() { find "$@" -type f -name '*.log' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
APP_BYTES=$(cd "$DATA" && bytes_of app)
ACCESS_BYTES=$(cd "$DATA" && bytes_of envoy-access)
ALL_BYTES=$(cd "$DATA" && bytes_of app envoy-access envoy-debug)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# ------------------------------------------------------------------ answer converters
# check.py reads one "<day> <service> <count>" or "<flag> <count>" per line; meshdoctor's
# timeline JSON contract is {"rows": [{"start", "group": {...}, "count"}], ...}.
to_day_service() {
  "$PYTHON" -c '
import json, sys
from collections import Counter
c = Counter()
for r in json.load(sys.stdin)["rows"]:
    c[(r["start"][:10], r["group"].get("service", "?"))] += r["count"]
for (d, s), n in sorted(c.items()):
    print(d, s, n)'
}
to_flag() {
  "$PYTHON" -c '
import json, sys
from collections import Counter
c = Counter()
for r in json.load(sys.stdin)["rows"]:
    c[r["group"].get("flag", "?")] += r["count"]
for f, n in sorted(c.items()):
    print(f, n)'
}

# ------------------------------------------------------------------ the commands
# name|group|bytes|checker task|converter|command (run by sh in $DATA)
MD="'$BIN'"
ENTRIES=()
add() { ENTRIES+=("$1|$2|$3|$4|$5|$6"); }
if have "$RG"; then
  add rg_app app "$APP_BYTES" app-count cat "$RG -c 'Connection reset' app/"
  add rg_access access "$ACCESS_BYTES" access-count cat "$RG -c ' 503 ' envoy-access/"
  add rg_all all "$ALL_BYTES" - cat "$RG -c 'Connection reset' app envoy-access envoy-debug"
fi
add md_timeline_resets app "$APP_BYTES" app to_day_service \
  "$MD timeline app/ --signature connection-reset --bucket 1d --by service --format json"
add md_timeline_503 access "$ACCESS_BYTES" access to_flag \
  "$MD timeline envoy-access/ --signature status:503 --bucket 1d --by flag --format json"
add md_scan all "$ALL_BYTES" - cat "$MD scan --format json app envoy-access envoy-debug"
add md_diagnose all "$ALL_BYTES" - cat "$MD diagnose app envoy-access envoy-debug"

field() { local IFS='|'; read -r -a f <<< "$1"; echo "${f[$2]}"; }

# ------------------------------------------------------------------ answers and peak RSS
note "corpus: $DATA ($(mib "$ALL_BYTES") MiB; app $(mib "$APP_BYTES"), envoy-access $(mib "$ACCESS_BYTES"))"
cat "$DATA"/app/*.log "$DATA"/envoy-access/*.log "$DATA"/envoy-debug/*.log > /dev/null  # warm the cache
declare -A RSS CPU VERDICT STATUS
for e in "${ENTRIES[@]}"; do
  name=$(field "$e" 0); task=$(field "$e" 3); conv=$(field "$e" 4); cmd=$(field "$e" 5)
  raw=$OUT/answers/$name.raw
  if [ -n "$HAVE_TIME" ]; then
    (cd "$DATA" && "$GNU_TIME" -f '%M %U %S' -o "$OUT/answers/$name.rss" sh -c "$cmd" > "$raw" 2> "$OUT/answers/$name.err")
    STATUS[$name]=$?
    RSS[$name]=$(tail -1 "$OUT/answers/$name.rss" | awk '{ printf "%.0f", $1 / 1024 }')
    CPU[$name]=$(tail -1 "$OUT/answers/$name.rss" | awk '{ printf "%.2f", $2 + $3 }')
  else
    (cd "$DATA" && sh -c "$cmd" > "$raw" 2> "$OUT/answers/$name.err")
    STATUS[$name]=$?
    RSS[$name]=-
    CPU[$name]=-
  fi
  VERDICT[$name]="-"
  if [ "$task" != "-" ] && [ -f "$CHECK" ]; then
    if $conv < "$raw" > "$OUT/answers/$name.txt" 2> "$OUT/answers/$name.conv.err"; then
      VERDICT[$name]=$("$PYTHON" "$CHECK" "$GT" "$task" "$OUT/answers/$name.txt" | head -1)
      if [[ $task == *-count ]]; then
        # A bare count is the speed yardstick, not an answer: it cannot tell which lines count.
        VERDICT[$name]="yardstick (a total only): ${VERDICT[$name]}"
      elif "$PYTHON" "$CHECK" "$GT" "$task" "$OUT/answers/$name.txt" > /dev/null 2>&1; then
        VERDICT[$name]="exact: ${VERDICT[$name]}"
      else
        VERDICT[$name]="WRONG: ${VERDICT[$name]}"
      fi
    else
      VERDICT[$name]="no answer (exit ${STATUS[$name]}: $(head -c 200 "$OUT/answers/$name.err" | tr '\n' ' '))"
    fi
  elif [ "$name" = md_diagnose ] && [ -s "$raw" ]; then
    # diagnose exits 1 when it names a cause; show its verdict line.
    VERDICT[$name]="exit ${STATUS[$name]}; $(head -1 "$raw" | tr -s ' ')"
  elif [ "${STATUS[$name]}" != 0 ]; then
    VERDICT[$name]="exit ${STATUS[$name]}: $(head -c 200 "$OUT/answers/$name.err" | tr '\n' ' ')"
  fi
  note "$name: peak ${RSS[$name]} MiB, ${VERDICT[$name]}"
done

# ------------------------------------------------------------------ alternating timing
declare -A TIMES  # name -> space-separated seconds, one per round
time_once() {  # prints seconds
  local cmd=$1 t0 t1
  t0=$EPOCHREALTIME
  (cd "$DATA" && sh -c "$cmd" > "$OUT/last.out" 2> /dev/null)
  t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }'
}
for group in app access all; do
  members=()
  for e in "${ENTRIES[@]}"; do [ "$(field "$e" 1)" = "$group" ] && members+=("$e"); done
  for e in "${members[@]}"; do time_once "$(field "$e" 5)" > /dev/null; done  # warm-up
  for round in $(seq "$RUNS"); do
    for e in "${members[@]}"; do
      name=$(field "$e" 0)
      TIMES[$name]="${TIMES[$name]:-} $(time_once "$(field "$e" 5)")"
    done
    note "group $group: round $round/$RUNS done"
  done
done

# ------------------------------------------------------------------ table
{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "corpus: genlogs.py --size-mb $SIZE_MB --seed $SEED: $(mib "$ALL_BYTES") MiB (app $(mib "$APP_BYTES"), envoy-access $(mib "$ACCESS_BYTES")); $RUNS alternating rounds after 1 warm-up; $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "meshdoctor: $("$BIN" --version 2>/dev/null || echo "$BIN")"
  echo
  echo "| command | median wall s | MiB/s | x rg -c | CPU s (1 run) | MiB per CPU s | peak RSS MiB | answer |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|"
} > "$OUT/summary.md"
: > "$OUT/results.tsv"
for e in "${ENTRIES[@]}"; do
  name=$(field "$e" 0)
  shown=$(field "$e" 5); shown=${shown//$MD/meshdoctor}
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(field "$e" 1)" "$(field "$e" 2)" "$shown" \
    "${TIMES[$name]:-}" "${RSS[$name]}" "${VERDICT[$name]}" "${CPU[$name]}" >> "$OUT/results.tsv"
done
"$PYTHON" - "$OUT/results.tsv" >> "$OUT/summary.md" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
times = {r[0]: [float(x) for x in r[4].split()] for r in rows}
yard = {"app": "rg_app", "access": "rg_access", "all": "rg_all"}
for name, group, nbytes, cmd, _, rss, verdict, cpu in rows:
    ts = times[name]
    med = statistics.median(ts) if ts else None
    base = times.get(yard[group])
    if name == yard[group]:
        ratio = "1.0"
    elif ts and base:
        ratio = "%.1f" % statistics.median(a / b for a, b in zip(ts, base))
    else:
        ratio = "-"
    mibs = "%.0f" % (int(nbytes) / 1048576 / med) if med else "-"
    try:
        per_cpu = "%.0f" % (int(nbytes) / 1048576 / float(cpu))
    except (ValueError, ZeroDivisionError):
        per_cpu = "-"
    print("| `%s` | %s | %s | %s | %s | %s | %s | %s |" % (cmd, "%.3f" % med if med else "-", mibs, ratio, cpu, per_cpu, rss, verdict))
if times.get("md_scan") and times.get("md_diagnose"):
    r = statistics.median(d / s for d, s in zip(times["md_diagnose"], times["md_scan"]))
    print()
    print("diagnose / scan (median of per-round ratios): %.2f" % r)
PY
echo >&2
cat "$OUT/summary.md"
note "answers and raw outputs: $OUT/answers"
