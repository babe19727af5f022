#!/usr/bin/env bash
# Floods survived, measured (issue 12 item 2). `tuntcp serve` on its TUN device in a namespace
# this script creates; from the kernel side of that namespace, for each flood:
#
#   none       no flood: the baseline
#   syn        SYNs from random IPv4 sources (hping3 --rand-source --flood): fills the half-open
#              queue, SYN cookies take over
#   ack        ACKs at random sequence numbers to the echo port (hping3 -A --flood)
#   rst        RSTs at random sequence numbers (hping3 -R --flood)
#   garbage    well-formed IPv4 headers with random transport bytes (raw socket, python)
#   fragments  IPv4 first fragments that never complete (hping3 -f -x --flood): reassembly's budget
#
# "into tun" counts the packets the kernel queued to the device (the stack read them), "q. drops"
# those the device's queue had no room for (tx_dropped: the stack fell behind the sender).
# Each flood runs for FLOOD_SECONDS at the highest rate the sender reaches (hping3 --flood, which
# ignores -c, so the bound is time; the count sent is reported), while a legitimate client makes
# fresh echo connections (connect, 8-byte round trip, close) one after another for as long. Reported per
# flood: packets sent and the rate, the client's success share and latency (p50/p99/max), the
# tool's peak RSS (VmHWM) and RSS, and after the flood the stack's half-open entries, connections,
# fragment and TCP memory from `tuntcp stats --json` (the "exactly as before" check).
#
#   sudo bench/floods.sh                 # FLOOD_SECONDS=10, COUNT=100000 (connections at most)
#   FLOOD_SECONDS=3 ONLY="none syn" bench/floods.sh
#
# Network rule: every packet stays in the namespace this script creates (unique name, removed on
# every exit); hping3's spoofed sources get SYN-ACKs the namespace's kernel drops (no route
# back); floods are bounded by count and by timeout; only processes this script started are ended.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
FLOOD_SECONDS=${FLOOD_SECONDS:-10}
PACKETS=${PACKETS:-1000000}   # garbage flood (python) only
COUNT=${COUNT:-100000}
ONLY=${ONLY:-"none syn ack rst garbage fragments"}
TOOL=${TUNTCP_TOOL:-$ROOT/artifacts/tuntcp/tuntcp}
STACK=192.168.0.2 HOST=192.168.0.1

[ "$(id -u)" -eq 0 ] || { echo "bench/floods.sh needs root (network namespaces, TUN devices, raw sockets)"; exit 1; }
"$ROOT/scripts/install-deps.sh" test >/dev/null || exit 1
command -v hping3 >/dev/null || { echo "bench/floods.sh: hping3 missing"; exit 1; }
"$ROOT/run.sh" --help >/dev/null || { echo "build failed"; exit 1; }

NS=tfl-$$-$RANDOM DEV=tfl$RANDOM
LOG=$(mktemp /tmp/tuntcp-floods.XXXXXX)
PID=
cleanup() {
    if [ -n "$PID" ]; then
        kill -INT "$PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null
    fi
    ip netns delete "$NS" 2>/dev/null
    rm -f "$LOG"
}
trap cleanup EXIT
ip netns add "$NS" || exit 1
"$TOOL" serve --netns "$NS" --tun "$DEV" --no-http >"$LOG" 2>&1 & PID=$!
for _ in $(seq 300); do grep -q ready "$LOG" && break; kill -0 $PID 2>/dev/null || break; sleep 0.1; done
grep -q ready "$LOG" || { echo "tuntcp serve did not start:"; cat "$LOG"; exit 1; }
# The process that holds the stack: the dotnet child of run.sh's apphost, or the tool itself.
STACK_PID=$(pgrep -P $PID dotnet || echo $PID)

rss() { awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {printf "%d %d", r/1024, h/1024}' /proc/$STACK_PID/status; }
totals() {
    "$TOOL" stats --netns "$NS" --tun "$DEV" --json 2>/dev/null | python3 -c '
import json, sys
t = json.load(sys.stdin)["Totals"]
print(" ".join(f"{k}={t.get(k, 0)}" for k in ["connections", "half_open", "tcp_memory", "syn_cookies_sent", "syn_cookies_validated", "dropped_malformed"]))'
}

flood() { # $1 kind; runs in the background, bounded by count and timeout
    case $1 in
        none) sleep "$FLOOD_SECONDS" ;;
        syn) timeout "$FLOOD_SECONDS" ip netns exec "$NS" hping3 -q -S -p 7 --rand-source --flood $STACK ;;
        ack) timeout "$FLOOD_SECONDS" ip netns exec "$NS" hping3 -q -A -p 7 --flood $STACK ;;
        rst) timeout "$FLOOD_SECONDS" ip netns exec "$NS" hping3 -q -R -p 7 --flood $STACK ;;
        fragments) timeout "$FLOOD_SECONDS" ip netns exec "$NS" hping3 -q -f -x -d 1200 -p 9 --flood $STACK ;;
        garbage) timeout "$FLOOD_SECONDS" ip netns exec "$NS" python3 - "$PACKETS" $HOST $STACK <<'PY' ;;
import os, random, socket, struct, sys
n, src, dst = int(sys.argv[1]), sys.argv[2], sys.argv[3]
random.seed(5)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(n):
    body = os.urandom(random.randint(0, 120))
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), i & 0xFFFF, 0, 64, random.choice([6, 17, 1, 250]), 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    s.sendto(header + body, (dst, 0))
PY
    esac >/dev/null 2>&1
}

printf "%-10s %9s %9s %9s %11s %9s %9s %9s %8s %8s  %s\n" flood "into tun" "pkt/s" "q. drops" "ok" "p50 ms" "p99 ms" "max ms" "RSS MB" "peak MB" "after the flood"
echo "before: $(totals)"
for kind in $ONLY; do
    before_in=$(ip netns exec "$NS" cat /sys/class/net/$DEV/statistics/tx_packets)
    before_drop=$(ip netns exec "$NS" cat /sys/class/net/$DEV/statistics/tx_dropped)
    t0=$(date +%s.%N)
    flood "$kind" & FP=$!
    sleep 0.2
    res=$(timeout $((FLOOD_SECONDS + 60)) ip netns exec "$NS" python3 "$HERE/flood_client.py" $STACK 7 "$COUNT" 5 "$(awk "BEGIN { print $FLOOD_SECONDS - 0.4 }")")
    wait $FP
    t1=$(date +%s.%N)
    sent=$(( $(ip netns exec "$NS" cat /sys/class/net/$DEV/statistics/tx_packets) - before_in ))
    dropped=$(( $(ip netns exec "$NS" cat /sys/class/net/$DEV/statistics/tx_dropped) - before_drop ))
    read -r r h <<<"$(rss)"
    sleep 1   # let timers settle (half-open entries of the flood time out in the SYN-ACK retries)
    python3 - "$kind" "$sent" "$t0" "$t1" "$res" "$r" "$h" "$(totals)" "$dropped" <<'PY'
import json, sys
kind, sent, t0, t1, res, r, h, after, dropped = sys.argv[1:]
c = json.loads(res)
rate = int(sent) / max(1e-3, float(t1) - float(t0))
fmt = lambda v: "-" if v is None else f"{v:.2f}"
print(f"{kind:<10} {int(sent):>9} {rate:>9.0f} {int(dropped):>9} {c['ok']:>5}/{c['attempts']:<5} {fmt(c['p50_ms']):>9} {fmt(c['p99_ms']):>9} {fmt(c['max_ms']):>9} {r:>8} {h:>8}  {after}")
PY
done
# After every flood: the half-open entries of the SYN flood go once their SYN-ACK retries end
# (about a minute); wait for that (bounded) and show the stack as it is then.
for i in $(seq 120); do
    case "$(totals)" in *"half_open=0 "*) break ;; esac
    sleep 1
done
echo "after all floods (+${i}s): $(totals)"

