#!/usr/bin/env bash
# Single-node benchmark: reserve throughput and latency at 64 and 256 connections, side by side
# with the same server's GET /healthz, fsync on (a real data directory on disk). Each pair runs
# REPEATS times, alternating, and the medians are printed. Then it fills the node to 1,000,000
# active holds and prints the process's resident memory.
#
# Usage: scripts/bench/single-node.sh   (DURATION=10 REPEATS=3 HOLDS=1000000 PORT=7191 to change)
set -euo pipefail
cd "$(dirname "$0")/../.."
STOCKADE_BENCH=1 . scripts/setup.sh
DURATION=${DURATION:-10}
REPEATS=${REPEATS:-3}
HOLDS=${HOLDS:-1000000}
PORT=${PORT:-7191}
swift build -c release --product stockade-node >/dev/null
BIN="$(swift build -c release --show-bin-path)/stockade-node"
OUT="bench-out/single-node-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
URL="http://127.0.0.1:$PORT"
ADMIN="Authorization: Bearer dev-admin-token"

"$BIN" --dev --data-dir "$OUT/data" --http "127.0.0.1:$PORT" --log-level warning 2>"$OUT/node.log" &
NODE=$!
trap 'kill $NODE 2>/dev/null; wait $NODE 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
for warehouse in yiwu guangzhou beijing chengdu; do
  curl -sf -X PUT "$URL/v1/skus/bench/stock" -H "$ADMIN" -d "{\"warehouse\":\"$warehouse\",\"total\":250000000}" >/dev/null
done

# Both routes run once unmeasured first. A fresh process's first run is often slower (in 6 of 10
# fresh starts, the first /healthz ran 16-33% below the second), and a slow first /healthz
# flattered the first reserve/healthz pair.
wrk -t2 -c64 -d3s "$URL/healthz" >/dev/null
wrk -t2 -c64 -d3s -s scripts/bench/reserve.lua "$URL" -- warmup bench dev-checkout-token >/dev/null

# Prints "requests/s p50ms p99ms non2xx" from one wrk run's output.
parse() {
  python3 scripts/bench/parse_wrk.py "$1"
}

echo "run,connections,kind,requests_per_s,p50_ms,p99_ms,non_2xx" > "$OUT/runs.csv"
for connections in 64 256; do
  for repeat in $(seq 1 "$REPEATS"); do
    wrk -t2 -c"$connections" -d"${DURATION}s" --latency "$URL/healthz" > "$OUT/healthz-$connections-$repeat.txt"
    echo "$repeat,$connections,healthz,$(parse "$OUT/healthz-$connections-$repeat.txt" | tr ' ' ',')" >> "$OUT/runs.csv"
    wrk -t2 -c"$connections" -d"${DURATION}s" --latency -s scripts/bench/reserve.lua "$URL" -- "c$connections-r$repeat" bench dev-checkout-token > "$OUT/reserve-$connections-$repeat.txt"
    echo "$repeat,$connections,reserve,$(parse "$OUT/reserve-$connections-$repeat.txt" | tr ' ' ',')" >> "$OUT/runs.csv"
  done
done

metric() { curl -sf "$URL/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }
python3 - "$OUT/runs.csv" "$(curl -sf "$URL/metrics" | grep '^stockade_commit_batch_size_\(sum\|count\)' | awk '{print $2}' | paste -sd' ')" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def median(kind, connections, field):
    return statistics.median(float(r[field]) for r in rows if r["kind"] == kind and r["connections"] == str(connections))
print(f"{'connections':>11} {'healthz/s':>10} {'reserve/s':>10} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}  (medians)")
for c in (64, 256):
    h = median("healthz", c, "requests_per_s"); r = median("reserve", c, "requests_per_s")
    print(f"{c:>11} {h:>10.0f} {r:>10.0f} {r / h:>6.2f} {median('reserve', c, 'p50_ms'):>7.2f} {median('reserve', c, 'p99_ms'):>7.2f}")
# Each reserve run next to the healthz run just before it: the machine's speed drifts between
# runs, and a pair shares most of that drift.
for c in (64, 256):
    pairs = [float(r["requests_per_s"]) / float(h["requests_per_s"])
             for h, r in zip(rows, rows[1:])
             if h["kind"] == "healthz" and r["kind"] == "reserve" and h["connections"] == r["connections"] == str(c)]
    print(f"{c:>11} reserve/healthz per pair: {' '.join(f'{x:.2f}' for x in pairs)} (median {statistics.median(pairs):.2f})")
bad = sum(int(r["non_2xx"]) for r in rows if r["kind"] == "reserve")
print(f"reserve non-2xx answers: {bad}")
total, count = (float(x) for x in sys.argv[2].split())
print(f"mean commit batch: {total / count:.1f} commands per fsync over {count:.0f} fsyncs")
PY

# Resident memory at HOLDS active holds, on a fresh node (the runs above leave more than that).
# VmHWM is the peak, which includes the snapshots taken on the way.
kill $NODE; wait $NODE 2>/dev/null || true
"$BIN" --dev --data-dir "$OUT/data-rss" --http "127.0.0.1:$PORT" --log-level warning 2>>"$OUT/node.log" &
NODE=$!
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
for warehouse in yiwu guangzhou beijing chengdu; do
  curl -sf -X PUT "$URL/v1/skus/bench/stock" -H "$ADMIN" -d "{\"warehouse\":\"$warehouse\",\"total\":250000000}" >/dev/null
done
active=0
fill=0
while [ "${active:-0}" -lt "$HOLDS" ]; do
  fill=$((fill + 1))
  wrk -t2 -c64 -d2s -s scripts/bench/reserve.lua "$URL" -- "fill$fill" bench dev-checkout-token >/dev/null
  active=$(metric stockade_active_holds); active=${active%.*}
done
rss_kb=$(awk '/VmRSS/ { print $2 }' /proc/$NODE/status)
hwm_kb=$(awk '/VmHWM/ { print $2 }' /proc/$NODE/status)
echo "active holds: $active, resident memory: $((rss_kb / 1024)) MiB (peak $((hwm_kb / 1024)) MiB)"
echo "raw runs: $OUT/runs.csv"
