#!/usr/bin/env bash
# Runs the central and five agencies as local processes, each in its own
# working directory with its config file, exactly as inside the containers.
# Uses .data/agency-N.csv when present, generated data otherwise. They
# speak mutual TLS with the keys of .pki/ (bin/pki adds what is missing),
# given by absolute path in the environment; each agency gets only its own
# key, and dials 127.0.0.1, one of the names in central.crt. Exits 0 only
# if every agency and the central exit 0.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
agencies=${AGENCIES:-5}
port=${SERVER_PORT:-12345}
work=$(mktemp -d "${TMPDIR:-/tmp}/loteria-run.XXXXXX")
server_pid=
client_pids=()
cleanup() {
  for p in "${client_pids[@]}" $server_pid; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pki="$root/.pki"
"$root/bin/pki" -out "$pki" -agencies "$agencies"

data="$root/.data"
if ! ls "$data"/agency-*.csv >/dev/null 2>&1; then
  data="$work/data"
  "$root/bin/gendata" -out "$data" -agencies "$agencies" >/dev/null
  echo "no .data/ here: using generated data in $data"
fi

# Each program runs in the background with its output prefixed through a
# process substitution, so $! is the program itself, not the prefixer.
mkdir -p "$work/server"
cp "$root/server/config.ini" "$work/server/"
(cd "$work/server" && AGENCIES=$agencies SERVER_PORT=$port \
  TLS_CERT="$pki/central.crt" TLS_KEY="$pki/central.key" TLS_CLIENT_CA="$pki/ca.crt" LOG_KEY="$pki/log.key" \
  exec "$root/bin/server") > >(sed -u 's/^/server   | /') 2>&1 &
server_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

for i in $(seq "$agencies"); do
  mkdir -p "$work/client$i/.data"
  cp "$root/client/config.yaml" "$work/client$i/"
  if [ -f "$data/agency-$i.csv" ]; then ln -s "$data/agency-$i.csv" "$work/client$i/.data/agency-$i.csv"; fi
  (cd "$work/client$i" && CLI_ID=$i CLI_SERVER_ADDRESS=127.0.0.1:$port \
    CLI_TLS_CERT="$pki/agency-$i.crt" CLI_TLS_KEY="$pki/agency-$i.key" CLI_TLS_CA="$pki/ca.crt" CLI_AUDIT_KEY="$pki/log.pub" \
    exec "$root/bin/client") > >(sed -u "s/^/client$i  | /") 2>&1 &
  client_pids+=($!)
done
status=0
for p in "${client_pids[@]}"; do wait "$p" || status=1; done
client_pids=()
kill -TERM "$server_pid"
wait "$server_pid" || status=1
server_pid=
sleep 0.1 # let the prefixers print the last lines
echo "bets stored in $work/server/bets.csv ($(wc -l < "$work/server/bets.csv") rows); exit status $status"
echo "audit the draw: bin/audit -pub .pki/log.pub -bets $work/server/bets.csv -statement $work/server/bets.csv.sorteo $work/client*/.data/agency-*.receipts"
exit $status
