#!/usr/bin/env bash
# End-to-end benchmark of TunTcp against the Linux kernel's own TCP.
#
#   bench/run.sh                 # MTU 1500 and 65520, 3 repetitions, ~3 minutes
#   MTUS=1500 REPS=5 bench/run.sh
#   PEERS=1 bench/run.sh         # then also ../shared/peers/bench.sh with tuntcp, gvisor, lwip
#   FAMILIES=4 bench/run.sh      # IPv4 only (default "4 6": every measurement over IPv4 and IPv6)
#
# For each MTU it measures, with the same kernel-side client (bench/client.py):
#   - TunTcp: `tuntcp serve` on a TUN device in a namespace this script creates; the kernel of
#     that namespace is the peer (discard: kernel -> TunTcp; source: TunTcp chargen -> kernel;
#     echo: 1-byte round trips);
#   - kernel <-> kernel: the same transfers between two namespaces joined by a veth pair (a
#     Python server on the far side), the ceiling on this machine;
# then prints the medians in Gbit/s and microseconds, and TunTcp's ratio to the kernel.
#
# Env: MB (200 MiB per transfer), N (5000 echo round trips), REPS (3), MTUS ("1500 65520"),
#      OUT (JSON lines, default /tmp/tuntcp-bench.jsonl), TUNTCP_ARGS (extra serve options),
#      PEERS (1: run the peer harness afterwards), TUNTCP_TOOL (another build of the tool, for A/B runs),
#      FAMILIES ("4 6"; an older tool without IPv6 needs FAMILIES=4).
# Network rule: traffic only inside the namespaces this script creates (unique names, removed
# on every exit path); every transfer is bounded in size and time (timeout).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
MB=${MB:-200}
N=${N:-5000}
REPS=${REPS:-3}
MTUS=${MTUS:-"1500 65520"}
OUT=${OUT:-/tmp/tuntcp-bench.jsonl}
TUNTCP_ARGS=${TUNTCP_ARGS:-}
PEERS=${PEERS:-0}
FAMILIES=${FAMILIES:-"4 6"}
PY=python3
TOOL=${TUNTCP_TOOL:-$ROOT/artifacts/tuntcp/tuntcp}

[ "$(id -u)" -eq 0 ] || { echo "bench/run.sh needs root (network namespaces, TUN devices)"; exit 1; }
"$ROOT/scripts/install-deps.sh" bench || exit 1
"$ROOT/run.sh" --help >/dev/null || { echo "build failed"; exit 1; }

UNIQ=$$-$RANDOM
NS_T=tb-t-$UNIQ NS_A=tb-a-$UNIQ NS_B=tb-b-$UNIQ
PID=
stop() {
    if [ -n "$PID" ]; then
        kill -INT "$PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
        PID=
    fi
}
cleanup() {
    stop
    for ns in $NS_T $NS_A $NS_B; do ip netns delete "$ns" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

busy_pct() { # whole-machine non-idle % over 0.5 s
    local a b tot=0 i
    a=($(head -1 /proc/stat)); sleep 0.5; b=($(head -1 /proc/stat))
    for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
    local idle=$((b[4] - a[4] + b[5] - a[5]))
    [ $tot -gt 0 ] && echo $(( (tot - idle) * 100 / tot )) || echo 0
}
wait_quiet() { # up to 60 s for the machine to be < 15 % busy; returns the last reading
    local b
    for _ in $(seq 60); do b=$(busy_pct); [ "$b" -lt 15 ] && break; sleep 0.5; done
    echo "$b"
}

measure() { # $1 system $2 mtu $3 namespace $4 host
    local rep t arg res busy
    for rep in $(seq "$REPS"); do
        for t in discard source echo; do
            arg=$MB; [ $t = echo ] && arg=$N
            busy=$(wait_quiet)
            res=$(timeout 120 ip netns exec "$3" $PY "$HERE/client.py" $t "$4" "$arg") || res="{\"test\": \"$t\", \"error\": true}"
            echo "$res" | $PY -c "import json,sys; r=json.loads(sys.stdin.read()); r.update(system='$1', mtu=$2, rep=$rep, busy_before_pct=$busy); print(json.dumps(r))" | tee -a "$OUT"
        done
    done
}

wait_for() { # $1 file $2 text: up to 30 s
    for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; kill -0 "$PID" 2>/dev/null || return 1; sleep 0.1; done
    return 1
}

echo "# $(date -u +%FT%TZ) nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) kernel=$(uname -r) dotnet=$(dotnet --version)" | tee -a "$OUT.meta"
: > "$OUT.run"
for mtu in $MTUS; do
    echo "== TunTcp, MTU $mtu"
    ip netns add "$NS_T" || exit 1
    log=$(mktemp)
    "$TOOL" serve --netns "$NS_T" --mtu "$mtu" --no-http $TUNTCP_ARGS >"$log" 2>&1 &
    PID=$!
    wait_for "$log" ready || { echo "tuntcp did not start:"; cat "$log"; exit 1; }
    for f in $FAMILIES; do
        if [ "$f" = 6 ]; then measure tuntcp-v6 "$mtu" "$NS_T" fd00:7475:6e::2 | tee -a "$OUT.run"
        else measure tuntcp "$mtu" "$NS_T" 192.168.0.2 | tee -a "$OUT.run"; fi
    done
    stop; rm -f "$log"
    ip netns delete "$NS_T"

    echo "== kernel <-> kernel over veth, MTU $mtu"
    ip netns add "$NS_A" && ip netns add "$NS_B" || exit 1
    ip link add tbveth0 netns "$NS_A" type veth peer name tbveth1 netns "$NS_B" || exit 1
    for side in "$NS_A tbveth0 10.99.0.1 fd00:99::1" "$NS_B tbveth1 10.99.0.2 fd00:99::2"; do
        set -- $side
        ip netns exec "$1" ip link set lo up
        ip netns exec "$1" ip link set "$2" mtu "$mtu"
        ip netns exec "$1" ip addr add "$3/24" dev "$2"
        ip netns exec "$1" ip -6 addr add "$4/64" dev "$2" nodad
        ip netns exec "$1" ip link set "$2" up
    done
    for f in $FAMILIES; do
        server=10.99.0.2 system=kernel
        [ "$f" = 6 ] && server=fd00:99::2 system=kernel-v6
        log=$(mktemp)
        ip netns exec "$NS_B" $PY "$HERE/kernel_server.py" $server >"$log" 2>&1 &
        PID=$!
        wait_for "$log" ready || { echo "kernel server did not start:"; cat "$log"; exit 1; }
        measure $system "$mtu" "$NS_A" $server | tee -a "$OUT.run"
        stop; rm -f "$log"
    done
    ip netns delete "$NS_A"; ip netns delete "$NS_B"
done

$PY - "$OUT.run" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(system, mtu, test, key):
    v = [r[key] for r in rows if r.get("system") == system and r["mtu"] == mtu and r["test"] == test and key in r]
    return statistics.median(v) if v else float("nan")
print()
print("| MTU | system | kernel->stack discard Gbit/s | stack->kernel source Gbit/s | echo p50 us | echo p99 us |")
print("|---|---|---|---|---|---|")
systems = {r["system"] for r in rows}
for mtu in sorted({r["mtu"] for r in rows}):
    for suffix in ("", "-v6"):
        if "tuntcp" + suffix not in systems: continue
        for system in ("tuntcp" + suffix, "kernel" + suffix):
            print(f"| {mtu} | {system} | {med(system, mtu, 'discard', 'gbit_s'):.2f} | {med(system, mtu, 'source', 'gbit_s'):.2f} | {med(system, mtu, 'echo', 'p50_us'):.0f} | {med(system, mtu, 'echo', 'p99_us'):.0f} |")
        r = lambda t, k: med("tuntcp" + suffix, mtu, t, k) / med("kernel" + suffix, mtu, t, k)
        print(f"| {mtu} | TunTcp / kernel{suffix} | {r('discard','gbit_s'):.2f} | {r('source','gbit_s'):.2f} | {r('echo','p50_us'):.2f} | {r('echo','p99_us'):.2f} |")
errors = [r for r in rows if r.get("error")]
if errors: print(f"\n{len(errors)} measurement(s) failed: {errors}")
PY

if [ "$PEERS" = 1 ]; then
    if [ -f "$ROOT/../shared/peers/bench.sh" ]; then
        (cd "$ROOT" && STACKS="tuntcp gvisor lwip" MTUS="$MTUS" MB="$MB" N="$N" REPS="$REPS" bash ../shared/peers/bench.sh)
    else
        echo "PEERS=1: ../shared/peers/bench.sh not found next to this checkout"
    fi
fi
