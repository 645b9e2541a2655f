#!/usr/bin/env bash
# Runs a replicated central of three nodes (server1 … server3, a Raft group)
# and five agencies as local processes, as scripts/run-local.sh runs the
# single central. Node I listens for agencies on 127.0.0.1, SERVER_PORT
# 12345, 12355, 12365 (its Raft listener on that port + 10000; its admin
# listener, docs/operations.md, on 127.0.0.1:9090, 9091, 9092), and keeps
# its bets file, journal and Raft state in .cluster/serverI/, its working
# directory: they are kept between runs, like the Docker volumes (rm -rf
# .cluster to start a new draw). Uses .data/agency-N.csv when present,
# generated data otherwise. Everything speaks mutual TLS with the keys of
# .pki/ (bin/pki -centrals 3 adds what is missing), given by absolute path
# in the environment: each node gets only its own key
# (central-serverI.key), each agency only its own, and every agency dials
# the three nodes by 127.0.0.1, a name in every node's certificate. Exits 0
# only if every agency and every node exit 0.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
agencies=${AGENCIES:-5}
nodes=3
base_port=${SERVER_PORT:-12345} # node I: base_port + 10 × (I − 1)
cluster="$root/.cluster"
work=$(mktemp -d "${TMPDIR:-/tmp}/loteria-cluster.XXXXXX")
server_pids=()
client_pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  for p in "${client_pids[@]}" "${server_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pki="$root/.pki"
"$root/bin/pki" -out "$pki" -agencies "$agencies" -centrals "$nodes"

data="$root/.data"
if ! ls "$data"/agency-*.csv >/dev/null 2>&1; then
  data="$work/data"
  "$root/bin/gendata" -out "$data" -agencies "$agencies" >/dev/null
  echo "no .data/ here: using generated data in $data"
fi

# The contract every node is given: its own NODE_NAME and, in CLUSTER_NODES,
# name=host:port of every node, itself included; the agencies get the same
# addresses in CLI_SERVER_ADDRESS.
ports=()
members=()
addrs=()
for i in $(seq "$nodes"); do
  ports+=($((base_port + 10 * (i - 1))))
  members+=("server$i=127.0.0.1:${ports[i - 1]}")
  addrs+=("127.0.0.1:${ports[i - 1]}")
done
cluster_nodes=$(IFS=,; echo "${members[*]}")
server_address=$(IFS=,; echo "${addrs[*]}")

mkdir -p "$cluster"
echo '*' > "$cluster/.gitignore" # node state, never committed

# Each program runs in the background with its output prefixed through a
# process substitution, so $! is the program itself, not the prefixer.
for i in $(seq "$nodes"); do
  name=server$i
  mkdir -p "$cluster/$name"
  cp "$root/server/config.ini" "$cluster/$name/"
  (cd "$cluster/$name" && AGENCIES=$agencies SERVER_PORT=${ports[i - 1]} ADMIN_ADDRESS=127.0.0.1:$((9090 + i - 1)) \
    NODE_NAME=$name CLUSTER_NODES=$cluster_nodes STORAGE_FILEPATH="$cluster/$name/bets.csv" \
    TLS_CERT="$pki/central-$name.crt" TLS_KEY="$pki/central-$name.key" TLS_CLIENT_CA="$pki/ca.crt" LOG_KEY="$pki/log.key" \
    exec "$root/bin/server") > >(tee "$work/$name.log" | sed -u "s/^/$name  | /") 2>&1 &
  server_pids+=($!)
done
for port in "${ports[@]}"; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
done

for i in $(seq "$agencies"); do
  mkdir -p "$work/client$i/.data"
  cp "$root/client/config.yaml" "$work/client$i/"
  if [ -f "$data/agency-$i.csv" ]; then ln -s "$data/agency-$i.csv" "$work/client$i/.data/agency-$i.csv"; fi
  (cd "$work/client$i" && CLI_ID=$i CLI_SERVER_ADDRESS=$server_address \
    CLI_TLS_CERT="$pki/agency-$i.crt" CLI_TLS_KEY="$pki/agency-$i.key" CLI_TLS_CA="$pki/ca.crt" CLI_AUDIT_KEY="$pki/log.pub" \
    exec "$root/bin/client") > >(sed -u "s/^/client$i  | /") 2>&1 &
  client_pids+=($!)
done
status=0
for p in "${client_pids[@]}"; do wait "$p" || status=1; done
client_pids=()
# Every agency has its winners from the leader; the followers apply the
# draw entry a heartbeat later. Give each node up to 5 s to log its draw
# before stopping them all, so every node shows the same ganadores.
if [ "$status" = 0 ]; then
  for i in $(seq "$nodes"); do
    for _ in $(seq 50); do
      grep -q 'action: \(recuperar_\)\?sorteo | result: success' "$work/server$i.log" 2>/dev/null && break
      sleep 0.1
    done
  done
fi
for p in "${server_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${server_pids[@]}"; do wait "$p" || status=1; done
server_pids=()
sleep 0.1 # let the prefixers print the last lines
for i in $(seq "$nodes"); do
  f="$cluster/server$i/bets.csv"
  if [ -f "$f" ]; then
    echo "server$i: bets stored in $f ($(wc -l < "$f") rows)"
  else
    echo "server$i: no bets file at $f"
  fi
done
echo "exit status $status"
exit $status
