#!/usr/bin/env bash
# The local-warehouse fallback, measured on a real partition (root and iproute2 needed): three
# nodes in network namespaces (deploy/local/netns-cluster.sh); n3, which owns yiwu (east), is cut
# off; HOLDS reserves for east go to n3 from CONCURRENCY clients at once. Prints the latency of
# those answers (all should be `201 path: local`) against the quorum deadline, then heals and
# prints how long n3 takes to reconcile every provisional hold into the ledger, and checks that
# the ledger then holds exactly HOLDS units of the SKU.
#
# Usage: scripts/bench/fallback.sh   (HOLDS=10000 CONCURRENCY=256 DEADLINE_MS=2000 STOCKADE_NODE_BIN=…)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/setup.sh
HOLDS=${HOLDS:-10000}
CONCURRENCY=${CONCURRENCY:-256}
DEADLINE_MS=${DEADLINE_MS:-2000}
if [[ -z "${STOCKADE_NODE_BIN:-}" ]]; then
  swift build -c release --product stockade-node >/dev/null
  export STOCKADE_NODE_BIN="$(swift build -c release --show-bin-path)/stockade-node"
fi
OUT="bench-out/fallback-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
export STOCKADE_CLUSTER_DIR="$PWD/$OUT/cluster" STOCKADE_NETNS_PREFIX=stkb STOCKADE_QUORUM_DEADLINE_MS=$DEADLINE_MS
export STOCKADE_ADMIN_TOKEN=dev-admin-token STOCKADE_CHECKOUT_TOKEN=dev-checkout-token STOCKADE_LOG_LEVEL=notice
trap 'deploy/local/netns-cluster.sh down >/dev/null 2>&1 || true' EXIT
deploy/local/netns-cluster.sh up > "$OUT/up.txt"

python3 - "$HOLDS" "$CONCURRENCY" "$DEADLINE_MS" <<'PY'
import http.client, json, sys, threading, time, statistics

holds, concurrency, deadline_ms = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ADMIN = {"Authorization": "Bearer dev-admin-token", "Content-Type": "application/json"}
CHECKOUT = {"Authorization": "Bearer dev-checkout-token", "Content-Type": "application/json"}
def host(node): return f"10.232.{node}.2"

def call(node, method, path, body=None, headers=ADMIN, timeout=30):
    connection = http.client.HTTPConnection(host(node), 7100, timeout=timeout)
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, json.loads(data or b"{}")

def wait(what, condition, within=60):
    end = time.time() + within
    while time.time() < end:
        try:
            if condition(): return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"timed out waiting for {what}")

for warehouse, total in [("yiwu", holds + 2000), ("guangzhou", 1000)]:
    status, body = call(1, "PUT", "/v1/skus/mug/stock", {"warehouse": warehouse, "total": total})
    assert status == 200, body
status, body = call(1, "PUT", "/v1/skus/mug/local-reserve", {"warehouse": "yiwu", "units": holds + 1000})
assert status == 200, body
def reserve_ready():
    status, body = call(3, "GET", "/v1/skus/mug/local-reserve?consistency=local")
    yiwu = [r for r in body.get("reserves", []) if r["warehouse"] == "yiwu"]
    return yiwu and yiwu[0]["reserved"] == holds + 1000 and call(3, "GET", "/v1/cluster")[1].get("local", {}).get("epoch")
wait("n3's reserve", reserve_ready)

import subprocess
subprocess.run(["deploy/local/netns-cluster.sh", "partition", "n3"], check=True, stdout=subprocess.DEVNULL)
wait("a leader among n1 and n2", lambda: call(1, "GET", "/v1/cluster")[1].get("leaderId") in ("n1", "n2"))
time.sleep(2)

latencies, outcomes, lock = [], {}, threading.Lock()
def worker(index):
    connection = http.client.HTTPConnection(host(3), 7100, timeout=30)
    for n in range(index, holds, concurrency):
        body = json.dumps({"reservationId": f"fb-{n}", "orderId": f"o-{n}", "region": "east",
                           "lines": [{"sku": "mug", "quantity": 1}]})
        start = time.perf_counter()
        connection.request("POST", "/v1/reservations", body=body, headers=CHECKOUT)
        response = connection.getresponse()
        answer = json.loads(response.read())
        took = time.perf_counter() - start
        kind = f"{response.status} {answer.get('path') or answer.get('error', {}).get('code')}"
        with lock:
            latencies.append(took)
            outcomes[kind] = outcomes.get(kind, 0) + 1
began = time.time()
threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.time() - began
latencies.sort()
q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
print(f"fallback: {holds} reserves at the cut-off node, {concurrency} at once, in {elapsed:.1f} s: {outcomes}")
print(f"fallback latency (request to answer): median {q(0.5):.0f} ms, p99 {q(0.99):.0f} ms, max {latencies[-1]*1000:.0f} ms; deadline {deadline_ms} ms (median - deadline {q(0.5) - deadline_ms:.0f} ms)")

subprocess.run(["deploy/local/netns-cluster.sh", "heal"], check=True, stdout=subprocess.DEVNULL)
healed = time.time()
def reconciled():
    local = call(3, "GET", "/v1/cluster")[1].get("local", {})
    return local.get("provisionalHolds") == 0
wait("reconciliation", reconciled, within=600)
took = time.time() - healed
print(f"reconcile: {holds} provisional holds in the ledger {took:.2f} s after healing")
status, body = call(1, "GET", "/v1/skus/mug")
yiwu = [r for r in body["warehouses"] if r["warehouse"] == "yiwu"][0]
print(f"ledger after: yiwu {yiwu}")
assert yiwu["held"] == outcomes.get("201 local", 0), "held units differ from local grants"
assert yiwu["held"] + yiwu["sold"] + yiwu["allotted"] <= yiwu["total"], "oversold"
PY
