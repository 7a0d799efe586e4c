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
# Usage: scripts/bench/hot-cluster.sh   (CONNECTIONS=256 ATTEMPTS=60000 REPEATS=3 to change)
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

echo "transport,kind,repeat,per_s,p50_ms,p99_ms,granted,cache,quorum,verdict,nodes_us,redis_us,harness_us" > "$OUT/runs.csv"
for repeat in $(seq 1 "$REPEATS"); do
  for transport in http resp; do
    run "$transport" hot "$repeat" "$ATTEMPTS" "$ATTEMPTS" --hot
    run "$transport" cold "$repeat" "$ATTEMPTS" "$ATTEMPTS"
  done
done
for transport in http resp; do run "$transport" sale5000 1 5000 5000 --hot; done

python3 - "$OUT/runs.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("runs:")
for r in rows:
    print(f"  {r['transport']:4} {r['kind']:8} #{r['repeat']}: {float(r['per_s']):8.0f}/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms"
          f"  granted {r['granted']} (cache {r['cache']}, quorum {r['quorum']})  verdict {r['verdict']}"
          f"  CPU µs/attempt: nodes {r['nodes_us']} redis {r['redis_us']} harness {r['harness_us']}")
def med(transport, kind):
    return statistics.median(float(r["per_s"]) for r in rows if r["transport"] == transport and r["kind"] == kind)
def cpu(transport, kind, field):
    return statistics.median(float(r[field]) for r in rows if r["transport"] == transport and r["kind"] == kind)
for transport in ("http", "resp"):
    for kind in ("hot", "cold"):
        parts = {f: cpu(transport, kind, f) for f in ("nodes_us", "redis_us", "harness_us")}
        print(f"{transport} {kind:4} CPU per attempt (medians, µs): nodes {parts['nodes_us']:.1f}  redis-server {parts['redis_us']:.1f}"
              f"  harness {parts['harness_us']:.1f}  total {sum(parts.values()):.1f}")
for transport in ("http", "resp"):
    hot, cold = med(transport, "hot"), med(transport, "cold")
    sale = next(r for r in rows if r["transport"] == transport and r["kind"] == "sale5000")
    share = int(sale["cache"]) / max(1, int(sale["granted"]))
    print(f"{transport}: hot {hot:.0f}/s, cold {cold:.0f}/s, hot / cold {hot / cold:.2f} (target 1.5); "
          f"5,000-unit sale: {share:.1%} of {sale['granted']} grants from the cache (target 90%)")
PY
echo "raw: $OUT"
