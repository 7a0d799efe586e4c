#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, property, API and
# integration tests against real node processes).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
swift build --build-tests
swift test --skip-build "$@"
