#!/usr/bin/env bash
# Runs the central and five agencies as local processes, each in its own
# working directory with its config file, exactly as inside the containers.
# Uses .data/agency-N.csv when present, generated data otherwise.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
agencies=${AGENCIES:-5}
port=${SERVER_PORT:-12345}
work=$(mktemp -d "${TMPDIR:-/tmp}/loteria-run.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

data="$root/.data"
if ! ls "$data"/agency-*.csv >/dev/null 2>&1; then
  data="$work/data"
  "$root/bin/gendata" -out "$data" -agencies "$agencies" >/dev/null
  echo "no .data/ here: using generated data in $data"
fi

mkdir -p "$work/server"
cp "$root/server/config.ini" "$work/server/"
(cd "$work/server" && AGENCIES=$agencies SERVER_PORT=$port exec "$root/bin/server") 2>&1 | sed -u 's/^/server   | /' &
server_pid=$!
pids+=("$server_pid")
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

client_pids=()
for i in $(seq "$agencies"); do
  mkdir -p "$work/client$i/.data"
  cp "$root/client/config.yaml" "$work/client$i/"
  [ -f "$data/agency-$i.csv" ] && ln -s "$data/agency-$i.csv" "$work/client$i/.data/agency-$i.csv"
  (cd "$work/client$i" && CLI_ID=$i CLI_SERVER_ADDRESS=127.0.0.1:$port exec "$root/bin/client") 2>&1 | sed -u "s/^/client$i  | /" &
  client_pids+=($!)
done
status=0
for p in "${client_pids[@]}"; do wait "$p" || status=1; done
pkill -TERM -f "^$root/bin/server\$" 2>/dev/null || true
wait "$server_pid" || status=1
pids=()
echo "bets stored in $work/server/bets.csv ($(wc -l < "$work/server/bets.csv") rows)"
exit $status
