#!/usr/bin/env bash
# Scale benchmark of TunTcp (root). Prints figures; asserts nothing about time.
#
#   bench/scale.sh              # 100,000 held connections, then 10 s accept-rate runs, ~2-4 minutes
#   bench/scale.sh --quick      # smoke check: N=10000, 3 s runs (QUICK=1 does the same)
#   N=50000 SECONDS_PER_RUN=5 bench/scale.sh
#
# 1. Held connections: `tuntcp serve` on a TUN device in a namespace this script creates; the
#    kernel of that namespace opens N connections to the stack's discard service (port 9) with
#    bench/scale_client.py (epoll, at most INFLIGHT connects pending), from several host-side
#    addresses of the device (each its own ephemeral port range), holds them, closes them.
#    Reports the connects (count, time, rate), the tool's VmRSS/VmHWM idle, with N held and after
#    closing, the kernel's count of established sockets (ss) and the stack's own totals
#    (`tuntcp stats --json`: connections, tcp_memory, syn_cookies_sent, ...).
# 2. Accept rate, handshake to first byte: the same client in `rate` mode (CONCURRENCY slots:
#    connect, wait for the first byte, close with RST, again) for SECONDS_PER_RUN against the
#    stack's chargen (port 19, sends at once) and against a kernel server doing the same
#    (bench/scale_kernel_server.py) in a second namespace joined by a veth pair.
#
# Env: N (100000), SECONDS_PER_RUN (10), CONCURRENCY (64), INFLIGHT (2000), HOLD_SECONDS (5),
#      DRAIN_SECONDS (60: longest wait for the closes to reach the stack), TUN_QLEN (tun0's transmit
#      queue in the namespace, kernel -> stack; the device default 500 unless set), PARTS ("hold rate": which of 1. and 2. to run), TUNTCP_ARGS (extra serve options), TUNTCP_TOOL (another build of the tool), QUICK (1 = --quick).
# Network rule: traffic only inside the namespaces this script creates (unique names, removed on
# every exit path by the trap); every client run is bounded in count and time (timeout); only
# processes this script started are stopped, by PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
[ "${1:-}" = --quick ] && QUICK=1
if [ "${QUICK:-0}" = 1 ]; then N=${N:-10000}; SECS=${SECONDS_PER_RUN:-3}; else N=${N:-100000}; SECS=${SECONDS_PER_RUN:-10}; fi
CONC=${CONCURRENCY:-64}
INFLIGHT=${INFLIGHT:-2000}
HOLD=${HOLD_SECONDS:-5}
DRAIN=${DRAIN_SECONDS:-60}
TUN_QLEN=${TUN_QLEN:-}
TUNTCP_ARGS=${TUNTCP_ARGS:-}
PARTS=${PARTS:-"hold rate"}
TOOL=${TUNTCP_TOOL:-$ROOT/artifacts/tuntcp/tuntcp}
PY=python3
STACK=192.168.0.2
HOLD_TIMEOUT=$((N / 200 + 120))   # the hold client's own bound, s (>= 500 connects/s, or it gives up)
TOOL_MAX=$((HOLD_TIMEOUT + 2 * SECS + 400))   # the tool's lifetime bound, s

[ "$(id -u)" -eq 0 ] || { echo "bench/scale.sh needs root (network namespaces, TUN devices)"; exit 1; }
"$ROOT/run.sh" --help >/dev/null || { echo "build failed"; exit 1; }
# Open files: as many as allowed (ulimit -n 300000 where the hard limit allows it). A client process
# holds at most that many sockets less a margin, so N is split over ceil(N / that) client processes.
ulimit -n 300000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
PER_CLIENT=$(( $(ulimit -n) - 200 ))
[ "$PER_CLIENT" -gt 60000 ] && PER_CLIENT=60000
CLIENTS=$(( (N + PER_CLIENT - 1) / PER_CLIENT ))

UNIQ=$$-$RANDOM
NS_T=tsc-t-$UNIQ NS_A=tsc-a-$UNIQ NS_B=tsc-b-$UNIQ
TMP=$(mktemp -d /tmp/tuntcp-scale.XXXXXX)
TPID= PID= KPID=
stop_tool() {
    if [ -n "$PID" ]; then
        kill -INT "$PID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null
    fi
    [ -n "$TPID" ] && { kill "$TPID" 2>/dev/null; wait "$TPID" 2>/dev/null; }
    PID= TPID=
}
stop_kernel_server() {
    [ -n "$KPID" ] && { kill "$KPID" 2>/dev/null; wait "$KPID" 2>/dev/null; }
    KPID=
}
cleanup() {
    stop_tool; stop_kernel_server
    for ns in $NS_T $NS_A $NS_B; do ip netns delete "$ns" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load() { cut -d' ' -f1-3 /proc/loadavg; }
rss() { # "VmRSS VmHWM" of the tool, MiB
    awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {printf "%.1f %.1f", r/1024, h/1024}' "/proc/$PID/status" 2>/dev/null || echo "nan nan"
}
stats_totals() { # $1 label: the stack's totals from its statistics socket, one JSON line
    local f=$TMP/stats.json t0 t1
    t0=$(date +%s.%N)
    timeout 180 "$TOOL" stats --netns "$NS_T" --json >"$f" 2>"$TMP/stats.err" || { echo "{\"label\": \"$1\", \"error\": \"$(tr -d '"\n' <"$TMP/stats.err" | head -c 300)\"}"; return; }
    t1=$(date +%s.%N)
    $PY - "$f" "$1" "$t0" "$t1" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read()
try:
    r = json.loads(raw)
except ValueError as e:
    print(json.dumps({"label": sys.argv[2], "error": f"report not JSON ({len(raw) / 2**20:.1f} MiB, truncated?): {e}"[:300]}))
    sys.exit(0)
t = r["Totals"]
keys = ["connections", "half_open", "accept_queue", "connections_opened", "connections_closed", "tcp_memory",
        "tcp_memory_pressure", "tcp_memory_drops", "syn_cookies_sent", "syn_cookies_validated", "resets_sent",
        "retransmissions", "link_drops"]
out = {"label": sys.argv[2], **{k: t.get(k) for k in keys}, "report_mib": round(len(raw) / 2**20, 1),
       "report_seconds": round(float(sys.argv[4]) - float(sys.argv[3]), 2)}
states = {}
for c in r["Connections"]:
    states[c["State"]] = states.get(c["State"], 0) + 1
out["states"] = states
print(json.dumps(out))
PY
}
est_count() { # established kernel sockets in $1 towards $2
    ip netns exec "$1" ss -Htn state established "( dst $2 )" 2>/dev/null | wc -l
}

echo "# $(date -u +%FT%TZ) bench/scale.sh N=$N SECONDS_PER_RUN=$SECS CONCURRENCY=$CONC INFLIGHT=$INFLIGHT HOLD_SECONDS=$HOLD nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) kernel=$(uname -r) dotnet=$(dotnet --version) python=$($PY -V 2>&1 | cut -d' ' -f2)"
echo "# commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- src bench 2>/dev/null || echo ' (with uncommitted changes)') TUNTCP_ARGS='$TUNTCP_ARGS' TUN_QLEN='$TUN_QLEN' PARTS='$PARTS'; load before: $(load)"

start_tool() { # $1 namespace, then serve options; sets TPID (the timeout wrapper) and PID (the tool itself)
    local ns=$1; shift
    timeout -s INT "$TOOL_MAX" "$TOOL" serve --netns "$ns" --no-http "$@" >"$log" 2>&1 &
    TPID=$!
    for _ in $(seq 300); do
        [ -z "$PID" ] && PID=$(cat "/proc/$TPID/task/$TPID/children" 2>/dev/null | awk '{print $1}')
        grep -q ready "$log" 2>/dev/null && break
        kill -0 "$TPID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q ready "$log" && [ -n "$PID" ] || { echo "tuntcp did not start:"; cat "$log"; exit 1; }
}
tool_log_problems() {
    echo "tool log: $(wc -l <"$log") lines; warnings/errors/exceptions:"
    grep -iE "warn|error|exception|fail|fatal" "$log" | head -20
}
tun_drops() { # kernel-side counters of the TUN device: packets the kernel could not queue to the tool
    ip -n "$NS_T" -s link show tun0 | awk '/TX:/ {getline; print "tun0 kernel->stack packets " $2 ", dropped " $4}'
}
log=$TMP/tool.log
# ---------------------------------------------------------------- 1. N held connections
out=$TMP/hold.jsonl; : >"$out"
r0=nan h0=nan r1=nan h1=nan r3=nan h3=nan
case " $PARTS " in *" hold "*)
echo "== TunTcp: $N held connections to discard (port 9)"
ip netns add "$NS_T" || exit 1
ip netns exec "$NS_T" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
log=$TMP/tool.log
start_tool "$NS_T" $TUNTCP_ARGS
echo "tool pid $PID ($(readlink "/proc/$PID/exe"))"
# One host-side address per 50,000 connections, plus one: each has 64,512 ephemeral ports.
SOURCES=192.168.0.1
for i in $(seq $((N / 50000 + 1))); do
    ip -n "$NS_T" addr add "192.168.0.$((10 + i))/24" dev tun0 || exit 1
    SOURCES="$SOURCES,192.168.0.$((10 + i))"
done
echo "source addresses: $SOURCES"
[ -n "$TUN_QLEN" ] && { ip -n "$NS_T" link set tun0 txqueuelen "$TUN_QLEN" || exit 1; }
echo "tun0 transmit queue (kernel -> stack): $(ip -n "$NS_T" link show tun0 | grep -o 'qlen [0-9]*')"
sleep 1
read -r r0 h0 <<<"$(rss)"
echo "rss idle: VmRSS ${r0} MiB, VmHWM ${h0} MiB; load $(load)"
stats_totals idle

go=$TMP/go
CPIDS=()
echo "kernel side: $CLIENTS client process(es) (open-file limit $(ulimit -n)), $((INFLIGHT / CLIENTS)) connects in flight each"
for c in $(seq 0 $((CLIENTS - 1))); do
    n=$(( N / CLIENTS + (c < N % CLIENTS ? 1 : 0) ))
    timeout $((HOLD_TIMEOUT + 30)) ip netns exec "$NS_T" $PY "$HERE/scale_client.py" hold $STACK 9 "$n" "$SOURCES" \
        --inflight $((INFLIGHT / CLIENTS)) --go "$go" --max-hold 120 --timeout "$HOLD_TIMEOUT" >"$TMP/hold.$c.jsonl" 2>"$TMP/hold.$c.err" &
    CPIDS+=($!)
done
for _ in $(seq $((HOLD_TIMEOUT * 10))); do
    [ "$(cat "$TMP"/hold.*.jsonl 2>/dev/null | grep -c '"established"')" -ge "$CLIENTS" ] && break
    alive=0; for p in "${CPIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done; [ $alive = 1 ] || break
    sleep 0.1
done
cat "$TMP"/hold.*.jsonl | grep '"established"' || { echo "hold client(s) failed:"; cat "$TMP"/hold.*.err; }
sleep "$HOLD"
read -r r1 h1 <<<"$(rss)"
echo "rss with connections held (${HOLD} s after the last connect): VmRSS ${r1} MiB, VmHWM ${h1} MiB; load $(load)"
echo "kernel side: $(est_count "$NS_T" $STACK) established sockets to $STACK; $(tun_drops)"
stats_totals held
read -r r2 h2 <<<"$(rss)"
echo "rss after the stats report: VmRSS ${r2} MiB, VmHWM ${h2} MiB"
touch "$go"
for p in "${CPIDS[@]}"; do wait "$p" 2>/dev/null; done
cat "$TMP"/hold.*.jsonl | grep '"closed"' || { echo "hold client(s) did not close cleanly:"; cat "$TMP"/hold.*.err; }
cat "$TMP"/hold.*.jsonl > "$out"
# Drained when no kernel socket towards the stack is still closing (FIN sent, not yet answered):
# the stack has then had every FIN. Polled with ss, not with stats (a report of many connections
# holds the stack thread for seconds). Bounded by DRAIN_SECONDS.
t0=$(date +%s.%N)
for _ in $(seq $((DRAIN * 2))); do
    closing=$(ip netns exec "$NS_T" ss -Htn state fin-wait-1 state fin-wait-2 state closing state last-ack state established "( dst $STACK )" 2>/dev/null | wc -l)
    [ "$closing" -eq 0 ] && break
    sleep 0.5
done
echo "kernel side: $closing sockets to $STACK still closing $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s after the close; $(tun_drops)"
stats_totals closed
read -r r3 h3 <<<"$(rss)"
echo "rss after closing: VmRSS ${r3} MiB, VmHWM ${h3} MiB; load $(load)"
tool_log_problems
stop_tool
ip netns delete "$NS_T"

;; esac

# ---------------------------------------------------------------- 2. accept rate
case " $PARTS " in *" rate "*)
rate_run() { # $1 system $2 namespace $3 host
    echo "load before $1 rate run: $(load)"
    timeout $((SECS + 30)) ip netns exec "$2" $PY "$HERE/scale_client.py" rate "$3" 19 --concurrency "$CONC" --seconds "$SECS" \
        2>"$TMP/rate.err" | $PY -c "import json,sys; r=json.loads(sys.stdin.read()); r['system']='$1'; print(json.dumps(r))" \
        | tee -a "$TMP/rate.jsonl" || { echo "rate client failed:"; cat "$TMP/rate.err"; }
}
# The stack's chargen fills its whole send buffer at accept: with the default --buffer auto that
# is 1 MiB per connection, so the stack is also measured with --buffer 65536 (kernel: 4 KiB sent).
for cfg in "tuntcp|" "tuntcp --buffer 65536|--buffer 65536"; do
    name=${cfg%%|*} args=${cfg#*|}
    echo "== $name: accept rate, chargen (port 19), concurrency $CONC, $SECS s"
    ip netns add "$NS_T" || exit 1
    start_tool "$NS_T" $TUNTCP_ARGS $args
    read -r ra ha <<<"$(rss)"
    rate_run "$name" "$NS_T" $STACK
    stats_totals "after-rate $name"
    read -r rb hb <<<"$(rss)"
    echo "rss before the rate run: VmRSS ${ra} MiB; after: VmRSS ${rb} MiB, VmHWM ${hb} MiB; $(tun_drops)"
    tool_log_problems
    stop_tool
    ip netns delete "$NS_T"
done

echo "== kernel <-> kernel over veth: accept rate, concurrency $CONC, $SECS s"
ip netns add "$NS_A" && ip netns add "$NS_B" || exit 1
ip link add tscv0 netns "$NS_A" type veth peer name tscv1 netns "$NS_B" || exit 1
for side in "$NS_A tscv0 10.98.0.1" "$NS_B tscv1 10.98.0.2"; do
    set -- $side
    ip -n "$1" link set lo up
    ip -n "$1" addr add "$3/24" dev "$2"
    ip -n "$1" link set "$2" up
done
ip netns exec "$NS_A" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
ip netns exec "$NS_B" $PY "$HERE/scale_kernel_server.py" 10.98.0.2 --port 19 --max-seconds $((SECS + 120)) >"$TMP/k.log" 2>&1 &
KPID=$!
for _ in $(seq 100); do grep -q ready "$TMP/k.log" && break; sleep 0.1; done
grep -q ready "$TMP/k.log" || { echo "kernel server did not start:"; cat "$TMP/k.log"; exit 1; }
rate_run kernel "$NS_A" 10.98.0.2
stop_kernel_server
ip netns delete "$NS_A"; ip netns delete "$NS_B"

;; esac

# ---------------------------------------------------------------- summary
$PY - "$out" "$TMP/rate.jsonl" "$r0 $h0 $r1 $h1 $r3 $h3" "$(load)" <<'PY'
import json, sys
est = [json.loads(l) for l in open(sys.argv[1]) if '"established"' in l]
e = {k: sum(r[k] for r in est) for k in ("requested", "established", "failed")} if est else {}
if est:
    e["seconds"] = max(r["seconds"] for r in est)
    e["conn_per_s"] = e["established"] / e["seconds"] if e["seconds"] > 0 else 0
import os
rates = [json.loads(l) for l in open(sys.argv[2]) if l.strip()] if os.path.exists(sys.argv[2]) else []
r0, h0, r1, h1, r3, h3 = sys.argv[3].split()
print()
print("| held connections | established | failed | seconds to establish | connects/s | VmRSS idle | VmRSS held (VmHWM) | VmRSS after close (VmHWM) |")
print("|---|---|---|---|---|---|---|---|")
print(f"| {e.get('requested', '?')} | {e.get('established', '?')} | {e.get('failed', '?')} | {e.get('seconds', '?')} | {e.get('conn_per_s', float('nan')):.0f} | {r0} MiB | {r1} MiB ({h1}) | {r3} MiB ({h3}) |")
print()
print("| system | conn/s | first byte p50 us | p99 us | completed | failed |")
print("|---|---|---|---|---|---|")
for r in rates:
    print(f"| {r['system']} | {r['conn_per_s']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | {r['completed']} | {r['failed']} |")
print(f"\nload average at the end: {sys.argv[4]}")
PY
