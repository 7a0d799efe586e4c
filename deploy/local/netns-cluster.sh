#!/usr/bin/env bash
# A three-node Stockade cluster with each node in its own network namespace, so that a real
# network partition can be made and healed (root and iproute2 needed). For the fallback tests and
# for trying partitions by hand.
#
#   deploy/local/netns-cluster.sh up [--redis] create the namespaces and links, write configs, start n1..n3, wait for a leader;
#                                              --redis also starts redis-server on this host (port 7300, STOCKADE_REDIS_PORT),
#                                              reachable from node nI at 10.232.I.1, and gives every node the hot path
#   deploy/local/netns-cluster.sh partition nI cut nI off from the other nodes (its client link stays up)
#   deploy/local/netns-cluster.sh one-way nI   drop what nI sends to the other nodes; what they send still reaches it
#   deploy/local/netns-cluster.sh heal         undo every partition, symmetric or one-way
#   deploy/local/netns-cluster.sh kill nI      SIGKILL a node;  start nI: start it again on its data
#   deploy/local/netns-cluster.sh pause nI     SIGSTOP a node;  resume nI: SIGCONT it
#   deploy/local/netns-cluster.sh clock nI MS  move nI's wall clock by MS milliseconds (debug builds only; 0 puts it back)
#   deploy/local/netns-cluster.sh redis-kill   SIGKILL redis-server;  redis-start: start it again on its data
#   deploy/local/netns-cluster.sh down         stop the nodes (and Redis); delete the namespaces, links and bridge; keep the state directory
#   deploy/local/netns-cluster.sh status       each node's /v1/cluster view
#
# The network: a bridge joins the nodes' cluster links (node nI is 10.231.0.I inside its namespace;
# peers talk on port 7200, nodes relay reads on port 7100). Each node also has a client link of its
# own to this host: from here, node nI answers HTTP on 10.232.I.2:7100 (and RESP on 10.232.I.2:7400).
# A partition takes nI's cluster link down, so clients still reach it while its peers do not.
#
# Warehouses: yiwu (east) is owned by n3, guangzhou (south) by n1, chengdu (west) by n2, each with
# a local reserve of 200 units per SKU by default; beijing (north) has no owner.
# Environment: STOCKADE_NODE_BIN (the binary; built in release otherwise), STOCKADE_CLUSTER_DIR
# (state, .netns-cluster/ by default), STOCKADE_NETNS_PREFIX (names of namespaces and links, "stk"
# by default; at most 6 characters), STOCKADE_QUORUM_DEADLINE_MS (2000), STOCKADE_ADMIN_TOKEN /
# STOCKADE_CHECKOUT_TOKEN, STOCKADE_LOG_LEVEL, STOCKADE_UP_TIMEOUT (seconds, 120).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state="${STOCKADE_CLUSTER_DIR:-$root/.netns-cluster}"
prefix="${STOCKADE_NETNS_PREFIX:-stk}"
admin_token="${STOCKADE_ADMIN_TOKEN:-dev-admin-token}"
checkout_token="${STOCKADE_CHECKOUT_TOKEN:-dev-checkout-token}"
deadline_ms="${STOCKADE_QUORUM_DEADLINE_MS:-2000}"
count=3
export PATH="/opt/swift/usr/bin:$PATH"

die() { echo "netns-cluster.sh: $*" >&2; exit 2; }

(( ${#prefix} <= 6 )) || die "STOCKADE_NETNS_PREFIX must be at most 6 characters (interface names are at most 15)"
namespace() { echo "${prefix}-n$1"; }
bridge="${prefix}-br"
cluster_link() { echo "${prefix}-c$1"; }   # the bridge's end of node I's cluster link
client_link() { echo "${prefix}-h$1"; }    # this host's end of node I's client link
client_ip() { echo "10.232.$1.2"; }

node_bin() {
    if [[ -n "${STOCKADE_NODE_BIN:-}" ]]; then echo "$STOCKADE_NODE_BIN"; return; fi
    (cd "$root" && swift build -c release --product stockade-node >&2)
    echo "$(cd "$root" && swift build -c release --show-bin-path)/stockade-node"
}

check_name() {
    [[ "${1:-}" =~ ^n([1-3])$ ]] || die "node names are n1..n3, not '${1:-}'"
    echo "${BASH_REMATCH[1]}"
}

# Removes everything this prefix created; safe to run when nothing exists.
teardown_network() {
    local i
    for ((i = 1; i <= count; i++)); do
        ip netns pids "$(namespace "$i")" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        ip netns del "$(namespace "$i")" 2>/dev/null || true
        ip link del "$(cluster_link "$i")" 2>/dev/null || true
        ip link del "$(client_link "$i")" 2>/dev/null || true
    done
    ip link del "$bridge" 2>/dev/null || true
}

setup_network() {
    teardown_network
    ip link add "$bridge" type bridge
    ip link set "$bridge" up
    local i ns
    for ((i = 1; i <= count; i++)); do
        ns="$(namespace "$i")"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        # The cluster link: eth0 in the namespace, its peer on the bridge.
        ip link add "$(cluster_link "$i")" type veth peer name "${prefix}-x$i"
        ip link set "${prefix}-x$i" netns "$ns"
        ip -n "$ns" link set "${prefix}-x$i" name eth0
        ip -n "$ns" addr add "10.231.0.$i/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip link set "$(cluster_link "$i")" master "$bridge"
        ip link set "$(cluster_link "$i")" up
        # The client link: eth1 in the namespace, its peer here.
        ip link add "$(client_link "$i")" type veth peer name "${prefix}-y$i"
        ip link set "${prefix}-y$i" netns "$ns"
        ip -n "$ns" link set "${prefix}-y$i" name eth1
        ip -n "$ns" addr add "$(client_ip "$i")/24" dev eth1
        ip -n "$ns" link set eth1 up
        ip addr add "10.232.$i.1/24" dev "$(client_link "$i")"
        ip link set "$(client_link "$i")" up
    done
}

write_configs() {
    local i members=""
    for ((i = 1; i <= count; i++)); do
        members+="${members:+,}{\"id\":\"n$i\",\"http\":\"10.231.0.$i:7100\",\"peer\":\"10.231.0.$i:7200\"}"
    done
    mkdir -p "$state"
    if [[ ! -s "$state/secret" ]]; then
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/secret"
        chmod 600 "$state/secret"
    fi
    for ((i = 1; i <= count; i++)); do
        mkdir -p "$state/n$i/data"
        local redis_entry=""
        if [[ -f "$state/redis/password" ]]; then
            # Each node reaches Redis on this host through its own client link.
            redis_entry=",
  \"redis\": {\"host\": \"10.232.$i.1\", \"port\": ${STOCKADE_REDIS_PORT:-7300}, \"username\": \"stockade\", \"passwordFile\": \"$state/redis/password\"${STOCKADE_HOT_THRESHOLD:+, \"hotThresholdPerSecond\": $STOCKADE_HOT_THRESHOLD}}"
        fi
        cat > "$state/n$i/config.json" <<JSON
{
  "nodeId": "n$i",
  "http": "0.0.0.0:7100",
  "resp": "0.0.0.0:7400",
  "dataDir": "$state/n$i/data",
  "warehouses": [
    {"id": "yiwu", "regions": ["east"], "priority": 1, "owner": "n3", "localReserve": {"units": 200}},
    {"id": "guangzhou", "regions": ["south"], "priority": 2, "owner": "n1", "localReserve": {"units": 200}},
    {"id": "beijing", "regions": ["north"], "priority": 3},
    {"id": "chengdu", "regions": ["west"], "priority": 4, "owner": "n2", "localReserve": {"units": 200}}
  ],
  "tokens": {"admin": ["sha256:$(printf %s "$admin_token" | sha256sum | cut -d' ' -f1)"], "checkout": ["sha256:$(printf %s "$checkout_token" | sha256sum | cut -d' ' -f1)"]},
  "cluster": {"nodes": [$members], "secretFile": "$state/secret", "quorumDeadlineMs": $deadline_ms},
  "logLevel": "${STOCKADE_LOG_LEVEL:-notice}"$redis_entry
}
JSON
    done
}

start_node() {
    local i="$1" bin="$2"
    # A session of its own: a SIGSTOPped node must not leave a stopped member in this shell's
    # process group, which the kernel would answer with SIGHUP to the whole group.
    ip netns exec "$(namespace "$i")" setsid nohup "$bin" --config "$state/n$i/config.json" >> "$state/n$i/node.log" 2>&1 < /dev/null &
    echo $! > "$state/n$i/pid"
    echo "n$i started in $(namespace "$i") (pid $!)"
}

# Redis on this host, listening on loopback and on every node's client link (10.232.I.1).
redis_up() {
    local binds="127.0.0.1" i
    for ((i = 1; i <= count; i++)); do binds+=" 10.232.$i.1"; done
    STOCKADE_REDIS_DIR="$state/redis" STOCKADE_REDIS_BIND="$binds" "$root/deploy/local/redis.sh" up
}

wait_ready() {
    local deadline=$((SECONDS + ${STOCKADE_UP_TIMEOUT:-120})) i leader all body
    while (( SECONDS < deadline )); do
        leader=""
        all=1
        for ((i = 1; i <= count; i++)); do
            body="$(curl -s -m 1 -H "Authorization: Bearer $checkout_token" "http://$(client_ip "$i"):7100/v1/cluster" || true)"
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
        [[ "$(id -u)" == 0 ]] || die "network namespaces need root"
        command -v ip > /dev/null || die "ip (iproute2) is needed"
        redis=0
        [[ "${1:-}" == "--redis" ]] && redis=1
        bin="$(node_bin)"
        setup_network
        if (( redis )); then
            redis_up
        else
            rm -f "$state/redis/password"
        fi
        write_configs
        for ((i = 1; i <= count; i++)); do start_node "$i" "$bin"; done
        wait_ready
        ;;
    partition)
        i="$(check_name "${1:-}")"
        ip link set "$(cluster_link "$i")" down
        echo "n$i cut off from its peers"
        ;;
    one-way)
        i="$(check_name "${1:-}")"
        for ((j = 1; j <= count; j++)); do
            (( j == i )) || ip -n "$(namespace "$i")" route replace blackhole "10.231.0.$j/32"
        done
        echo "n$i's packets to its peers are dropped; theirs still reach it"
        ;;
    heal)
        for ((i = 1; i <= count; i++)); do
            ip link set "$(cluster_link "$i")" up 2>/dev/null || true
            for ((j = 1; j <= count; j++)); do ip -n "$(namespace "$i")" route del blackhole "10.231.0.$j/32" 2>/dev/null || true; done
        done
        echo "healed"
        ;;
    kill)
        i="$(check_name "${1:-}")"
        kill -KILL "$(cat "$state/n$i/pid")" 2>/dev/null || die "n$i is not running"
        echo "n$i killed"
        ;;
    start)
        i="$(check_name "${1:-}")"
        pid="$(cat "$state/n$i/pid" 2>/dev/null || true)"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then echo "n$i already running"; exit 0; fi
        start_node "$i" "$(node_bin)"
        ;;
    pause|resume)
        i="$(check_name "${1:-}")"
        kill "-$([[ "$cmd" == pause ]] && echo STOP || echo CONT)" "$(cat "$state/n$i/pid")" || die "n$i is not running"
        echo "n$i ${cmd}d"
        ;;
    clock)
        i="$(check_name "${1:-}")"
        [[ "${2:-}" =~ ^-?[0-9]+$ ]] || die "clock nI MS: MS is an integer"
        curl -sf -m 2 -X PUT -H "Authorization: Bearer $admin_token" "http://$(client_ip "$i"):7100/v1/debug/clock-offset?ms=$2" > /dev/null \
            || die "n$i did not take the clock offset (debug builds only)"
        echo "n$i clock moved by $2 ms"
        ;;
    redis-kill)
        kill -KILL "$(cat "$state/redis/pid")" 2>/dev/null || die "redis is not running"
        rm -f "$state/redis/pid"
        echo "redis killed"
        ;;
    redis-start)
        redis_up
        ;;
    down)
        pids=()
        for ((i = 1; i <= count; i++)); do
            pid="$(cat "$state/n$i/pid" 2>/dev/null || true)"
            if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; pids+=("$pid"); fi
        done
        deadline=$((SECONDS + 10))
        for pid in "${pids[@]}"; do
            while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        done
        for ((i = 1; i <= count; i++)); do rm -f "$state/n$i/pid"; done
        if [[ -f "$state/redis/pid" ]]; then STOCKADE_REDIS_DIR="$state/redis" "$root/deploy/local/redis.sh" down; fi
        teardown_network
        echo "stopped ${#pids[@]} node(s); namespaces removed"
        ;;
    status)
        for ((i = 1; i <= count; i++)); do
            body="$(curl -s -m 2 -H "Authorization: Bearer $checkout_token" "http://$(client_ip "$i"):7100/v1/cluster" || true)"
            echo "n$i ${body:-not answering}"
        done
        ;;
    *)
        sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
        [[ -z "$cmd" ]] && exit 0 || exit 2
        ;;
esac
