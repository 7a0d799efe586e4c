#!/usr/bin/env bash
# The API contract check: schemathesis runs docs/openapi.yaml against a running node with every
# check (--checks all) and every phase (examples, coverage, fuzzing, stateful), a bounded number of
# examples per operation. First it stocks the SKUs that schemathesis.toml's dictionaries name, so
# that generated requests can reach real stock. The exit status is schemathesis's: 0 means clean.
#
#   scripts/contract/run.sh URL ADMIN_TOKEN [more `st run` options]
#
# STOCKADE_CONTRACT_EXAMPLES (default 50) bounds the examples per operation; STOCKADE_CONTRACT_SEED
# (default fixed, so a failure reproduces) seeds the generator. The node must have the dev
# warehouses (yiwu, guangzhou, beijing, chengdu), as `stockade-node --dev` does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
url=${1:?usage: run.sh URL ADMIN_TOKEN [st run options]}
token=${2:?usage: run.sh URL ADMIN_TOKEN [st run options]}
shift 2

for sku in contract-tee contract-mug contract-cap; do
    for warehouse in yiwu guangzhou beijing chengdu; do
        curl -sf -X PUT "$url/v1/skus/$sku/stock" -H "Authorization: Bearer $token" \
            -d "{\"warehouse\":\"$warehouse\",\"total\":1000000}" > /dev/null
    done
done

# schemathesis keeps its example database in the working directory: use a scratch one.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/st" --no-color --config-file "$here/schemathesis.toml" run "$root/docs/openapi.yaml" --url "$url" \
    --checks all --phases examples,coverage,fuzzing,stateful \
    --max-examples "${STOCKADE_CONTRACT_EXAMPLES:-50}" --seed "${STOCKADE_CONTRACT_SEED:-20261130}" \
    --workers 1 -H "Authorization: Bearer $token" "$@"
