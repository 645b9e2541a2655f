#!/bin/sh
# generar-compose.sh [-tls=false] [-keep] [-admin-port=P] <output-file> <N> [<K>]: writes a
# Docker Compose file with the central ("server") and N agencies ("client1"
# … "clientN"); the central's bets file and journal go on the named volume
# lottery_central_data (down keeps it, down -v removes it). With K = 3 or 5
# the central is a Raft group instead: "server1" … "serverK", each with its
# own volume (lottery_server1_data …), NODE_NAME, CLUSTER_NODES and key
# (central-server1.key …), and every agency gets all the nodes in
# CLI_SERVER_ADDRESS; K = 1 (or no K) is the single central. The work is done
# by the Go generator in cmd/gencompose (package compose); this script only
# builds and runs it. With TLS (the default) the generator first adds what
# is missing of .pki/ next to the output file (the CA, the central's, the
# nodes' for K > 1 and agencies 1…N's keys and certificates, as bin/pki
# does), lets the central's user in its image (uid 10001, not root) read
# central.key (or each node's key) through an ACL entry, and mounts into
# each container only its own key and certificate plus ca.crt. -keep leaves
# an existing output file alone and still does the .pki/ part (make
# docker-compose-up). The central (each node) publishes its admin listener
# (docs/operations.md) on the host's 127.0.0.1:9090 (node I: 9090+I-1;
# -admin-port moves them) and Docker's healthcheck probes its /readyz with
# the image's own binary (/server -health). Bad arguments (K other than 1,
# 3 or 5 included): usage, exit 2, and the output file (and .pki/) are
# left as they were.
# POSIX sh, so `sh generar-compose.sh` works too.
set -eu
root=$(cd "$(dirname "$0")" && pwd)

if command -v go >/dev/null 2>&1; then
  # Built from the current code every time (Go caches the build).
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/gencompose.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$root" && CGO_ENABLED=0 go build -o "$tmp/gencompose" ./cmd/gencompose)
  gen="$tmp/gencompose"
elif [ -x "$root/bin/gencompose" ]; then
  gen="$root/bin/gencompose" # from make build, on a machine without Go
else
  echo "generar-compose.sh: needs Go (or bin/gencompose from make build)" >&2
  exit 1
fi
"$gen" "$@"
