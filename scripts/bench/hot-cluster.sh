#!/usr/bin/env bash
# Does the hot path pay for itself on a cluster? In one run on three nodes with Redis
# (deploy/local/cluster.sh up --redis, automatic promotion off), the load harness runs a flash sale
# with CONNECTIONS connections spread over the three nodes, for a hot SKU (promoted first) and for
# a cold one, over HTTP and over RESP, alternating, REPEATS times; then one 5,000-unit flash sale of
# a hot SKU per transport, for the share of grants the cache answered. Every run ends with the
# harness's verdict (nothing oversold, every grant in the ledger, the decrement queue drained).
# CPU per reservation is read for each run: the three nodes together, redis-server and the harness
# (process CPU time from /proc and the shell's `time`), to show where a transport's or a path's
# cost goes on a machine whose cores all of them share.
#
# The harness's CPU figures cover its whole run, setting stock and reading every grant back for
# the verdict included. For the cost of the load alone, a second part drives the same cluster with
# redis-benchmark over RESP (one process per node, CONNECTIONS spread over them, unique ids), hot
# SKU against cold SKU, REPEATS times, and reads the CPU of every process over exactly that load.
#
# Usage: scripts/bench/hot-cluster.sh   (CONNECTIONS=256 ATTEMPTS=60000 REPEATS=3 REQUESTS=90000 to change;
#        PARTS="harness benchmark" runs both parts, the default; PARTS=sale only the 5,000-unit sales)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/setup.sh
CONNECTIONS=${CONNECTIONS:-256}
ATTEMPTS=${ATTEMPTS:-60000}
REPEATS=${REPEATS:-3}
swift build -c release --product stockade-node >/dev/null
swift build -c release --product stockade-load >/dev/null
BIN="$(swift build -c release --show-bin-path)"
OUT="bench-out/hot-cluster-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
export STOCKADE_ADMIN_TOKEN=dev-admin-token STOCKADE_CHECKOUT_TOKEN=dev-checkout-token
export STOCKADE_NODE_BIN="$BIN/stockade-node" STOCKADE_CLUSTER_DIR="$PWD/$OUT/cluster" STOCKADE_LOG_LEVEL=notice
export STOCKADE_EVENT_LOOP_THREADS="${CLUSTER_EVENT_LOOP_THREADS:-1}" STOCKADE_HOT_THRESHOLD=0
trap 'deploy/local/cluster.sh down >/dev/null 2>&1 || true' EXIT
deploy/local/cluster.sh up --nodes 3 --redis > "$OUT/cluster-up.txt"
declare -A URLS=(
  [http]="http://127.0.0.1:7101,http://127.0.0.1:7102,http://127.0.0.1:7103"
  [resp]="resp://127.0.0.1:7401,resp://127.0.0.1:7402,resp://127.0.0.1:7403"
)

TICKS_PER_S=$(getconf CLK_TCK)
cpu_ticks() {  # the three nodes' CPU ticks, then redis-server's
  local nodes=0 pid
  for i in 1 2 3; do pid=$(cat "$STOCKADE_CLUSTER_DIR/n$i/pid"); nodes=$((nodes + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
  echo "$nodes $(awk '{ print $14 + $15 }' "/proc/$(cat "$STOCKADE_CLUSTER_DIR/redis/pid")/stat")"
}
TIMEFORMAT='%U %S'

run() {  # transport kind repeat stock attempts [--hot]
  local dir="$OUT/$1-$2-$3" before after
  before=$(cpu_ticks)
  { time "$BIN/stockade-load" flash-sale --url "${URLS[$1]}" --stock "$4" --attempts "$5" --concurrency "$CONNECTIONS" \
    --warehouses 2 --no-progress --report-dir "$dir" "${@:6}" > "$dir.txt" ; } 2> "$dir.time"
  after=$(cpu_ticks)
  python3 - "$dir/report.json" "$1" "$2" "$3" "$before" "$after" "$(tail -1 "$dir.time")" "$TICKS_PER_S" >> "$OUT/runs.csv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
paths = r.get("paths", {})
before, after = [float(x) for x in sys.argv[5].split()], [float(x) for x in sys.argv[6].split()]
harness = sum(float(x) for x in sys.argv[7].split())
ticks, attempts = float(sys.argv[8]), max(1, r["attempts"])
per = lambda seconds: seconds * 1e6 / attempts
print(f"{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{r['throughputPerSecond']:.0f},{r['latencyMs']['p50']:.2f},{r['latencyMs']['p99']:.2f},"
      f"{r['granted']},{paths.get('cache', 0)},{paths.get('quorum', 0)},{r['verdict']},"
      f"{per((after[0] - before[0]) / ticks):.1f},{per((after[1] - before[1]) / ticks):.1f},{per(harness):.1f}")
PY
}

PARTS=${PARTS:-harness benchmark}
REQUESTS=${REQUESTS:-90000}

# Part 2: redis-benchmark over RESP, one process per node; CPU of the load alone.
benchmark() {  # kind repeat → a row of bench.csv
  local kind=$1 repeat=$2 per_node=$((REQUESTS / 3)) per_conn=$((CONNECTIONS / 3)) before after pids=() i start end
  before=$(cpu_ticks)
  start=$(date +%s.%N)
  for i in 1 2 3; do
    { time redis-benchmark -p "740$i" -a dev-checkout-token -c "$per_conn" -n "$per_node" -P 1 -r 2000000000 -q \
        RESERVE "b$kind$repeat-$i-__rand_int__-__rand_int__" o east 3600 1 "bench-$kind" 1 > "$OUT/bench-$kind-$repeat-n$i.txt" 2>&1 ; } \
      2> "$OUT/bench-$kind-$repeat-n$i.time" &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  after=$(cpu_ticks)
  local load=0 f
  for f in "$OUT"/bench-"$kind"-"$repeat"-n*.time; do load=$(awk -v a="$load" '{ print a + $1 + $2 }' "$f"); done
  python3 - "$kind" "$repeat" "$REQUESTS" "$start" "$end" "$before" "$after" "$load" "$TICKS_PER_S" >> "$OUT/bench.csv" <<'PY'
import sys
kind, repeat, requests, start, end = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
before, after = [float(x) for x in sys.argv[6].split()], [float(x) for x in sys.argv[7].split()]
load, ticks = float(sys.argv[8]), float(sys.argv[9])
per = lambda seconds: seconds * 1e6 / requests
print(f"{kind},{repeat},{requests / (end - start):.0f},{per((after[0] - before[0]) / ticks):.1f},{per((after[1] - before[1]) / ticks):.1f},{per(load):.1f}")
PY
}

echo "transport,kind,repeat,per_s,p50_ms,p99_ms,granted,cache,quorum,verdict,nodes_us,redis_us,harness_us" > "$OUT/runs.csv"
if [[ " $PARTS " == *" harness "* ]]; then
  for repeat in $(seq 1 "$REPEATS"); do
    for transport in http resp; do
      run "$transport" hot "$repeat" "$ATTEMPTS" "$ATTEMPTS" --hot
      run "$transport" cold "$repeat" "$ATTEMPTS" "$ATTEMPTS"
    done
  done
fi
if [[ " $PARTS " == *" harness "* || " $PARTS " == *" sale "* ]]; then
  for transport in http resp; do run "$transport" sale5000 1 5000 5000 --hot; done
fi

if [[ " $PARTS " == *" benchmark "* ]]; then
  CLI=(redis-cli -p 7401 -a dev-admin-token --no-auth-warning)
  for kind in hot cold; do
    for warehouse in yiwu guangzhou; do "${CLI[@]}" STOCK.SET "bench-$kind" "$warehouse" 500000000 >/dev/null; done
  done
  "${CLI[@]}" SKU.HOT bench-hot >/dev/null
  for _ in $(seq 1 100); do "${CLI[@]}" SKU bench-hot | grep -A1 -x allotted | tail -1 | grep -q '^[1-9]' && break; sleep 0.1; done
  echo "kind,repeat,per_s,nodes_us,redis_us,load_us" > "$OUT/bench.csv"
  for repeat in $(seq 1 "$REPEATS"); do
    benchmark hot "$repeat"
    benchmark cold "$repeat"
  done
  python3 - "$OUT/bench.csv" "$STOCKADE_CLUSTER_DIR" <<'PY'
import csv, statistics, sys, subprocess
rows = list(csv.DictReader(open(sys.argv[1])))
print("redis-benchmark over RESP, three nodes (CPU µs per reservation: nodes together, redis-server, redis-benchmark):")
for r in rows:
    print(f"  {r['kind']:4} #{r['repeat']}: {float(r['per_s']):8.0f}/s  nodes {r['nodes_us']}  redis {r['redis_us']}  load {r['load_us']}")
med = lambda kind, field: statistics.median(float(r[field]) for r in rows if r["kind"] == kind)
for kind in ("hot", "cold"):
    print(f"  {kind:4} medians: {med(kind, 'per_s'):.0f}/s, CPU nodes {med(kind, 'nodes_us'):.1f} + redis {med(kind, 'redis_us'):.1f}"
          f" + load {med(kind, 'load_us'):.1f} = {med(kind, 'nodes_us') + med(kind, 'redis_us') + med(kind, 'load_us'):.1f} µs")
print(f"  hot / cold: {med('hot', 'per_s') / med('cold', 'per_s'):.2f} (target 1.5)")
PY
  for kind in hot cold; do
    "${CLI[@]}" SKU "bench-$kind" | python3 "$(dirname "$0")/rows_check.py" "bench-$kind"
  done
fi

[[ $(wc -l < "$OUT/runs.csv") -gt 1 ]] && python3 - "$OUT/runs.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("harness runs:")
for r in rows:
    print(f"  {r['transport']:4} {r['kind']:8} #{r['repeat']}: {float(r['per_s']):8.0f}/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms"
          f"  granted {r['granted']} (cache {r['cache']}, quorum {r['quorum']})  verdict {r['verdict']}"
          f"  CPU µs/attempt: nodes {r['nodes_us']} redis {r['redis_us']} harness {r['harness_us']}")
def med(transport, kind):
    return statistics.median(float(r["per_s"]) for r in rows if r["transport"] == transport and r["kind"] == kind)
def cpu(transport, kind, field):
    return statistics.median(float(r[field]) for r in rows if r["transport"] == transport and r["kind"] == kind)
for transport in ("http", "resp"):
    sale = next((r for r in rows if r["transport"] == transport and r["kind"] == "sale5000"), None)
    if sale:
        print(f"{transport}: 5,000-unit sale: {int(sale['cache']) / max(1, int(sale['granted'])):.1%} of {sale['granted']} grants from the cache (target 90%)")
if not any(r["kind"] == "hot" for r in rows): sys.exit(0)
for transport in ("http", "resp"):
    for kind in ("hot", "cold"):
        parts = {f: cpu(transport, kind, f) for f in ("nodes_us", "redis_us", "harness_us")}
        print(f"{transport} {kind:4} CPU per attempt (medians, µs): nodes {parts['nodes_us']:.1f}  redis-server {parts['redis_us']:.1f}"
              f"  harness {parts['harness_us']:.1f}  total {sum(parts.values()):.1f}")
for transport in ("http", "resp"):
    hot, cold = med(transport, "hot"), med(transport, "cold")
    print(f"{transport}: hot {hot:.0f}/s, cold {cold:.0f}/s, hot / cold {hot / cold:.2f} (target 1.5)")
PY
echo "raw: $OUT"
