#!/usr/bin/env bash
# Floods survived, measured (issue 12 item 2), against the stack and, as the reference, against the
# Linux kernel on the same topology. TARGETS=stack: `tuntcp serve` on its TUN device in a
# namespace this script creates, flooded from the kernel side of that namespace. TARGETS=kernel:
# a second namespace joined to the first by a veth pair, with the same addresses (192.168.0.2 and
# fd00:7475:6e::2) and a kernel echo server on port 7 (Python asyncio, backlog 4096, the kernel's
# own SYN cookies), flooded the same way. For each flood:
#
#   none       no flood: the baseline (IPv4 client)
#   syn        SYNs from random IPv4 sources (hping3 --rand-source --flood): fills the half-open
#              queue, SYN cookies take over
#   ack        ACKs at random sequence numbers to the echo port (hping3 -A --flood)
#   rst        RSTs at random sequence numbers (hping3 -R --flood)
#   garbage    well-formed IPv4 headers with random transport bytes (raw socket, flood_packets.py)
#   fragments  IPv4 first fragments that never complete (hping3 -f -x --flood): reassembly's budget
#   none6      no flood, the client over IPv6: the IPv6 baseline
#   syn6       IPv6 SYNs from random sources in fd00:7475:6f::/64 (raw socket, flood_packets.py;
#              hping3 has no IPv6); the client connects over IPv6
#
# "into" counts the packets the target's device took in (the stack: what the TUN device queued
# to it; the kernel: the veth's receive side), "q. drops" those the device had no room for (the
# stack fell behind the sender; for the kernel, the veth pair's drops).
# Each flood runs for FLOOD_SECONDS at the highest rate the sender reaches (hping3 --flood, which
# ignores -c, so the bound is time; the count sent is reported), while a legitimate client makes
# fresh echo connections (connect, 8-byte round trip, close) one after another for as long.
# Reported per flood: packets and the rate, the client's success share and latency
# (p50/p99/max), the tool's RSS and peak RSS (VmHWM), and after the flood the target's
# connections, half-open entries and cookie counters (the stack: `tuntcp stats --json`, with TCP
# memory; the kernel: ss and /proc/net/netstat): the "exactly as before" check.
#
#   sudo bench/floods.sh                 # FLOOD_SECONDS=10, COUNT=100000 (connections at most), TARGETS="stack kernel"
#   FLOOD_SECONDS=3 ONLY="none syn" TARGETS=stack bench/floods.sh
#
# Network rule: every packet stays in the namespaces this script creates (unique names, removed on
# every exit); spoofed sources get SYN-ACKs that the first namespace's kernel drops (it does not
# forward); floods are bounded by count and by timeout; only processes this script started are ended.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
FLOOD_SECONDS=${FLOOD_SECONDS:-10}
PACKETS=${PACKETS:-5000000}   # raw-socket floods (flood_packets.py) stop at this count or the time
COUNT=${COUNT:-100000}
ONLY=${ONLY:-"none syn ack rst garbage fragments none6 syn6"}
TARGETS=${TARGETS:-"stack kernel"}
TOOL=${TUNTCP_TOOL:-$ROOT/artifacts/tuntcp/tuntcp}
STACK=192.168.0.2 HOST=192.168.0.1 STACK6=fd00:7475:6e::2 HOST6=fd00:7475:6e::1

[ "$(id -u)" -eq 0 ] || { echo "bench/floods.sh needs root (network namespaces, TUN devices, raw sockets)"; exit 1; }
"$ROOT/scripts/install-deps.sh" test >/dev/null || exit 1
command -v hping3 >/dev/null || { echo "bench/floods.sh: hping3 missing"; exit 1; }
"$ROOT/run.sh" --help >/dev/null || { echo "build failed"; exit 1; }

NS= NS2= PID= SERVER= LOG=$(mktemp /tmp/tuntcp-floods.XXXXXX)
teardown() {
    if [ -n "$PID" ]; then
        kill -INT "$PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null
    fi
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
    [ -n "$NS" ] && ip netns delete "$NS" 2>/dev/null
    [ -n "$NS2" ] && ip netns delete "$NS2" 2>/dev/null
    PID= SERVER= NS= NS2=
}
trap 'teardown; rm -f "$LOG"' EXIT

setup_stack() {
    NS=tfl-$$-$RANDOM DEV=tfl$RANDOM
    ip netns add "$NS" || exit 1
    "$TOOL" serve --netns "$NS" --tun "$DEV" --no-http >"$LOG" 2>&1 & PID=$!
    for _ in $(seq 300); do grep -q ready "$LOG" && break; kill -0 $PID 2>/dev/null || break; sleep 0.1; done
    grep -q ready "$LOG" || { echo "tuntcp serve did not start:"; cat "$LOG"; exit 1; }
    # The process that holds the stack: the dotnet child of run.sh's apphost, or the tool itself.
    STACK_PID=$(pgrep -P $PID dotnet || echo $PID)
}
into_stack() { ip netns exec "$NS" cat /sys/class/net/$DEV/statistics/tx_packets; }
drops_stack() { ip netns exec "$NS" cat /sys/class/net/$DEV/statistics/tx_dropped; }
rss_stack() { awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {printf "%d %d", r/1024, h/1024}' /proc/$STACK_PID/status; }
totals_stack() {
    "$TOOL" stats --netns "$NS" --tun "$DEV" --json 2>/dev/null | python3 -c '
import json, sys
t = json.load(sys.stdin)["Totals"]
print(" ".join(f"{k}={t.get(k, 0)}" for k in ["connections", "half_open", "tcp_memory", "syn_cookies_sent", "syn_cookies_validated", "dropped_malformed"]))'
}

setup_kernel() {
    NS=tfk-$$-$RANDOM NS2=tfs-$$-$RANDOM VA=tfa$RANDOM VB=tfb$RANDOM
    { ip netns add "$NS" && ip netns add "$NS2"; } || exit 1
    ip link add "$VA" netns "$NS" type veth peer name "$VB" netns "$NS2" || exit 1
    ip -n "$NS" link set lo up; ip -n "$NS2" link set lo up
    ip -n "$NS" addr add $HOST/24 dev "$VA"; ip -n "$NS" addr add $HOST6/64 dev "$VA" nodad
    ip -n "$NS2" addr add $STACK/24 dev "$VB"; ip -n "$NS2" addr add $STACK6/64 dev "$VB" nodad
    ip -n "$NS" link set "$VA" up; ip -n "$NS2" link set "$VB" up
    # Replies to spoofed sources cross the veth and die in the first namespace, as the stack's do.
    ip -n "$NS2" route add default via $HOST; ip -n "$NS2" -6 route add default via $HOST6
    ip netns exec "$NS2" python3 "$HERE/echo_server.py" 7 & SERVER=$!
    for _ in $(seq 100); do [ -n "$(ip netns exec "$NS2" ss -Hltn sport = :7)" ] && break; sleep 0.1; done
    echo "kernel $(uname -r), server namespace: tcp_syncookies=$(ip netns exec "$NS2" sysctl -n net.ipv4.tcp_syncookies)" \
         "tcp_max_syn_backlog=$(ip netns exec "$NS2" sysctl -n net.ipv4.tcp_max_syn_backlog) somaxconn=$(ip netns exec "$NS2" sysctl -n net.core.somaxconn)"
}
into_kernel() { ip netns exec "$NS2" cat /sys/class/net/$VB/statistics/rx_packets; }
drops_kernel() {
    echo $(( $(ip netns exec "$NS" cat /sys/class/net/$VA/statistics/tx_dropped) + $(ip netns exec "$NS2" cat /sys/class/net/$VB/statistics/rx_dropped) ))
}
rss_kernel() { echo "- -"; }
totals_kernel() {
    local half conns
    half=$(ip netns exec "$NS2" ss -Htan state syn-recv | wc -l)
    conns=$(ip netns exec "$NS2" ss -Htan state established | wc -l)
    ip netns exec "$NS2" cat /proc/net/netstat | python3 -c '
import sys
lines = sys.stdin.read().splitlines()
v = {}
for names, values in zip(lines[::2], lines[1::2]):
    if names.startswith("TcpExt:"):
        v = dict(zip(names.split()[1:], values.split()[1:]))
sent, valid, drops = (v.get(k, 0) for k in ("SyncookiesSent", "SyncookiesRecv", "ListenDrops"))
print(f"connections={sys.argv[1]} half_open={sys.argv[2]} syn_cookies_sent={sent} syn_cookies_validated={valid} listen_drops={drops}")' "$conns" "$half"
}

flood() { # $1 kind; runs in the background, bounded by count and timeout
    case $1 in
        none|none6) sleep "$FLOOD_SECONDS" ;;
        syn) timeout "$FLOOD_SECONDS" ip netns exec "$NS" hping3 -q -S -p 7 --rand-source --flood $STACK ;;
        ack) timeout "$FLOOD_SECONDS" ip netns exec "$NS" hping3 -q -A -p 7 --flood $STACK ;;
        rst) timeout "$FLOOD_SECONDS" ip netns exec "$NS" hping3 -q -R -p 7 --flood $STACK ;;
        fragments) timeout "$FLOOD_SECONDS" ip netns exec "$NS" hping3 -q -f -x -d 1200 -p 9 --flood $STACK ;;
        garbage) timeout $((FLOOD_SECONDS + 30)) ip netns exec "$NS" python3 "$HERE/flood_packets.py" garbage "$PACKETS" "$FLOOD_SECONDS" $HOST $STACK 7 ;;
        syn6) timeout $((FLOOD_SECONDS + 30)) ip netns exec "$NS" python3 "$HERE/flood_packets.py" syn6 "$PACKETS" "$FLOOD_SECONDS" fd00:7475:6f:: $STACK6 7 ;;
    esac >/dev/null 2>&1
}

printf "%-7s %-10s %9s %9s %9s %11s %9s %9s %9s %8s %8s  %s\n" target flood "into" "pkt/s" "q. drops" "ok" "p50 ms" "p99 ms" "max ms" "RSS MB" "peak MB" "after the flood"
for target in $TARGETS; do
    case $target in stack|kernel) ;; *) echo "bench/floods.sh: unknown target $target (stack, kernel)"; exit 2 ;; esac
    "setup_$target"
    echo "$target before: $("totals_$target")"
    for kind in $ONLY; do
        dst=$STACK; case $kind in *6) dst=$STACK6 ;; esac
        before_in=$("into_$target") before_drop=$("drops_$target")
        t0=$(date +%s.%N)
        flood "$kind" & FP=$!
        sleep 0.2
        res=$(timeout $((FLOOD_SECONDS + 60)) ip netns exec "$NS" python3 "$HERE/flood_client.py" $dst 7 "$COUNT" 5 "$(awk "BEGIN { print $FLOOD_SECONDS - 0.4 }")")
        wait $FP
        t1=$(date +%s.%N)
        sent=$(( $("into_$target") - before_in )) dropped=$(( $("drops_$target") - before_drop ))
        read -r r h <<<"$("rss_$target")"
        sleep 1   # let timers settle (half-open entries of the flood time out in the SYN-ACK retries)
        python3 - "$target" "$kind" "$sent" "$t0" "$t1" "$res" "$r" "$h" "$("totals_$target")" "$dropped" <<'PY'
import json, sys
target, kind, sent, t0, t1, res, r, h, after, dropped = sys.argv[1:]
c = json.loads(res)
rate = int(sent) / max(1e-3, float(t1) - float(t0))
fmt = lambda v: "-" if v is None else f"{v:.2f}"
print(f"{target:<7} {kind:<10} {int(sent):>9} {rate:>9.0f} {int(dropped):>9} {c['ok']:>5}/{c['attempts']:<5} {fmt(c['p50_ms']):>9} {fmt(c['p99_ms']):>9} {fmt(c['max_ms']):>9} {r:>8} {h:>8}  {after}")
PY
    done
    # After every flood: the half-open entries of the SYN floods go once their SYN-ACK retries end
    # (about a minute); wait for that (bounded) and show the target as it is then.
    for i in $(seq 120); do
        case "$("totals_$target")" in *"half_open=0 "*) break ;; esac
        sleep 1
    done
    echo "$target after all floods (+${i}s): $("totals_$target")"
    teardown
done
