#!/usr/bin/env bash
# RESP benchmark, all in one run on this machine, with redis-benchmark as the load generator
# (CONNECTIONS connections, at -P 1 and at -P 16):
#   (a) RESERVE of a cold SKU on a single node (no Redis: the quorum path, fsynced group commits);
#   (b) RESERVE of a hot SKU on a single node with Redis (the batched gate);
#   (c) raw Redis: EVALSHA of an equivalent one-reservation gate (scripts/bench/gate.lua: answer
#       check, DECRBY, XADD, …) on the same redis-server, deploy/redis/redis.conf (appendfsync always);
#   (d) the HTTP reserve of the cold SKU on node (a), wrk at CONNECTIONS connections.
# Each runs REPEATS times, alternating; medians and the ratios the targets name are printed, with the
# mean gate batch size of (b). Every reservation id is unique (two independent random numbers per id;
# the held count after each run shows any replay), and nothing is oversold (checked after each run,
# the hot node's decrement queue drained first).
#
# Usage: scripts/bench/resp.sh   (REQUESTS=200000 REPEATS=3 CONNECTIONS=256 DURATION=10 to change)
set -euo pipefail
cd "$(dirname "$0")/../.."
STOCKADE_BENCH=1 . scripts/setup.sh
REQUESTS=${REQUESTS:-200000}
REPEATS=${REPEATS:-3}
CONNECTIONS=${CONNECTIONS:-256}
DURATION=${DURATION:-10}
COLD_HTTP=${COLD_HTTP:-7181}
COLD_RESP=${COLD_RESP:-7481}
HOT_HTTP=${HOT_HTTP:-7182}
HOT_RESP=${HOT_RESP:-7482}
REDIS_PORT=${REDIS_PORT:-7384}
swift build -c release --product stockade-node >/dev/null
BIN="$(swift build -c release --show-bin-path)/stockade-node"
OUT="$PWD/bench-out/resp-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
ADMIN="Authorization: Bearer dev-admin-token"

cleanup() {
  kill "${COLD:-}" "${HOT:-}" 2>/dev/null || true
  wait "${COLD:-}" "${HOT:-}" 2>/dev/null || true
  STOCKADE_REDIS_DIR="$OUT/redis" STOCKADE_REDIS_PORT=$REDIS_PORT deploy/local/redis.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

STOCKADE_REDIS_DIR="$OUT/redis" STOCKADE_REDIS_PORT=$REDIS_PORT deploy/local/redis.sh up >/dev/null
cat > "$OUT/hot.json" <<JSON
{"nodeId": "n1", "redis": {"port": $REDIS_PORT, "username": "stockade", "passwordFile": "$OUT/redis/password",
 "hotThresholdPerSecond": 0}}
JSON
"$BIN" --dev --data-dir "$OUT/cold-data" --http "127.0.0.1:$COLD_HTTP" --resp "127.0.0.1:$COLD_RESP" --log-level warning 2>"$OUT/cold.log" &
COLD=$!
"$BIN" --dev --config "$OUT/hot.json" --data-dir "$OUT/hot-data" --http "127.0.0.1:$HOT_HTTP" --resp "127.0.0.1:$HOT_RESP" --log-level warning 2>"$OUT/hot.log" &
HOT=$!
for port in $COLD_HTTP $HOT_HTTP; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
curl -sf -X PUT "http://127.0.0.1:$COLD_HTTP/v1/skus/cold/stock" -H "$ADMIN" -d '{"warehouse":"yiwu","total":500000000}' >/dev/null
for warehouse in yiwu guangzhou; do
  curl -sf -X PUT "http://127.0.0.1:$HOT_HTTP/v1/skus/hot/stock" -H "$ADMIN" -d "{\"warehouse\":\"$warehouse\",\"total\":250000000}" >/dev/null
done
curl -sf -X POST "http://127.0.0.1:$HOT_HTTP/v1/skus/hot/hot" -H "$ADMIN" >/dev/null
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$HOT_HTTP/v1/skus/hot" -H "$ADMIN" | grep -q '"allotted":[1-9]' && break; sleep 0.1
done

REDISCLI=(redis-cli -p "$REDIS_PORT" --user stockade --pass "$(cat "$OUT/redis/password")" --no-auth-warning)
SHA=$("${REDISCLI[@]}" SCRIPT LOAD "$(cat scripts/bench/gate.lua)")
"${REDISCLI[@]}" SET stockade:bench:hot 1 >/dev/null
"${REDISCLI[@]}" SET stockade:bench:allot 1000000000 >/dev/null

held() {  # held PORT SKU → units held over every row
  curl -sf "http://127.0.0.1:$1/v1/skus/$2" -H "$ADMIN" | python3 -c '
import json, sys
rows = json.load(sys.stdin)["warehouses"]
assert all(r["held"] + r["sold"] + r["allotted"] <= r["total"] and min(r["held"], r["sold"], r["allotted"]) >= 0 for r in rows), "OVERSOLD: %r" % rows
print(sum(r["held"] for r in rows))'
}
drain() {  # waits until the hot node's decrement queue is empty (twice in a row)
  local quiet=0
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$HOT_HTTP/v1/cluster" -H "$ADMIN" | grep -q '"queuePending":0,'; then quiet=$((quiet + 1)); else quiet=0; fi
    (( quiet >= 2 )) && return 0
    sleep 0.1
  done
  echo "decrement queue did not drain" >&2; return 1
}
metric() {  # metric NAME → the hot node's counter
  curl -sf "http://127.0.0.1:$HOT_HTTP/metrics" | awk -v name="$1" '$1 == name { printf "%.0f", $2 }'
}
rps() { tr '\r' '\n' < "$1" | grep -ao '[0-9.]* requests per second' | tail -1 | awk '{printf "%.0f", $1}'; }

echo "repeat,kind,pipeline,per_s,requests,held_delta,batch_mean" > "$OUT/runs.csv"
for repeat in $(seq 1 "$REPEATS"); do
  for pipeline in 1 16; do
    before=$(held $COLD_HTTP cold)
    redis-benchmark -p "$COLD_RESP" -a dev-checkout-token -c "$CONNECTIONS" -n "$REQUESTS" -P "$pipeline" -r 2000000000 -q \
      RESERVE "c$repeat-$pipeline-__rand_int__-__rand_int__" o east 3600 1 cold 1 > "$OUT/cold-$repeat-$pipeline.txt" 2>&1
    after=$(held $COLD_HTTP cold)
    echo "$repeat,cold_resp,$pipeline,$(rps "$OUT/cold-$repeat-$pipeline.txt"),$REQUESTS,$((after - before))," >> "$OUT/runs.csv"

    before=$(held $HOT_HTTP hot)
    batches0=$(metric stockade_cache_gate_batches_total); reserves0=$(metric stockade_cache_gate_reservations_total)
    redis-benchmark -p "$HOT_RESP" -a dev-checkout-token -c "$CONNECTIONS" -n "$REQUESTS" -P "$pipeline" -r 2000000000 -q \
      RESERVE "h$repeat-$pipeline-__rand_int__-__rand_int__" o east 3600 1 hot 1 > "$OUT/hot-$repeat-$pipeline.txt" 2>&1
    batches1=$(metric stockade_cache_gate_batches_total); reserves1=$(metric stockade_cache_gate_reservations_total)
    drain
    after=$(held $HOT_HTTP hot)
    mean=$(awk -v b=$((batches1 - batches0)) -v r=$((reserves1 - reserves0)) 'BEGIN { printf "%.2f", b ? r / b : 0 }')
    echo "$repeat,hot_resp,$pipeline,$(rps "$OUT/hot-$repeat-$pipeline.txt"),$REQUESTS,$((after - before)),$mean" >> "$OUT/runs.csv"

    redis-benchmark -p "$REDIS_PORT" --user stockade -a "$(cat "$OUT/redis/password")" -c "$CONNECTIONS" -n "$REQUESTS" -P "$pipeline" \
      -r 2000000000 -q EVALSHA "$SHA" 5 "stockade:bench:res:$repeat-$pipeline-__rand_int__-__rand_int__" stockade:bench:token \
      stockade:bench:holds stockade:bench:hot stockade:bench:allot "id__rand_int__" digest order east 900000 1700000000000 \
      > "$OUT/gate-$repeat-$pipeline.txt" 2>&1
    echo "$repeat,raw_gate,$pipeline,$(rps "$OUT/gate-$repeat-$pipeline.txt"),$REQUESTS,," >> "$OUT/runs.csv"
    "${REDISCLI[@]}" DEL stockade:bench:holds >/dev/null
  done
  before=$(held $COLD_HTTP cold)
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s scripts/bench/reserve.lua "http://127.0.0.1:$COLD_HTTP" -- "w$repeat" cold dev-checkout-token > "$OUT/http-$repeat.txt"
  after=$(held $COLD_HTTP cold)
  per_s=$(python3 scripts/bench/parse_wrk.py "$OUT/http-$repeat.txt" , | cut -d, -f1)
  echo "$repeat,cold_http,1,$per_s,,$((after - before))," >> "$OUT/runs.csv"
done

python3 - "$OUT/runs.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("runs:")
for r in rows:
    replays = "" if not r["requests"] else f"  replays/missing {int(r['requests']) - int(r['held_delta'] or 0)}"
    print(f"  #{r['repeat']} {r['kind']:10} -P {r['pipeline']:>2} {float(r['per_s'] or 0):>9.0f}/s  held +{r['held_delta'] or '-'}{replays}"
          + (f"  mean batch {r['batch_mean']}" if r["batch_mean"] else ""))
def med(kind, pipeline, field="per_s"):
    values = [float(r[field]) for r in rows if r["kind"] == kind and r["pipeline"] == str(pipeline) and r[field]]
    return statistics.median(values) if values else float("nan")
for p in (1, 16):
    cold, hot, gate = med("cold_resp", p), med("hot_resp", p), med("raw_gate", p)
    print(f"-P {p:>2}: cold RESERVE {cold:.0f}/s, hot RESERVE {hot:.0f}/s (mean batch {med('hot_resp', p, 'batch_mean'):.1f}), raw EVALSHA gate {gate:.0f}/s")
    print(f"        hot / raw EVALSHA {hot / gate:.2f} (target {'1.0' if p == 1 else '0.5'})")
http = med("cold_http", 1)
print(f"HTTP reserve (wrk, {rows and 'same connections'}) {http:.0f}/s; cold RESERVE -P 16 / HTTP {med('cold_resp', 16) / http:.2f} (target 2.0)")
PY
echo "raw: $OUT"
