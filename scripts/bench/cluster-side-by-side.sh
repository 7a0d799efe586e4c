#!/usr/bin/env bash
# Three-node cluster benchmark of two node builds, in alternating pairs (A, B, A, B, …): each run
# brings up a fresh three-node cluster of that build (deploy/local/cluster.sh), drives it with the
# load harness (flash sale, closed loop, CONNECTIONS connections spread over all three nodes), and
# tears it down. Prints each pair, the medians and the B/A throughput ratio per pair.
#
# Usage: A_BIN=old/stockade-node B_BIN=new/stockade-node scripts/bench/cluster-side-by-side.sh
#   PAIRS=5 CONNECTIONS=256 ATTEMPTS=60000
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/setup.sh
PAIRS=${PAIRS:-5}
CONNECTIONS=${CONNECTIONS:-256}
ATTEMPTS=${ATTEMPTS:-60000}
: "${A_BIN:?set A_BIN}" "${B_BIN:?set B_BIN}"
swift build -c release --product stockade-load >/dev/null
LOAD="$(swift build -c release --show-bin-path)/stockade-load"
OUT="bench-out/cluster-side-by-side-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
export STOCKADE_ADMIN_TOKEN=dev-admin-token STOCKADE_CHECKOUT_TOKEN=dev-checkout-token STOCKADE_LOG_LEVEL=notice
export STOCKADE_EVENT_LOOP_THREADS="${CLUSTER_EVENT_LOOP_THREADS:-1}"
URLS="http://127.0.0.1:7101,http://127.0.0.1:7102,http://127.0.0.1:7103"
trap 'deploy/local/cluster.sh down >/dev/null 2>&1 || true' EXIT

run() {  # side pair
  local bin dir="$OUT/$1-$2"
  if [ "$1" = A ]; then bin=$A_BIN; else bin=$B_BIN; fi
  STOCKADE_NODE_BIN="$bin" STOCKADE_CLUSTER_DIR="$PWD/$dir/cluster" deploy/local/cluster.sh up --nodes 3 > "$dir-up.txt"
  "$LOAD" flash-sale --url "$URLS" --stock "$ATTEMPTS" --attempts "$ATTEMPTS" \
    --concurrency "$CONNECTIONS" --warehouses 2 --no-progress --report-dir "$dir" > "$dir.txt"
  STOCKADE_CLUSTER_DIR="$PWD/$dir/cluster" deploy/local/cluster.sh down >/dev/null 2>&1 || true
  python3 - "$dir/report.json" "$1" "$2" >> "$OUT/runs.csv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[3]},{sys.argv[2]},{r['throughputPerSecond']:.0f},{r['latencyMs']['p50']:.2f},{r['latencyMs']['p99']:.2f},{r['verdict']}")
PY
}

echo "pair,side,reservations_per_s,p50_ms,p99_ms,verdict" > "$OUT/runs.csv"
for pair in $(seq 1 "$PAIRS"); do
  run A "$pair"
  run B "$pair"
done
python3 - "$OUT/runs.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
side = lambda s: [r for r in rows if r["side"] == s]
for a, b in zip(side("A"), side("B")):
    print(f"pair {a['pair']}: A {float(a['reservations_per_s']):>7.0f}/s p99 {float(a['p99_ms']):6.2f} ms {a['verdict']}   "
          f"B {float(b['reservations_per_s']):>7.0f}/s p99 {float(b['p99_ms']):6.2f} ms {b['verdict']}   "
          f"B/A {float(b['reservations_per_s']) / float(a['reservations_per_s']):.3f}")
med = lambda s, f: statistics.median(float(r[f]) for r in side(s))
ratios = [float(b["reservations_per_s"]) / float(a["reservations_per_s"]) for a, b in zip(side("A"), side("B"))]
print(f"medians: A {med('A', 'reservations_per_s'):.0f}/s p50 {med('A', 'p50_ms'):.2f} p99 {med('A', 'p99_ms'):.2f} ms; "
      f"B {med('B', 'reservations_per_s'):.0f}/s p50 {med('B', 'p50_ms'):.2f} p99 {med('B', 'p99_ms'):.2f} ms; "
      f"B/A per pair median {statistics.median(ratios):.3f}")
PY
echo "raw: $OUT"
