#!/usr/bin/env bash
# The order pipeline's throughput: a generated 42,000-order peak day (four channel files) ingested
# by `stockade-orders ingest` into a fresh release node, over RESP and over HTTP, alternating,
# REPEATS times each; prints each run and the medians. Every order id is unique (the generator
# numbers them), and after each run the script checks that the node holds and sold exactly what
# the pipeline says (no replay was counted as work). Runs by hand; prints figures, asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/setup.sh
ORDERS=${ORDERS:-42000}
REPEATS=${REPEATS:-3}
CONCURRENCY=${CONCURRENCY:-64}
CONNECTIONS=${CONNECTIONS:-8}
OUT=$(mktemp -d /tmp/stockade-orders-bench.XXXXXX)
swift build -c release --product stockade-node >/dev/null
swift build -c release --product stockade-orders >/dev/null
swift build -c release --product stockadectl >/dev/null
BIN=.build/release
NODE=""
cleanup() { [ -n "$NODE" ] && kill "$NODE" 2>/dev/null && wait "$NODE" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT
"$BIN/stockade-orders" generate --orders "$ORDERS" --skus 200 --out-dir "$OUT/feed" >/dev/null
echo "feed: $(cat "$OUT"/feed/*.jsonl | wc -l) lines of $ORDERS orders"
python3 -c '
import sys
print("sku,warehouse,total")
for i in range(200):
    for w in ("yiwu", "guangzhou", "beijing", "chengdu"):
        print(f"sku-{i:04d},{w},1000000")' > "$OUT/stock.csv"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "repeat,transport,orders_per_s,seconds,calls,retries,held_ok" > "$OUT/runs.csv"
for repeat in $(seq 1 "$REPEATS"); do
  for transport in resp http; do
    HTTP_PORT=$(free_port); RESP_PORT=$(free_port)
    rm -rf "$OUT/node" "$OUT/pipe"
    "$BIN/stockade-node" --dev --data-dir "$OUT/node" --http "127.0.0.1:$HTTP_PORT" --resp "127.0.0.1:$RESP_PORT" --log-level warning > "$OUT/node.log" 2>&1 &
    NODE=$!
    for _ in $(seq 1 200); do curl -sf "127.0.0.1:$HTTP_PORT/healthz" >/dev/null && break; sleep 0.05; done
    "$BIN/stockadectl" --server "127.0.0.1:$RESP_PORT" --token dev-admin-token sku import "$OUT/stock.csv" >/dev/null
    if [ "$transport" = resp ]; then URL="resp://127.0.0.1:$RESP_PORT"; else URL="http://127.0.0.1:$HTTP_PORT"; fi
    "$BIN/stockade-orders" ingest --server "$URL" --token dev-checkout-token --data-dir "$OUT/pipe" --no-progress --json \
      --concurrency "$CONCURRENCY" --connections "$CONNECTIONS" "$OUT"/feed/*.jsonl > "$OUT/run.json"
    # The node's held and sold against the pipeline's reserved and confirmed units.
    "$BIN/stockade-orders" orders --data-dir "$OUT/pipe" > "$OUT/orders.jsonl"
    held_ok=$(python3 - "$OUT/orders.jsonl" "$RESP_PORT" "$BIN/stockadectl" <<'PY'
import json, subprocess, sys
held = sold = 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    units = sum(l["quantity"] for l in o["lines"])
    if o["state"] in ("reserved", "paid"): held += units
    if o["state"] == "confirmed": sold += units
stats = json.loads(subprocess.run([sys.argv[3], "--server", "127.0.0.1:" + sys.argv[2], "--token", "dev-admin-token", "stats", "-o", "json",
                                   "--interval", "100ms"], capture_output=True, text=True).stdout)["stats"]
ledger_held = sum(s["held"] for s in stats["skus"]); ledger_sold = sum(s["sold"] for s in stats["skus"])
# stats lists the 20 busiest SKUs only; the full check sums every SKU
total_held = total_sold = 0
for i in range(200):
    sku = json.loads(subprocess.run([sys.argv[3], "--server", "127.0.0.1:" + sys.argv[2], "--token", "dev-admin-token", "sku", "show",
                                     f"sku-{i:04d}", "-o", "json"], capture_output=True, text=True).stdout)
    total_held += sum(r["held"] for r in sku["warehouses"]); total_sold += sum(r["sold"] for r in sku["warehouses"])
print("yes" if (total_held, total_sold) == (held, sold) else f"NO ledger {total_held}/{total_sold} pipeline {held}/{sold}")
PY
)
    python3 - "$OUT/run.json" "$repeat" "$transport" "$held_ok" >> "$OUT/runs.csv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
print(f'{sys.argv[2]},{sys.argv[3]},{r["ordersPerSecond"]:.0f},{s["seconds"]:.1f},{s["calls"]},{s["retries"]},{sys.argv[4]}')
PY
    kill "$NODE"; wait "$NODE" 2>/dev/null || true; NODE=""
  done
done
cat "$OUT/runs.csv"
python3 - "$OUT/runs.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
med = {t: statistics.median(float(r["orders_per_s"]) for r in rows if r["transport"] == t) for t in ("resp", "http")}
print(f'medians: RESP {med["resp"]:.0f} orders/s, HTTP {med["http"]:.0f} orders/s, RESP/HTTP {med["resp"]/med["http"]:.2f}')
PY
