#!/usr/bin/env bash
# Cluster benchmark: three nodes on this machine against a single node, side by side in one run,
# both driven by the load harness (stockade-load flash-sale, closed loop, every attempt granted)
# with CONNECTIONS connections; for the cluster they are spread over all three nodes. Runs
# alternate single/cluster REPEATS times and the medians are printed, with the ratio, and the
# entries per fsync (log batch size) each node saw.
#
# The three cluster nodes share this machine's cores, so each runs one event-loop thread
# (CLUSTER_EVENT_LOOP_THREADS, default 1); the single node keeps the default of one per core.
#
# Usage: scripts/bench/cluster.sh   (CONNECTIONS=256 ATTEMPTS=60000 REPEATS=3 to change)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/setup.sh
CONNECTIONS=${CONNECTIONS:-256}
ATTEMPTS=${ATTEMPTS:-60000}
REPEATS=${REPEATS:-3}
SINGLE_PORT=${SINGLE_PORT:-7191}
swift build -c release --product stockade-node >/dev/null
swift build -c release --product stockade-load >/dev/null
BIN="$(swift build -c release --show-bin-path)"
OUT="bench-out/cluster-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
export STOCKADE_ADMIN_TOKEN=dev-admin-token STOCKADE_CHECKOUT_TOKEN=dev-checkout-token
export STOCKADE_NODE_BIN="$BIN/stockade-node" STOCKADE_CLUSTER_DIR="$PWD/$OUT/cluster" STOCKADE_LOG_LEVEL=notice
export STOCKADE_EVENT_LOOP_THREADS="${CLUSTER_EVENT_LOOP_THREADS:-1}"
SINGLE_URL="http://127.0.0.1:$SINGLE_PORT"
CLUSTER_URLS="http://127.0.0.1:7101,http://127.0.0.1:7102,http://127.0.0.1:7103"

"$BIN/stockade-node" --dev --data-dir "$OUT/single" --http "127.0.0.1:$SINGLE_PORT" --log-level warning 2>"$OUT/single.log" &
SINGLE=$!
trap 'kill $SINGLE 2>/dev/null; wait $SINGLE 2>/dev/null || true; deploy/local/cluster.sh down >/dev/null 2>&1 || true' EXIT
deploy/local/cluster.sh up --nodes 3 > "$OUT/cluster-up.txt"
for _ in $(seq 1 100); do curl -sf "$SINGLE_URL/healthz" >/dev/null && break; sleep 0.1; done

run() {  # kind repeat urls
  local dir="$OUT/$1-$2"
  "$BIN/stockade-load" flash-sale --url "$3" --stock "$ATTEMPTS" --attempts "$ATTEMPTS" \
    --concurrency "$CONNECTIONS" --warehouses 2 --no-progress --report-dir "$dir" > "$dir.txt"
  python3 - "$dir/report.json" "$1" "$2" >> "$OUT/runs.csv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]},{sys.argv[3]},{r['throughputPerSecond']:.0f},{r['latencyMs']['p50']:.2f},{r['latencyMs']['p99']:.2f},{r['granted']},{r['verdict']}")
PY
}

batch() {  # url → "sum count"
  curl -sf "$1/metrics" | grep '^stockade_commit_batch_size_\(sum\|count\)' | awk '{print $2}' | paste -sd' '
}

echo "kind,repeat,reservations_per_s,p50_ms,p99_ms,granted,verdict" > "$OUT/runs.csv"
for repeat in $(seq 1 "$REPEATS"); do
  run single "$repeat" "$SINGLE_URL"
  run cluster "$repeat" "$CLUSTER_URLS"
done
{
  echo "single $(batch "$SINGLE_URL")"
  for i in 1 2 3; do echo "n$i $(batch "http://127.0.0.1:710$i") $(curl -sf -H "Authorization: Bearer dev-checkout-token" "http://127.0.0.1:710$i/v1/cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin)["role"])')"; done
} > "$OUT/batches.txt"

python3 - "$OUT/runs.csv" "$OUT/batches.txt" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def med(kind, field): return statistics.median(float(r[field]) for r in rows if r["kind"] == kind)
print("runs:")
for r in rows: print(f"  {r['kind']:7} #{r['repeat']}: {float(r['reservations_per_s']):8.0f}/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  verdict {r['verdict']}")
print(f"medians   single: {med('single','reservations_per_s'):.0f}/s p50 {med('single','p50_ms'):.2f} ms p99 {med('single','p99_ms'):.2f} ms")
print(f"          cluster: {med('cluster','reservations_per_s'):.0f}/s p50 {med('cluster','p50_ms'):.2f} ms p99 {med('cluster','p99_ms'):.2f} ms")
print(f"cluster / single throughput: {med('cluster','reservations_per_s') / med('single','reservations_per_s'):.2f}")
print("entries per fsync (whole run):")
for line in open(sys.argv[2]):
    parts = line.split()
    if len(parts) >= 3 and float(parts[2]) > 0:
        print(f"  {parts[0]:7} {float(parts[1]) / float(parts[2]):6.1f}  ({int(float(parts[2]))} fsyncs) {' '.join(parts[3:])}")
PY
echo "loop turns of 25 ms or more (each node; fsync and apply time are in $OUT/cluster/n*/node.log):"
for i in 1 2 3; do
  echo "  n$i $(grep -c 'slow loop turn' "$OUT/cluster/n$i/node.log" || true)"
done
echo "raw: $OUT"
