#!/usr/bin/env bash
# Makes a fresh machine ready to build and test Stockade: the Swift toolchain on PATH and the
# system packages the build, tests and benchmarks use. Safe to run again; installs only what is missing.
# Source it (". scripts/setup.sh") so that PATH changes stay in the caller's shell.
set -euo pipefail

if ! command -v swift >/dev/null 2>&1; then
  for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
    if [ -x "$candidate/swift" ]; then export PATH="$candidate:$PATH"; break; fi
  done
fi
if ! command -v swift >/dev/null 2>&1; then
  echo "setup: no Swift toolchain found; install Swift 6.1 or newer and put it on PATH" >&2
  exit 1
fi

missing=()
for tool in curl:curl python3:python3 pkg-config:pkg-config redis-server:redis-server redis-cli:redis-tools ip:iproute2 tmux:tmux \
    promtool:prometheus prometheus:prometheus systemd-analyze:systemd openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
# hiredis, the C Redis client the HotStock module links.
[ -f /usr/include/hiredis/hiredis.h ] || missing+=(libhiredis-dev)
# PyYAML, for the deploy-file checks (Kubernetes manifests).
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
# Lua 5.1 (the version Redis embeds), which the simulator runs the node's Redis scripts in.
[ -f /usr/include/lua5.1/lua.h ] || missing+=(liblua5.1-0-dev)
# SQLite, where the order pipeline keeps its state.
[ -f /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
for tool in redis-benchmark:redis-tools; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ "${STOCKADE_BENCH:-0}" = "1" ]; then
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
# The `redis` package from PyPI: the RESP integration tests drive the node with it.
if ! python3 -c 'import redis' >/dev/null 2>&1; then
  python3 -m pip install -q redis >/dev/null
fi
# schemathesis, which checks docs/openapi.yaml against a real node (scripts/contract/run.sh).
# Pinned: its checks and generation change between releases, and the contract test must not.
# Its command lands in Python's scripts directory, which need not be on PATH.
st_bin="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/st"
if ! "$st_bin" --version 2>/dev/null | grep -q ' 4\.32\.5$'; then
  python3 -m pip install -q 'schemathesis==4.32.5' >/dev/null
fi
