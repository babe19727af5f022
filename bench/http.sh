#!/usr/bin/env bash
# HTTP benchmark: requests per second and p99 latency from wrk against the same ASP.NET Core app
# (TunTcp.AspNetCore.Http: TunTcpHttpApp's routes) served two ways, printed side by side:
#
#   tuntcp   wrk (kernel TCP) -> TUN device -> TunTcp stack -> Kestrel over the TunTcp transport,
#            all inside one network namespace: `./run.sh serve --netns NS --http 80 ...`
#   sockets  wrk (kernel TCP) -> veth pair -> kernel TCP -> Kestrel's socket transport
#            (bench/KestrelSocketsServer), between two network namespaces
#
# Needs root (ip netns) and wrk (scripts/install-deps.sh bench installs it). Not run by tests.
#
# Safety: every packet stays inside namespaces this script creates (unique names per run); both
# servers are ended by the PIDs this script started, and the namespaces deleted, on every exit
# (trap); each wrk run is bounded in time (--duration, at most 120 s, plus a hard timeout).
#
# The TunTcp side needs `tuntcp serve` to take these options (the CLI wires TunTcpHttpApp):
#   --http PORT | --no-http        plain HTTP on the stack address (default 80)
#   --https PORT                   also HTTPS (self-signed certificate made at start)
#   --pfx FILE --pfx-password P    ... or this certificate
# and to print a line containing "ready" once the HTTP app listens. TUNTCP_HTTP_SERVE replaces
# "./run.sh serve" with another command taking the same options (e.g. a build of the tool elsewhere).
#
# Usage: bench/http.sh [--duration S] [--connections N] [--threads N] [--path /healthz]
#                      [--mtu BYTES] [--only tuntcp|sockets]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

duration=10 connections=16 threads=2 path=/healthz mtu=1500 only=
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --path) path=$2; shift 2 ;;
    --mtu) mtu=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "http.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
for n in "$duration" "$connections" "$threads" "$mtu"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "http.sh: '$n' is not a whole number" >&2; exit 2; }
done
[ "$duration" -ge 1 ] && [ "$duration" -le 120 ] || { echo "http.sh: --duration must be 1..120 seconds" >&2; exit 2; }
[ "$connections" -ge 1 ] && [ "$connections" -le 1000 ] || { echo "http.sh: --connections must be 1..1000" >&2; exit 2; }
[[ "$path" == /* ]] || { echo "http.sh: --path must start with /" >&2; exit 2; }
case "$only" in ""|tuntcp|sockets) ;; *) echo "http.sh: --only tuntcp or --only sockets" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "http.sh: needs root (it creates network namespaces)" >&2; exit 1; }
"$root/scripts/install-deps.sh" bench

# Unique per run: namespaces, interface names (at most 15 characters) and a scratch directory.
id=$(printf '%04x%04x' $(( $$ & 0xffff )) $(( RANDOM & 0xffff )))
ns_tun="tth-tun-$id"                 # TunTcp side: the TUN device and wrk
ns_srv="tth-srv-$id" ns_cli="tth-cli-$id"   # sockets side: server and wrk, joined by a veth pair
tun_dev="tht$id"
veth_srv="ths$id" veth_cli="thc$id"
srv_addr=10.231.0.1 cli_addr=10.231.0.2
work=$(mktemp -d /tmp/tuntcp-bench-http.XXXXXX)
created_ns=() pids=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    # Bounded wait for a graceful stop, then force.
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for ns in "${created_ns[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

add_ns() { ip netns add "$1"; created_ns+=("$1"); ip -n "$1" link set lo up; }

# Waits (bounded) until the log of process $1 has a line containing "ready".
wait_ready() {
  local pid=$1 log=$2 what=$3 limit=$4
  for _ in $(seq 1 $(( limit * 10 ))); do
    grep -q ready "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "http.sh: $what exited before it was ready:" >&2; cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "http.sh: $what not ready after ${limit}s:" >&2; cat "$log" >&2; return 1
}

# Runs wrk in namespace $1 against URL $2 for $3 seconds; prints "REQS_PER_SEC P99_MS".
run_wrk() {
  local ns=$1 url=$2 seconds=$3 out
  out=$(timeout $(( seconds + 30 )) ip netns exec "$ns" wrk -t "$threads" -c "$connections" -d "${seconds}s" --latency "$url")
  echo "$out" >> "$work/wrk.log"
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec:/ { rps = $2 }
    $1 == "99%" { p99 = ms($2) }
    /Non-2xx or 3xx responses|Socket errors/ { print "http.sh: wrk reported: " $0 > "/dev/stderr" }
    END { printf "%s %s\n", (rps == "" ? "0" : rps), (p99 == "" ? "nan" : p99) }' <<<"$out"
}

measure() {
  local ns=$1 url=$2
  # A short warm-up run (JIT, pools, TCP windows) whose figures are dropped.
  run_wrk "$ns" "$url" 2 >/dev/null
  run_wrk "$ns" "$url" "$duration"
}

tuntcp_result= sockets_result=

if [ "$only" != sockets ]; then
  add_ns "$ns_tun"
  # serve attaches to the namespace we made and leaves it to us; the TUN device lives inside it.
  # shellcheck disable=SC2086 # the override may carry its own arguments
  ${TUNTCP_HTTP_SERVE:-"$root/run.sh" serve} --netns "$ns_tun" --tun "$tun_dev" --addr 192.168.0.2 --host-addr 192.168.0.1/24 \
    --mtu "$mtu" --http 80 > "$work/tuntcp.log" 2>&1 &
  pids+=($!)
  # The first run includes building the tool.
  wait_ready "${pids[-1]}" "$work/tuntcp.log" "tuntcp serve" 300
  tuntcp_result=$(measure "$ns_tun" "http://192.168.0.2:80$path")
fi

if [ "$only" != tuntcp ]; then
  dotnet build "$here/KestrelSocketsServer/KestrelSocketsServer.csproj" -c Release -nologo -v:q -clp:ErrorsOnly \
    -o "$root/artifacts/bench-kestrel-sockets" >/dev/null
  add_ns "$ns_srv"
  add_ns "$ns_cli"
  ip link add "$veth_srv" mtu "$mtu" netns "$ns_srv" type veth peer name "$veth_cli" mtu "$mtu" netns "$ns_cli"
  ip -n "$ns_srv" addr add "$srv_addr/24" dev "$veth_srv"
  ip -n "$ns_cli" addr add "$cli_addr/24" dev "$veth_cli"
  ip -n "$ns_srv" link set "$veth_srv" up
  ip -n "$ns_cli" link set "$veth_cli" up
  ip netns exec "$ns_srv" dotnet "$root/artifacts/bench-kestrel-sockets/KestrelSocketsServer.dll" \
    --addr "$srv_addr" --port 8080 > "$work/sockets.log" 2>&1 &
  pids+=($!)
  wait_ready "${pids[-1]}" "$work/sockets.log" "KestrelSocketsServer" 60
  sockets_result=$(measure "$ns_cli" "http://$srv_addr:8080$path")
fi

echo
echo "GET $path, wrk -t$threads -c$connections -d${duration}s, MTU $mtu"
printf '%-18s %14s %12s\n' transport "requests/s" "p99 (ms)"
[ -n "$tuntcp_result" ] && printf '%-18s %14.1f %12.3f\n' "tuntcp" $tuntcp_result
[ -n "$sockets_result" ] && printf '%-18s %14.1f %12.3f\n' "kestrel sockets" $sockets_result
if [ -n "$tuntcp_result" ] && [ -n "$sockets_result" ]; then
  read -r t_rps t_p99 <<<"$tuntcp_result"
  read -r s_rps s_p99 <<<"$sockets_result"
  awk -v tr="$t_rps" -v sr="$s_rps" -v tp="$t_p99" -v sp="$s_p99" 'BEGIN {
    printf "%-18s %13.2fx %11.2fx\n", "tuntcp / sockets", (sr > 0 ? tr / sr : 0), (sp > 0 ? tp / sp : 0) }'
fi
