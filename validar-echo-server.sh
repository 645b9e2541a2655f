#!/bin/sh
# validar-echo-server.sh: checks that the running central answers an echo.
#
# It runs netcat (busybox, from the netcat image that `make
# docker-netcat-image` builds offline) in a throw-away container on the
# central's own network (no netcat on the host, no published port), sends an
# Echo frame — header 01 09 <length u16 big-endian>, then the message — to
# server:12345 and compares the bytes that come back with the bytes sent.
# The frame is plain text: a central with TLS on still answers an Echo from
# a peer without a certificate (and nothing else).
# It prints exactly one line on stdout:
#   action: test_echo_server | result: success    (exit 0)
#   action: test_echo_server | result: fail       (exit 1)
# and on failure says why on stderr.
#
# POSIX sh: the course's harness runs it as `sh validar-echo-server.sh`,
# and sh is dash on Debian.
#
# Environment (all optional):
#   SERVER_CONTAINER  the central's container, whose network is used (server)
#   NETWORK           the network to join instead of the central's
#   SERVER_HOST       the central's name on that network (server)
#   SERVER_PORT       its port (SERVER_PORT of server/config.ini, else 12345)
#   NETCAT_IMAGE      the netcat image (netcat:latest)
#   ECHO_MESSAGE      what to send (ping)
#   ECHO_TIMEOUT      seconds to wait for the answer (5)
set -u
export LC_ALL=C
root=$(cd "$(dirname "$0")" && pwd)

fail() {
  echo "validar-echo-server.sh: $*" >&2
  echo "action: test_echo_server | result: fail"
  exit 1
}

container=${SERVER_CONTAINER:-server}
host=${SERVER_HOST:-server}
image=${NETCAT_IMAGE:-netcat:latest}
msg=${ECHO_MESSAGE:-ping}
wait_s=${ECHO_TIMEOUT:-5}
port=${SERVER_PORT:-$(sed -n 's/^[[:space:]]*SERVER_PORT[[:space:]]*=[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$root/server/config.ini" 2>/dev/null | head -n1)}
port=${port:-12345}

if [ -n "${NETWORK:-}" ]; then
  network=$NETWORK
else
  network=$(docker inspect -f '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}}{{"\n"}}{{end}}' "$container" 2>/dev/null | head -n1)
  [ -n "$network" ] || fail "no container \"$container\": is the system up (make docker-compose-up)?"
fi
docker network inspect "$network" >/dev/null 2>&1 || fail "no network \"$network\""

if ! docker image inspect "$image" >/dev/null 2>&1; then
  make -C "$root" --no-print-directory docker-netcat-image NETCAT_IMAGE="$image" >&2 || fail "cannot build the netcat image $image"
fi

# The frame as printf octal escapes, so any message bytes survive the shell:
# od writes each byte of the message as three octal digits.
len=$(printf '%s' "$msg" | wc -c)
len=$((len))
[ "$len" -ge 1 ] && [ "$len" -le 8188 ] || fail "ECHO_MESSAGE must have 1 to 8188 bytes"
frame=$(printf '\\%03o' 1 9 $((len >> 8)) $((len & 255)))
for b in $(printf '%s' "$msg" | od -An -v -to1); do frame="$frame\\$b"; done

# busybox nc half-closes the socket when its input ends and exits when the
# central closes after answering; -w bounds the connect and timeout the rest.
check='
want=$(printf "$1" | od -An -tx1)
got=$(printf "$1" | timeout "$2" nc -w "$2" "$3" "$4" | od -An -tx1)
[ -n "$got" ] && [ "$got" = "$want" ] && exit 0
echo "sent:    $want" >&2
echo "answer: ${got:- (nothing)}" >&2
exit 1'
if docker run --rm --network "$network" "$image" sh -c "$check" sh "$frame" "$wait_s" "$host" "$port"; then
  echo "action: test_echo_server | result: success"
  exit 0
fi
fail "no echo from $host:$port on network $network"
