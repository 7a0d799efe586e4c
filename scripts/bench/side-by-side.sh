#!/usr/bin/env bash
# Side-by-side single-node reserve benchmark of two node builds (or two settings of one), in
# alternating pairs on fresh data directories: A, B, A, B, … Each run starts a fresh node, stocks
# it, warms it up, then runs wrk at CONNECTIONS connections for DURATION seconds. Prints every
# pair and the medians of rate, p50 and p99, and the B/A rate ratio.
#
# Usage: A_BIN=path/to/old/stockade-node B_BIN=path/to/new/stockade-node scripts/bench/side-by-side.sh
#   A_ENV / B_ENV: extra environment for each side, e.g. B_ENV="STOCKADE_X=1"
#   PAIRS=5 DURATION=10 CONNECTIONS=64 PORT=7193
set -euo pipefail
cd "$(dirname "$0")/../.."
PAIRS=${PAIRS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-7193}
: "${A_BIN:?set A_BIN}" "${B_BIN:?set B_BIN}"
OUT="bench-out/side-by-side-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
URL="http://127.0.0.1:$PORT"
ADMIN="Authorization: Bearer dev-admin-token"
NODE=""
trap '[ -n "$NODE" ] && kill $NODE 2>/dev/null; wait 2>/dev/null || true' EXIT

run() { # side, pair
  local side=$1 pair=$2 bin env
  if [ "$side" = A ]; then bin=$A_BIN; env=${A_ENV:-}; else bin=$B_BIN; env=${B_ENV:-}; fi
  rm -rf "$OUT/data"
  env $env "$bin" --dev --data-dir "$OUT/data" --http "127.0.0.1:$PORT" --log-level warning 2>>"$OUT/node-$side.log" &
  NODE=$!
  for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
  for warehouse in yiwu guangzhou beijing chengdu; do
    curl -sf -X PUT "$URL/v1/skus/bench/stock" -H "$ADMIN" -d "{\"warehouse\":\"$warehouse\",\"total\":250000000}" >/dev/null
  done
  wrk -t2 -c"$CONNECTIONS" -d3s -s scripts/bench/reserve.lua "$URL" -- "warm-$side-$pair" bench dev-checkout-token >/dev/null
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s scripts/bench/reserve.lua "$URL" -- "run-$side-$pair" bench dev-checkout-token \
    > "$OUT/$side-$pair.txt"
  echo "$pair,$side,$(python3 scripts/bench/parse_wrk.py "$OUT/$side-$pair.txt" | tr ' ' ',')" >> "$OUT/runs.csv"
  kill $NODE; wait $NODE 2>/dev/null || true
  NODE=""
}

echo "pair,side,requests_per_s,p50_ms,p99_ms,non_2xx" > "$OUT/runs.csv"
for pair in $(seq 1 "$PAIRS"); do
  run A "$pair"
  run B "$pair"
done
python3 - "$OUT/runs.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
side = lambda s: [r for r in rows if r["side"] == s]
for a, b in zip(side("A"), side("B")):
    print(f"pair {a['pair']}: A {float(a['requests_per_s']):>8.0f}/s p99 {float(a['p99_ms']):6.2f} ms   "
          f"B {float(b['requests_per_s']):>8.0f}/s p99 {float(b['p99_ms']):6.2f} ms   B/A {float(b['requests_per_s']) / float(a['requests_per_s']):.3f}")
med = lambda s, f: statistics.median(float(r[f]) for r in side(s))
ratios = [float(b["requests_per_s"]) / float(a["requests_per_s"]) for a, b in zip(side("A"), side("B"))]
print(f"medians: A {med('A', 'requests_per_s'):.0f}/s p50 {med('A', 'p50_ms'):.2f} p99 {med('A', 'p99_ms'):.2f} ms; "
      f"B {med('B', 'requests_per_s'):.0f}/s p50 {med('B', 'p50_ms'):.2f} p99 {med('B', 'p99_ms'):.2f} ms; "
      f"B/A per pair median {statistics.median(ratios):.3f}")
print("non-2xx:", sum(int(r["non_2xx"]) for r in rows))
PY
echo "raw runs: $OUT/runs.csv"
