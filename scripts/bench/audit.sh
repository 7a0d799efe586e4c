#!/usr/bin/env bash
# What stockadectl's node-side calls cost on a large ledger: fills a release node with HOLDS held
# holds (redis-benchmark, unique ids), then times `stockadectl audit`, `stockadectl stats`'s
# /v1/stats and, side by side, `cluster status` (a call that reads nothing of the ledger), REPEATS
# times each, and prints medians. The audit's ledger half runs under the node's read lock, so its
# time is also how long it holds back applying. Runs by hand; prints figures, asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/setup.sh
HOLDS=${HOLDS:-1000000}
REPEATS=${REPEATS:-5}
OUT=$(mktemp -d /tmp/stockade-audit-bench.XXXXXX)
swift build -c release --product stockade-node >/dev/null
swift build -c release --product stockadectl >/dev/null
BIN=.build/release
HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RESP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/stockade-node" --dev --data-dir "$OUT/data" --http "127.0.0.1:$HTTP_PORT" --resp "127.0.0.1:$RESP_PORT" --log-level warning > "$OUT/node.log" 2>&1 &
NODE=$!
trap 'kill $NODE 2>/dev/null; wait $NODE 2>/dev/null; rm -rf "$OUT"' EXIT
for _ in $(seq 1 200); do curl -sf "127.0.0.1:$HTTP_PORT/healthz" >/dev/null && break; sleep 0.05; done
export STOCKADE_SERVER="resp://127.0.0.1:$RESP_PORT" STOCKADE_TOKEN=dev-admin-token
"$BIN/stockadectl" sku set-stock bench --warehouse yiwu --total 1000000000000 >/dev/null
redis-benchmark -p "$RESP_PORT" -a dev-checkout-token -c 64 -n "$HOLDS" -P 16 -r 2000000000 -q \
  RESERVE "a-__rand_int__-__rand_int__" o east 3600 1 bench 1 > "$OUT/fill.txt" 2>&1
held=$("$BIN/stockadectl" stats -o json --interval 100ms | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["holds"]["active"])')
echo "held holds: $held"
ms() { python3 -c 'import sys,time,subprocess; t=time.monotonic(); subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=False); print(round((time.monotonic()-t)*1000,1))' "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
audit=(); stats=(); cluster=()
for _ in $(seq 1 "$REPEATS"); do
  audit+=("$(ms "$BIN/stockadectl" audit)")
  stats+=("$(ms curl -sf -H 'Authorization: Bearer dev-admin-token' "127.0.0.1:$HTTP_PORT/v1/stats")")
  cluster+=("$(ms "$BIN/stockadectl" cluster status)")
done
a=$(printf '%s\n' "${audit[@]}" | median); s=$(printf '%s\n' "${stats[@]}" | median); c=$(printf '%s\n' "${cluster[@]}" | median)
echo "audit runs (ms): ${audit[*]}"
echo "stats runs (ms): ${stats[*]}"
echo "cluster status runs (ms): ${cluster[*]}"
echo "medians at $held held holds: audit $a ms, /v1/stats $s ms, cluster status $c ms; audit/cluster status $(python3 -c "print(round($a/$c,1))")"
