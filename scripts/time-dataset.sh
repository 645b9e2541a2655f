#!/usr/bin/env bash
# Times the whole system on a dataset, as local processes: the built central
# and one built agency per file, from starting the agencies to the last one
# exiting (every agency has its winners by then). Prints each run and the
# median, durable and with STORAGE_NOSYNC=true, alternating in one session
# so both see the same machine.
#
#   scripts/time-dataset.sh [dataset-dir] [runs]     (default ../shared/dataset, 5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$root/../shared/dataset}
runs=${2:-5}
[ -x "$root/bin/server" ] && [ -x "$root/bin/client" ] || { echo "run make build first" >&2; exit 2; }
ls "$data"/agency-*.csv >/dev/null 2>&1 || { echo "no agency-N.csv files in $data" >&2; exit 2; }
agencies=$(ls "$data"/agency-*.csv | wc -l)

one_run() { # $1: true to skip fsync; prints milliseconds, rows, winners
  local w port sp start end pids=()
  w=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$w/server"
  cp "$root/server/config.ini" "$w/server/"
  (cd "$w/server" && AGENCIES=$agencies SERVER_PORT=$port STORAGE_NOSYNC=$1 exec "$root/bin/server" >log) &
  sp=$!
  until grep -q 'action: escuchar | result: success' "$w/server/log" 2>/dev/null; do sleep 0.01; done
  start=$(date +%s%N)
  for i in $(seq "$agencies"); do
    mkdir -p "$w/client$i/.data"
    cp "$root/client/config.yaml" "$w/client$i/"
    ln -s "$(cd "$data" && pwd)/agency-$i.csv" "$w/client$i/.data/"
    (cd "$w/client$i" && CLI_ID=$i CLI_SERVER_ADDRESS=127.0.0.1:$port exec "$root/bin/client" >log) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  end=$(date +%s%N)
  kill -TERM "$sp"; wait "$sp"
  echo "$(( (end - start) / 1000000 )) $(wc -l < "$w/server/bets.csv") $(grep -ho 'cant_ganadores: [0-9]*' "$w"/client*/log | awk '{printf "%s,", $2}')"
  rm -rf "$w"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

durable=() nosync=()
for r in $(seq "$runs"); do
  read -r ms rows winners < <(one_run false); durable+=("$ms"); echo "run $r durable: ${ms} ms, $rows rows, winners ${winners%,}"
  read -r ms rows winners < <(one_run true);  nosync+=("$ms");  echo "run $r nosync:  ${ms} ms, $rows rows, winners ${winners%,}"
done
echo "median durable: $(printf '%s\n' "${durable[@]}" | median) ms"
echo "median nosync:  $(printf '%s\n' "${nosync[@]}" | median) ms"
