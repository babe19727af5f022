#!/usr/bin/env bash
# Forwarding benchmark: the same client and servers, four ways of carrying an application
# namespace's traffic to the servers of a "world" namespace:
#
#   tuntcp       ip netns exec WORLD tuntcp forward --netns APP   (TUN device, TunTcp terminates every flow)
#   pasta        ip netns exec WORLD pasta --config-net --netns APP   (Debian passt)
#   slirp4netns  ip netns exec WORLD slirp4netns --configure --netns-type=path /run/netns/APP tap0
#   kernel       a veth pair APP <-> WORLD, the kernel routing it: the ceiling
#
# For each MTU (1500 and 65520; slirp4netns and pasta at most 65520) it measures, medians of REPS:
#   up / down    iperf3 -t SECONDS, application -> world and back (-R), Gbit/s
#   rr p50       1-byte request/response round trips over one TCP connection (TCP_RR-style), us
#   conn/s       wrk with "Connection: close": short HTTP requests against Kestrel in the world,
#                each one a new connection (handshake, request, response, close)
# and prints a table.
#
#   bench/forward.sh                      # everything, ~10 minutes
#   MTUS=1500 REPS=1 ONLY="tuntcp kernel" bench/forward.sh
#
# Env: MTUS ("1500 65520"), REPS (3), SECONDS_PER_RUN (5), N (2000 round trips), ONLY (systems),
#      OUT (/tmp/tuntcp-forward.jsonl), TUNTCP_TOOL (another build of the tool).
# Network rule: every packet stays inside the two namespaces this script creates per system (unique
# names, removed on every exit path); the world has its servers on its own loopback and a veth
# pair with both ends inside it (pasta wants an interface with a default route as its template);
# every run is bounded in time (timeout); only processes this script started are stopped, by PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
MTUS=${MTUS:-"1500 65520"}
REPS=${REPS:-3}
SECS=${SECONDS_PER_RUN:-5}
N=${N:-2000}
ONLY=${ONLY:-"tuntcp pasta slirp4netns kernel"}
OUT=${OUT:-/tmp/tuntcp-forward.jsonl}
TOOL=${TUNTCP_TOOL:-$ROOT/artifacts/tuntcp/tuntcp}
SERVER=10.203.0.2

[ "$(id -u)" -eq 0 ] || { echo "bench/forward.sh needs root (network namespaces, TUN devices)"; exit 1; }
"$ROOT/scripts/install-deps.sh" bench || exit 1
for cmd in pasta slirp4netns iperf3 wrk; do
    command -v $cmd >/dev/null || { echo "bench/forward.sh: $cmd missing (scripts/install-deps.sh bench installs it)"; exit 1; }
done
"$ROOT/run.sh" --help >/dev/null || { echo "build failed"; exit 1; }
dotnet build "$HERE/KestrelSocketsServer/KestrelSocketsServer.csproj" -c Release -nologo -v:q -clp:ErrorsOnly \
    -o "$ROOT/artifacts/bench-kestrel-sockets" >/dev/null || { echo "KestrelSocketsServer build failed"; exit 1; }

UNIQ=$$-$RANDOM
W=tf-w-$UNIQ A=tf-a-$UNIQ
PIDS=()
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    done
    PIDS=()
}
cleanup() { stop_all; ip netns delete "$A" 2>/dev/null; ip netns delete "$W" 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # $1 command that succeeds when ready, up to 30 s
    for _ in $(seq 300); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

world() { # the world namespace: servers on 10.203.0.2 (its loopback), a veth template for pasta
    ip netns add "$W" || exit 1
    ip -n "$W" link set lo up
    ip -n "$W" addr add $SERVER/32 dev lo
    ip -n "$W" link add tfv0 type veth peer name tfv1
    ip -n "$W" addr add 10.250.0.1/24 dev tfv0
    ip -n "$W" link set tfv0 up; ip -n "$W" link set tfv1 up
    ip -n "$W" route add default via 10.250.0.2 dev tfv0
    ip netns exec "$W" iperf3 -s -B $SERVER -p 5201 >/dev/null 2>&1 & PIDS+=($!)
    ip netns exec "$W" python3 "$ROOT/tests/TunTcp.RealPeer.Tests/peers/world_servers.py" 3600 >/dev/null 2>&1 & PIDS+=($!)
    ip netns exec "$W" dotnet "$ROOT/artifacts/bench-kestrel-sockets/KestrelSocketsServer.dll" --addr $SERVER --port 8080 >/dev/null 2>&1 & PIDS+=($!)
    wait_for "ip netns exec $W ss -ltn | grep -q ':8080'" || { echo "world servers did not start"; exit 1; }
    wait_for "ip netns exec $W ss -ltn | grep -q ':7007'" || { echo "world echo did not start"; exit 1; }
}

carrier() { # $1 system $2 mtu: makes APP and whatever carries its traffic
    ip netns add "$A" || exit 1
    ip -n "$A" link set lo up
    local log; log=$(mktemp)
    case $1 in
        tuntcp)
            ip netns exec "$W" "$TOOL" forward --netns "$A" --mtu "$2" >"$log" 2>&1 & PIDS+=($!)
            wait_for "grep -q ready $log" || { echo "tuntcp forward did not start:"; cat "$log"; exit 1; } ;;
        pasta)
            ip netns exec "$W" pasta --config-net --runas 0 --netns "$A" --netns-only -f -m "$2" >"$log" 2>&1 & PIDS+=($!)
            wait_for "ip -n $A route | grep -q default" || { echo "pasta did not start:"; cat "$log"; exit 1; } ;;
        slirp4netns)
            ip netns exec "$W" slirp4netns --configure --mtu="$2" --netns-type=path "/run/netns/$A" tap0 >"$log" 2>&1 & PIDS+=($!)
            wait_for "ip -n $A route | grep -q default" || { echo "slirp4netns did not start:"; cat "$log"; exit 1; } ;;
        kernel)
            ip link add tfk0 netns "$A" type veth peer name tfk1 netns "$W" || exit 1
            ip -n "$A" link set tfk0 mtu "$2"; ip -n "$W" link set tfk1 mtu "$2"
            ip -n "$A" addr add 10.251.0.2/24 dev tfk0; ip -n "$W" addr add 10.251.0.1/24 dev tfk1
            ip -n "$A" link set tfk0 up; ip -n "$W" link set tfk1 up
            ip -n "$A" route add default via 10.251.0.1 ;;
    esac
    rm -f "$log"
}

rr() { # p50 of N 1-byte round trips on one connection, in us
    timeout 60 ip netns exec "$A" python3 - "$SERVER" "$N" <<'PY'
import socket, statistics, sys, time
s = socket.create_connection((sys.argv[1], 7007), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
times = []
for i in range(200 + int(sys.argv[2])):
    t = time.perf_counter(); s.sendall(b"x"); s.recv(1); d = time.perf_counter() - t
    if i >= 200: times.append(d)
print(round(statistics.median(times) * 1e6, 1))
PY
}

measure() { # $1 system $2 mtu
    local rep up down lat cps
    for rep in $(seq "$REPS"); do
        up=$(timeout $((SECS + 30)) ip netns exec "$A" iperf3 -c $SERVER -p 5201 -t "$SECS" -J 2>/dev/null \
            | python3 -c "import json,sys; print(round(json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9, 3))" 2>/dev/null || echo nan)
        down=$(timeout $((SECS + 30)) ip netns exec "$A" iperf3 -c $SERVER -p 5201 -t "$SECS" -R -J 2>/dev/null \
            | python3 -c "import json,sys; print(round(json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9, 3))" 2>/dev/null || echo nan)
        lat=$(rr 2>/dev/null || echo nan)
        cps=$(timeout $((SECS + 30)) ip netns exec "$A" wrk -t2 -c16 -d"${SECS}s" -H "Connection: close" "http://$SERVER:8080/healthz" 2>/dev/null \
            | awk '/Requests\/sec/ {print $2}')
        [ -n "$cps" ] || cps=nan
        echo "{\"system\": \"$1\", \"mtu\": $2, \"rep\": $rep, \"up_gbit_s\": $up, \"down_gbit_s\": $down, \"rr_p50_us\": $lat, \"conn_per_s\": $cps}" | tee -a "$OUT.run"
    done
}

echo "# $(date -u +%FT%TZ) nproc=$(nproc) kernel=$(uname -r) pasta=$(pasta --version 2>/dev/null | head -1) slirp4netns=$(slirp4netns --version 2>/dev/null | head -1)" | tee -a "$OUT.meta"
: > "$OUT.run"
world
for mtu in $MTUS; do
    for system in $ONLY; do
        echo "== $system, MTU $mtu"
        carrier "$system" "$mtu"
        measure "$system" "$mtu"
        # Stop the carrier (the last PID started), keep the world's servers.
        last=${PIDS[-1]}
        if [ "$system" != kernel ]; then kill -INT "$last" 2>/dev/null; for _ in $(seq 50); do kill -0 "$last" 2>/dev/null || break; sleep 0.1; done; kill -9 "$last" 2>/dev/null; wait "$last" 2>/dev/null; unset 'PIDS[-1]'; fi
        ip netns delete "$A"
        # A veth peer left in the world (kernel) goes with the namespace; nothing else to undo.
    done
done
cat "$OUT.run" >> "$OUT"

python3 - "$OUT.run" <<'PY'
import json, math, statistics, sys
rows = [json.loads(l.replace("nan", "NaN")) for l in open(sys.argv[1]) if l.strip()]
def med(system, mtu, key):
    v = [r[key] for r in rows if r["system"] == system and r["mtu"] == mtu and not math.isnan(r[key])]
    return statistics.median(v) if v else float("nan")
print()
print("| MTU | system | up Gbit/s | down Gbit/s | TCP_RR p50 us | connections/s |")
print("|---|---|---|---|---|---|")
systems = list(dict.fromkeys(r["system"] for r in rows))
for mtu in sorted({r["mtu"] for r in rows}):
    for s in systems:
        print(f"| {mtu} | {s} | {med(s, mtu, 'up_gbit_s'):.2f} | {med(s, mtu, 'down_gbit_s'):.2f} | {med(s, mtu, 'rr_p50_us'):.0f} | {med(s, mtu, 'conn_per_s'):.0f} |")
PY
