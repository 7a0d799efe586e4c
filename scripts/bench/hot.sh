#!/usr/bin/env bash
# Hot-SKU benchmark, all in one run against the same Redis (deploy/redis/redis.conf,
# appendfsync always): the hot reserve over HTTP (wrk, CONNECTIONS connections, every request a
# new reservation of a hot SKU) next to
#   - the same node's GET /healthz (wrk, same connections),
#   - redis-benchmark running EVALSHA of an equivalent gate script (scripts/bench/gate.lua),
#   - pgbench running `UPDATE … SET available = available - 1 WHERE … AND available >= 1` on one
#     PostgreSQL row at CONNECTIONS clients (fsync and synchronous_commit on).
# Each runs REPEATS times, alternating; medians are printed with the ratios and the cache's share
# of answers. The decrement queue keeps draining into the node's ledger throughout.
#
# Usage: scripts/bench/hot.sh   (DURATION=10 REPEATS=3 CONNECTIONS=256 to change)
set -euo pipefail
cd "$(dirname "$0")/../.."
STOCKADE_BENCH=1 . scripts/setup.sh
command -v pgbench >/dev/null 2>&1 || apt-get install -y -qq postgresql >/dev/null
DURATION=${DURATION:-10}
REPEATS=${REPEATS:-3}
CONNECTIONS=${CONNECTIONS:-256}
PORT=${PORT:-7193}
REDIS_PORT=${REDIS_PORT:-7394}
PG_PORT=${PG_PORT:-7395}
swift build -c release --product stockade-node >/dev/null
BIN="$(swift build -c release --show-bin-path)/stockade-node"
OUT="$PWD/bench-out/hot-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
URL="http://127.0.0.1:$PORT"
ADMIN="Authorization: Bearer dev-admin-token"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

cleanup() {
  kill "${NODE:-}" 2>/dev/null || true; wait "${NODE:-}" 2>/dev/null || true
  STOCKADE_REDIS_DIR="$OUT/redis" STOCKADE_REDIS_PORT=$REDIS_PORT deploy/local/redis.sh down >/dev/null 2>&1 || true
  su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $OUT/pg -m fast stop" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Redis, and the node using it.
STOCKADE_REDIS_DIR="$OUT/redis" STOCKADE_REDIS_PORT=$REDIS_PORT deploy/local/redis.sh up >/dev/null
cat > "$OUT/node.json" <<JSON
{"nodeId": "n1", "redis": {"port": $REDIS_PORT, "username": "stockade", "passwordFile": "$OUT/redis/password",
 "hotThresholdPerSecond": 0}}
JSON
"$BIN" --dev --config "$OUT/node.json" --data-dir "$OUT/data" --http "127.0.0.1:$PORT" --log-level warning 2>"$OUT/node.log" &
NODE=$!
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
for warehouse in yiwu guangzhou; do
  curl -sf -X PUT "$URL/v1/skus/bench/stock" -H "$ADMIN" -d "{\"warehouse\":\"$warehouse\",\"total\":250000000}" >/dev/null
done
curl -sf -X POST "$URL/v1/skus/bench/hot" -H "$ADMIN" >/dev/null
for _ in $(seq 1 100); do
  curl -sf "$URL/v1/skus/bench" -H "$ADMIN" | grep -q '"allotted":[1-9]' && break; sleep 0.1
done

# The gate script for redis-benchmark, with its own keys (a hot flag and a counter it never runs out of).
REDISCLI=(redis-cli -p "$REDIS_PORT" --user stockade --pass "$(cat "$OUT/redis/password")" --no-auth-warning)
SHA=$("${REDISCLI[@]}" SCRIPT LOAD "$(cat scripts/bench/gate.lua)")
"${REDISCLI[@]}" SET stockade:bench:hot 1 >/dev/null
"${REDISCLI[@]}" SET stockade:bench:allot 1000000000 >/dev/null

# PostgreSQL: one hot row.
mkdir -p "$OUT/pg" && chown postgres "$OUT/pg" && chmod 700 "$OUT/pg"
su postgres -s /bin/sh -c "$PGBIN/initdb -D $OUT/pg -A trust -U postgres" >/dev/null
su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $OUT/pg -l $OUT/pg/server.log -o '-p $PG_PORT -k /tmp -c max_connections=$((CONNECTIONS + 20)) -c shared_buffers=256MB' -w start" >/dev/null
PSQL=(psql -h /tmp -p "$PG_PORT" -U postgres -q)
"${PSQL[@]}" -c "CREATE TABLE stock (sku text PRIMARY KEY, available bigint NOT NULL)" \
  -c "INSERT INTO stock VALUES ('bench', 1000000000000)"
echo "UPDATE stock SET available = available - 1 WHERE sku = 'bench' AND available >= 1;" > "$OUT/pg.sql"

parse_wrk() {
  python3 scripts/bench/parse_wrk.py "$1" ,
}

# Where the CPU goes: the node's, redis-server's and wrk's CPU time over each HTTP run
# (ticks from /proc; wrk's from the shell's `time`), per request in the summary.
REDIS_PID=$(cat "$OUT/redis/pid")
TICKS_PER_S=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TIMEFORMAT='%U %S'
echo "repeat,kind,node_s,redis_s,wrk_s" > "$OUT/cpu.csv"
measured() {  # measured REPEAT KIND OUTPUT wrk-arguments...
  local repeat=$1 kind=$2 output=$3; shift 3
  local node0 redis0 node1 redis1
  node0=$(ticks "$NODE"); redis0=$(ticks "$REDIS_PID")
  { time wrk "$@" > "$output" ; } 2> "$output.time"
  node1=$(ticks "$NODE"); redis1=$(ticks "$REDIS_PID")
  echo "$repeat,$kind,$(awk -v a="$node0" -v b="$node1" -v t="$TICKS_PER_S" 'BEGIN { print (b - a) / t }'),$(awk -v a="$redis0" -v b="$redis1" -v t="$TICKS_PER_S" 'BEGIN { print (b - a) / t }'),$(awk '{ print $1 + $2 }' "$output.time")" >> "$OUT/cpu.csv"
}

echo "repeat,kind,per_s,p50_ms,p99_ms,non_2xx" > "$OUT/runs.csv"
requests=$((DURATION * 30000))
for repeat in $(seq 1 "$REPEATS"); do
  measured "$repeat" healthz "$OUT/healthz-$repeat.txt" -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$URL/healthz"
  echo "$repeat,healthz,$(parse_wrk "$OUT/healthz-$repeat.txt")" >> "$OUT/runs.csv"
  measured "$repeat" hot_reserve "$OUT/reserve-$repeat.txt" -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s scripts/bench/reserve.lua "$URL" -- "hot$repeat" bench dev-checkout-token
  echo "$repeat,hot_reserve,$(parse_wrk "$OUT/reserve-$repeat.txt")" >> "$OUT/runs.csv"
  redis-benchmark -p "$REDIS_PORT" --user stockade -a "$(cat "$OUT/redis/password")" -c "$CONNECTIONS" -n "$requests" -r 1000000000 -q \
    EVALSHA "$SHA" 5 "stockade:bench:res:__rand_int__" stockade:bench:token stockade:bench:holds stockade:bench:hot stockade:bench:allot \
    "id__rand_int__" digest order east 900000 1700000000000 2>/dev/null | tr '\r' '\n' | grep -a "requests per second" | tail -1 > "$OUT/redis-$repeat.txt" || true
  echo "$repeat,redis_gate,$(grep -ao '[0-9.]* requests per second' "$OUT/redis-$repeat.txt" | awk '{printf "%.0f", $1}'),,,0" >> "$OUT/runs.csv"
  "${REDISCLI[@]}" DEL stockade:bench:holds >/dev/null
  pgbench -h /tmp -p "$PG_PORT" -U postgres -n -c "$CONNECTIONS" -j 2 -T "$DURATION" -f "$OUT/pg.sql" postgres > "$OUT/pg-$repeat.txt" 2>&1
  echo "$repeat,pg_hot_row,$(grep -o 'tps = [0-9.]*' "$OUT/pg-$repeat.txt" | head -1 | awk '{printf "%.0f", $3}'),$(grep -o 'latency average = [0-9.]*' "$OUT/pg-$repeat.txt" | awk '{print $4}'),,0" >> "$OUT/runs.csv"
done
curl -sf "$URL/v1/cluster" -H "$ADMIN" > "$OUT/cluster.json"

python3 - "$OUT/runs.csv" "$OUT/cluster.json" "$OUT/cpu.csv" "$DURATION" <<'PY'
import csv, json, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cpu = list(csv.DictReader(open(sys.argv[3])))
duration = float(sys.argv[4])
def med(kind, field="per_s"):
    values = [float(r[field]) for r in rows if r["kind"] == kind and r[field] not in ("", "nan")]
    return statistics.median(values) if values else float("nan")
print("runs:")
for r in rows: print(f"  #{r['repeat']} {r['kind']:12} {float(r['per_s'] or 0):>9.0f}/s  p50 {r['p50_ms'] or '-':>6}  p99 {r['p99_ms'] or '-':>6}  non-2xx {r['non_2xx']}")
h, hot, gate, pg = med("healthz"), med("hot_reserve"), med("redis_gate"), med("pg_hot_row")
print(f"medians: healthz {h:.0f}/s, hot reserve {hot:.0f}/s (p50 {med('hot_reserve','p50_ms'):.2f} ms, p99 {med('hot_reserve','p99_ms'):.2f} ms), "
      f"redis-benchmark gate {gate:.0f}/s, pgbench hot row {pg:.0f} tps (mean latency {med('pg_hot_row','p50_ms'):.1f} ms)")
print(f"hot reserve / healthz: {hot / h:.2f}   hot reserve / pgbench hot row: {hot / pg:.1f}x   hot reserve / redis gate: {hot / gate:.2f}")
print("CPU per request, µs (medians; the node's includes draining the decrement queue meanwhile):")
for kind in ("healthz", "hot_reserve"):
    per = {}
    for c in cpu:
        if c["kind"] != kind: continue
        rate = next(float(r["per_s"]) for r in rows if r["kind"] == kind and r["repeat"] == c["repeat"])
        for part in ("node_s", "redis_s", "wrk_s"):
            per.setdefault(part, []).append(float(c[part]) * 1e6 / (rate * duration))
    m = {k: statistics.median(v) for k, v in per.items()}
    print(f"  {kind:12} node {m['node_s']:6.1f}  redis-server {m['redis_s']:6.1f}  wrk {m['wrk_s']:5.1f}  total {sum(m.values()):6.1f}")
cache = json.load(open(sys.argv[2])).get("cache", {})
print(f"cache: answered {cache.get('cacheAnswered')} vs quorum {cache.get('quorumAnswered')} (hit rate {cache.get('hitRate', 0):.3f}), "
      f"refills {cache.get('refills')}, queue pending {cache.get('queuePending')}, dead letters {cache.get('deadLetters')}, breaker {cache.get('breaker')}")
PY
echo "raw: $OUT"
