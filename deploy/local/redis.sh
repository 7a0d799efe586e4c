#!/usr/bin/env bash
# A local Redis for Stockade, with deploy/redis/redis.conf, on 127.0.0.1:${STOCKADE_REDIS_PORT:-7300}
# (and the addresses in STOCKADE_REDIS_BIND, space-separated, instead when set).
#
#   deploy/local/redis.sh up      start it (state in .local-redis/, or $STOCKADE_REDIS_DIR)
#   deploy/local/redis.sh down    stop it (SHUTDOWN as the admin user, falling back to the pid)
#   deploy/local/redis.sh status
#
# It writes an ACL file with two users: `stockade` (Stockade's keys only, nothing @dangerous) whose
# password is in $dir/password, and `default` (every permission, for shutdown and inspection;
# see the note in deploy/redis/redis.conf) whose password is in $dir/admin-password.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${STOCKADE_REDIS_DIR:-$root/.local-redis}"
port="${STOCKADE_REDIS_PORT:-7300}"

password_for() {  # file → password (created on first use)
    [[ -s "$1" ]] || { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$1"; chmod 600 "$1"; }
    cat "$1"
}

up() {
    mkdir -p "$dir/data"
    local password admin
    password="$(password_for "$dir/password")"
    admin="$(password_for "$dir/admin-password")"
    cat > "$dir/users.acl" <<ACL
user default on >$admin ~* &* +@all
user stockade on >$password ~stockade:* resetchannels -@all +@read +@write +@stream +@scripting +ping +auth +hello -@dangerous
ACL
    chmod 600 "$dir/users.acl"
    if [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then echo "redis already running (pid $(cat "$dir/pid"))"; return; fi
    # STOCKADE_REDIS_BIND: the addresses to listen on instead of the config's loopback ones.
    local bind=()
    [[ -n "${STOCKADE_REDIS_BIND:-}" ]] && bind=(--bind $STOCKADE_REDIS_BIND)
    redis-server "$root/deploy/redis/redis.conf" --port "$port" --dir "$dir/data" --aclfile "$dir/users.acl" "${bind[@]}" \
        >> "$dir/redis.log" 2>&1 < /dev/null &
    echo $! > "$dir/pid"
    for _ in $(seq 1 100); do
        if redis-cli -p "$port" --user default --pass "$admin" --no-auth-warning ping 2>/dev/null | grep -q PONG; then
            echo "redis up on 127.0.0.1:$port (pid $(cat "$dir/pid")); user stockade, password in $dir/password"
            return
        fi
        sleep 0.1
    done
    echo "redis did not start; see $dir/redis.log" >&2
    exit 1
}

down() {
    [[ -f "$dir/pid" ]] || { echo "redis not running"; return; }
    local pid
    pid="$(cat "$dir/pid")"
    if kill -0 "$pid" 2>/dev/null; then
        redis-cli -p "$port" --user default --pass "$(cat "$dir/admin-password")" --no-auth-warning shutdown >/dev/null 2>&1 || kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$dir/pid"
    echo "redis stopped"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status)
        if [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then echo "running (pid $(cat "$dir/pid"))"; else echo "stopped"; fi ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
