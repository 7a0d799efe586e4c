#!/usr/bin/env bash
# The main job: installs what is missing, builds a release node and runs a development node
# (four demo warehouses, dev tokens), HTTP on 127.0.0.1:7101 and RESP on 127.0.0.1:7401, with its
# data in .local-node/. Extra arguments go to stockade-node, e.g. --http 127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
swift build -c release --product stockade-node
exec "$(swift build -c release --show-bin-path)/stockade-node" --dev --data-dir .local-node --http 127.0.0.1:7101 --resp 127.0.0.1:7401 "$@"
