#!/usr/bin/env bash
# Development TLS material for nodes on this machine, made with openssl.
#
#   deploy/local/tls.sh DIR [NAME…]
#
# Makes a certificate authority in DIR (ca.crt, ca.key) unless one is there, then for each NAME
# (default: node) a key and a certificate signed by it (NAME.key, NAME.crt) for 127.0.0.1, ::1 and
# localhost, plus the names in STOCKADE_TLS_HOSTS (comma-separated DNS names), good for both server
# and client use (a node presents the same certificate to its peers). Keys are P-256, 0600.
# Use them with `stockade-node --tls-cert DIR/node.crt --tls-key DIR/node.key --tls-ca DIR/ca.crt`
# or `STOCKADE_TLS_DIR=DIR deploy/local/cluster.sh up`. Not for production: there, certificates
# come from your own authority (docs/deploying.md).
set -euo pipefail
dir="${1:?usage: tls.sh DIR [NAME...]}"
shift
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(node)
command -v openssl >/dev/null || { echo "tls.sh: openssl is needed" >&2; exit 2; }
mkdir -p "$dir"
umask 077
if [[ ! -s "$dir/ca.crt" ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" -subj "/CN=Stockade development CA $(date +%s)" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
sans="IP:127.0.0.1,IP:::1,DNS:localhost"
IFS=',' read -ra extra <<< "${STOCKADE_TLS_HOSTS:-}"
for host in "${extra[@]}"; do [[ -n "$host" ]] && sans+=",DNS:$host"; done
for name in "${names[@]}"; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/$name.key" \
        -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "$sans" > "$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
        -out "$dir/$name.crt" -extfile "$dir/$name.ext" 2>/dev/null
    rm -f "$dir/$name.csr" "$dir/$name.ext"
    echo "$dir/$name.crt"
done
