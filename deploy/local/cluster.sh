#!/usr/bin/env bash
# A Stockade cluster on this machine, for development, tests and benchmarks.
#
#   deploy/local/cluster.sh up [--nodes 3|5] [--redis]
#                                              build if needed, write configs, start n1..nN, wait until a leader serves;
#                                              --redis also starts redis-server (deploy/redis/redis.conf) on
#                                              127.0.0.1:7300 (STOCKADE_REDIS_PORT) and gives every node the hot path
#   deploy/local/cluster.sh down               stop (SIGTERM, then SIGKILL after 10 s) exactly the nodes this tool started
#   deploy/local/cluster.sh status             each node's process and its /v1/cluster view
#   deploy/local/cluster.sh kill nI            SIGKILL one node
#   deploy/local/cluster.sh start nI           start one node again with its existing data
#
# Node nI serves HTTP on 127.0.0.1:710I, RESP (the TCP API) on 127.0.0.1:740I and peers on 127.0.0.1:720I. Everything (configs, data,
# logs, pid files, the cluster secret) lives under .local-cluster/ at the repository root.
# Environment: STOCKADE_NODE_BIN (use this binary instead of building), STOCKADE_BUILD_CONFIG
# (release by default), STOCKADE_ADMIN_TOKEN / STOCKADE_CHECKOUT_TOKEN (dev tokens by default),
# STOCKADE_CLUSTER_DIR (another state directory), STOCKADE_HTTP_PORT_BASE / STOCKADE_PEER_PORT_BASE /
# STOCKADE_RESP_PORT_BASE (7100 / 7200 / 7400: node nI uses base + I; tests move them out of the way
# of a running dev cluster),
# STOCKADE_SNAPSHOT_INTERVAL (log entries between snapshots, 200000 by default),
# STOCKADE_HOT_THRESHOLD (with --redis: reservations/s per SKU for automatic promotion; 0 turns it off),
# STOCKADE_TLS_DIR (TLS on HTTP, RESP and peers: node nI uses nI.crt/nI.key there, or node.crt/node.key,
# and ca.crt, whose authority peers must present a certificate from; see docs/deploying.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state="${STOCKADE_CLUSTER_DIR:-$root/.local-cluster}"
admin_token="${STOCKADE_ADMIN_TOKEN:-dev-admin-token}"
checkout_token="${STOCKADE_CHECKOUT_TOKEN:-dev-checkout-token}"
http_base="${STOCKADE_HTTP_PORT_BASE:-7100}"
peer_base="${STOCKADE_PEER_PORT_BASE:-7200}"
resp_base="${STOCKADE_RESP_PORT_BASE:-7400}"
export PATH="/opt/swift/usr/bin:$PATH"

die() { echo "cluster.sh: $*" >&2; exit 2; }

node_bin() {
    if [[ -n "${STOCKADE_NODE_BIN:-}" ]]; then echo "$STOCKADE_NODE_BIN"; return; fi
    local config="${STOCKADE_BUILD_CONFIG:-release}"
    (cd "$root" && swift build -c "$config" --product stockade-node >&2)
    echo "$(cd "$root" && swift build -c "$config" --show-bin-path)/stockade-node"
}

node_count() { cat "$state/nodes" 2>/dev/null || echo 0; }

check_name() {
    [[ "${1:-}" =~ ^n([1-9])$ ]] || die "node names are n1..n9, not '${1:-}'"
    local count; count="$(node_count)"
    (( ${BASH_REMATCH[1]} <= count )) || die "$1 is not part of the cluster in $state (nodes: $count)"
}

pid_alive() {
    # Alive and still the process we started (same command line), not a reused pid.
    local name="$1" pid
    pid="$(cat "$state/$name/pid" 2>/dev/null)" || return 1
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--config $state/$name/config.json"
}

write_configs() {
    local count="$1" i members=""
    for ((i = 1; i <= count; i++)); do
        members+="${members:+,}{\"id\":\"n$i\",\"http\":\"127.0.0.1:$((http_base + i))\",\"peer\":\"127.0.0.1:$((peer_base + i))\"}"
    done
    mkdir -p "$state"
    if [[ ! -s "$state/secret" ]]; then
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/secret"
        chmod 600 "$state/secret"
    fi
    local redis_entry=""
    if [[ -f "$state/redis/password" ]]; then
        redis_entry=",
  \"redis\": {\"port\": ${STOCKADE_REDIS_PORT:-7300}, \"username\": \"stockade\", \"passwordFile\": \"$state/redis/password\"${STOCKADE_HOT_THRESHOLD:+, \"hotThresholdPerSecond\": $STOCKADE_HOT_THRESHOLD}}"
    fi
    local tls_entry=""
    if [[ -n "${STOCKADE_TLS_DIR:-}" ]]; then
        tls_entry=",
  \"tls\": {\"certificateFile\": \"@CERT@\", \"keyFile\": \"@KEY@\", \"caFile\": \"$STOCKADE_TLS_DIR/ca.crt\"}"
    fi
    local threads_entry=""
    if [[ -n "${STOCKADE_EVENT_LOOP_THREADS:-}" ]]; then
        threads_entry=",
  \"eventLoopThreads\": $STOCKADE_EVENT_LOOP_THREADS"
    fi
    for ((i = 1; i <= count; i++)); do
        mkdir -p "$state/n$i/data"
        local cert="${STOCKADE_TLS_DIR:-}/node.crt" key="${STOCKADE_TLS_DIR:-}/node.key"
        if [[ -f "${STOCKADE_TLS_DIR:-}/n$i.crt" ]]; then cert="$STOCKADE_TLS_DIR/n$i.crt" key="$STOCKADE_TLS_DIR/n$i.key"; fi
        local node_tls="${tls_entry//@CERT@/$cert}"
        node_tls="${node_tls//@KEY@/$key}"
        cat > "$state/n$i/config.json" <<JSON
{
  "nodeId": "n$i",
  "http": "127.0.0.1:$((http_base + i))",
  "resp": "127.0.0.1:$((resp_base + i))",
  "dataDir": "$state/n$i/data",
  "warehouses": [
    {"id": "yiwu", "regions": ["east"], "priority": 1},
    {"id": "guangzhou", "regions": ["south"], "priority": 2},
    {"id": "beijing", "regions": ["north"], "priority": 3},
    {"id": "chengdu", "regions": ["west"], "priority": 4}
  ],
  "tokens": {"admin": ["sha256:$(printf %s "$admin_token" | sha256sum | cut -d' ' -f1)"], "checkout": ["sha256:$(printf %s "$checkout_token" | sha256sum | cut -d' ' -f1)"]},
  "cluster": {"nodes": [$members], "secretFile": "$state/secret"},
  "limits": {"snapshotIntervalEntries": ${STOCKADE_SNAPSHOT_INTERVAL:-200000}},
  "logLevel": "${STOCKADE_LOG_LEVEL:-info}"$threads_entry$redis_entry$node_tls
}
JSON
    done
    echo "$count" > "$state/nodes"
}

start_node() {
    local name="$1" bin="$2"
    if pid_alive "$name"; then echo "$name already running (pid $(cat "$state/$name/pid"))"; return; fi
    nohup "$bin" --config "$state/$name/config.json" >> "$state/$name/node.log" 2>&1 < /dev/null &
    echo $! > "$state/$name/pid"
    echo "$name started (pid $!)"
}

http_port() { echo "$((http_base + ${1#n}))"; }

# GET a node's HTTP API path, over TLS (checked against the cluster's CA) when the cluster uses it.
node_get() {
    local name="$1" path="$2" timeout="$3"
    if [[ -n "${STOCKADE_TLS_DIR:-}" ]]; then
        curl -s -m "$timeout" --cacert "$STOCKADE_TLS_DIR/ca.crt" -H "Authorization: Bearer $checkout_token" \
            "https://127.0.0.1:$(http_port "$name")$path"
    else
        curl -s -m "$timeout" -H "Authorization: Bearer $checkout_token" "http://127.0.0.1:$(http_port "$name")$path"
    fi
}

wait_ready() {
    # Until every running node answers, and one of them leads.
    local deadline=$((SECONDS + ${STOCKADE_UP_TIMEOUT:-120})) count i leader
    count="$(node_count)"
    while (( SECONDS < deadline )); do
        leader=""
        local all=1
        for ((i = 1; i <= count; i++)); do
            pid_alive "n$i" || continue
            local body
            body="$(node_get "n$i" /v1/cluster 1 || true)"
            [[ -n "$body" ]] || { all=0; continue; }
            [[ "$body" == *'"role":"leader"'* ]] && leader="n$i"
        done
        if (( all )) && [[ -n "$leader" ]]; then echo "ready: $leader leads"; return 0; fi
        sleep 0.2
    done
    die "the cluster did not become ready; see $state/n*/node.log"
}

cmd="${1:-}"; shift || true
case "$cmd" in
    up)
        count=3
        redis=0
        while [[ $# -gt 0 ]]; do
            case "$1" in
                --nodes) count="${2:-}"; shift 2 ;;
                --redis) redis=1; shift ;;
                *) die "unknown option $1" ;;
            esac
        done
        [[ "$count" == 3 || "$count" == 5 ]] || die "--nodes must be 3 or 5"
        if [[ -f "$state/nodes" && "$(node_count)" != "$count" ]]; then
            for ((i = 1; i <= $(node_count); i++)); do pid_alive "n$i" && die "a $(node_count)-node cluster is running; run down first"; done
            rm -rf "$state"
        fi
        bin="$(node_bin)"
        if (( redis )); then
            STOCKADE_REDIS_DIR="$state/redis" "$root/deploy/local/redis.sh" up
        else
            rm -f "$state/redis/password"
        fi
        write_configs "$count"
        for ((i = 1; i <= count; i++)); do start_node "n$i" "$bin"; done
        wait_ready
        ;;
    down)
        count="$(node_count)"
        pids=()
        for ((i = 1; i <= count; i++)); do
            if pid_alive "n$i"; then pid="$(cat "$state/n$i/pid")"; kill -TERM "$pid"; pids+=("$pid"); fi
        done
        deadline=$((SECONDS + 10))
        for pid in "${pids[@]}"; do
            while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        done
        for ((i = 1; i <= count; i++)); do rm -f "$state/n$i/pid"; done
        echo "stopped ${#pids[@]} node(s)"
        if [[ -f "$state/redis/pid" ]]; then STOCKADE_REDIS_DIR="$state/redis" "$root/deploy/local/redis.sh" down; fi
        ;;
    status)
        count="$(node_count)"
        (( count > 0 )) || { echo "no cluster in $state"; exit 0; }
        for ((i = 1; i <= count; i++)); do
            if pid_alive "n$i"; then
                body="$(node_get "n$i" /v1/cluster 2 || true)"
                echo "n$i up (pid $(cat "$state/n$i/pid")) ${body:-not answering}"
            else
                echo "n$i down"
            fi
        done
        ;;
    kill)
        check_name "${1:-}"
        pid_alive "$1" || die "$1 is not running"
        kill -KILL "$(cat "$state/$1/pid")"
        echo "$1 killed"
        ;;
    start)
        check_name "${1:-}"
        start_node "$1" "$(node_bin)"
        ;;
    *)
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
        [[ -z "$cmd" ]] && exit 0 || exit 2
        ;;
esac
