#!/usr/bin/env bash
# Times the whole system on a dataset, as local processes: the built central
# and one built agency per file, from starting the agencies to the last one
# exiting (every agency has its winners by then). Prints each run and the
# median of three modes, alternating in one session so all see the same
# machine: durable with mutual TLS (the default), durable without TLS
# (TLS=off), and with TLS but STORAGE_NOSYNC=true. With TLS the audit log is
# on too, as the programs run by default: signed receipts, kept by each
# agency, and the signed draw statement.
#
#   scripts/time-dataset.sh [dataset-dir] [runs]     (default ../shared/dataset, 5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$root/../shared/dataset}
runs=${2:-5}
[ -x "$root/bin/server" ] && [ -x "$root/bin/client" ] || { echo "run make build first" >&2; exit 2; }
ls "$data"/agency-*.csv >/dev/null 2>&1 || { echo "no agency-N.csv files in $data" >&2; exit 2; }
agencies=$(ls "$data"/agency-*.csv | wc -l)
pki=$(mktemp -d)
trap 'rm -rf "$pki"' EXIT
"$root/bin/pki" -out "$pki" -agencies "$agencies" >/dev/null

one_run() { # $1: true to skip fsync, $2: on/off for TLS; prints milliseconds, rows, winners
  local w port sp start end pids=()
  w=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$w/server"
  cp "$root/server/config.ini" "$w/server/"
  (cd "$w/server" && AGENCIES=$agencies SERVER_PORT=$port STORAGE_NOSYNC=$1 TLS=$2 \
    TLS_CERT="$pki/central.crt" TLS_KEY="$pki/central.key" TLS_CLIENT_CA="$pki/ca.crt" LOG_KEY="$pki/log.key" exec "$root/bin/server" >log) &
  sp=$!
  until grep -q 'action: escuchar | result: success' "$w/server/log" 2>/dev/null; do sleep 0.01; done
  start=$(date +%s%N)
  for i in $(seq "$agencies"); do
    mkdir -p "$w/client$i/.data"
    cp "$root/client/config.yaml" "$w/client$i/"
    ln -s "$(cd "$data" && pwd)/agency-$i.csv" "$w/client$i/.data/"
    (cd "$w/client$i" && CLI_ID=$i CLI_SERVER_ADDRESS=127.0.0.1:$port CLI_TLS=$2 \
      CLI_TLS_CERT="$pki/agency-$i.crt" CLI_TLS_KEY="$pki/agency-$i.key" CLI_TLS_CA="$pki/ca.crt" \
      CLI_AUDIT_KEY="$pki/log.pub" CLI_AUDIT_RECEIPTS="$w/client$i/agency-$i.receipts" exec "$root/bin/client" >log) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  end=$(date +%s%N)
  kill -TERM "$sp"; wait "$sp"
  echo "$(( (end - start) / 1000000 )) $(wc -l < "$w/server/bets.csv") $(grep -ho 'cant_ganadores: [0-9]*' "$w"/client*/log | awk '{printf "%s,", $2}')"
  rm -rf "$w"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

tls=() plain=() nosync=()
for r in $(seq "$runs"); do
  read -r ms rows winners < <(one_run false on);  tls+=("$ms");    echo "run $r durable, TLS:    ${ms} ms, $rows rows, winners ${winners%,}"
  read -r ms rows winners < <(one_run false off); plain+=("$ms");  echo "run $r durable, no TLS: ${ms} ms, $rows rows, winners ${winners%,}"
  read -r ms rows winners < <(one_run true on);   nosync+=("$ms"); echo "run $r nosync, TLS:     ${ms} ms, $rows rows, winners ${winners%,}"
done
echo "median durable, TLS:    $(printf '%s\n' "${tls[@]}" | median) ms"
echo "median durable, no TLS: $(printf '%s\n' "${plain[@]}" | median) ms"
echo "median nosync, TLS:     $(printf '%s\n' "${nosync[@]}" | median) ms"
