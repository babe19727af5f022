#!/usr/bin/env bash
# Soak (issue 12 item 5): `tuntcp serve` with fault injection (loss and delay both ways) under a
# mixed load for MINUTES: bulk downloads (chargen) and uploads (discard), several hundred
# persistent echo connections doing round trips, short connections one after another, and every
# minute a 5 s RST flood at random sequence numbers. Every INTERVAL seconds one line: what each
# part moved, errors, the tool's RSS and the stack's connection count and TCP buffer memory; at
# the end memory at the start and at the end (flat: no leak).
#
#   sudo bench/soak.sh                     # 10 minutes
#   sudo bench/soak.sh --minutes 1         # what CI-sized runs use
#
# Env: INTERVAL (10 s), FAULTS (serve's fault options, "--loss 0.5 --delay 2"), BULK (4),
#      UPLOADS (2), ECHOERS (200), TUNTCP_TOOL.
# Network rule: all traffic inside the namespace this script creates (unique, removed on every
# exit); every part is bounded by the run's duration and by timeouts; only our PIDs are ended.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
MINUTES=10
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "soak.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$MINUTES" in ''|*[!0-9.]*) echo "soak.sh: --minutes takes a number, not '$MINUTES'" >&2; exit 2 ;; esac
INTERVAL=${INTERVAL:-10}
FAULTS=${FAULTS:-"--loss 0.5 --delay 2"}
TOOL=${TUNTCP_TOOL:-$ROOT/artifacts/tuntcp/tuntcp}
STACK=192.168.0.2
SECS=$(awk "BEGIN { printf \"%d\", $MINUTES * 60 }")

[ "$(id -u)" -eq 0 ] || { echo "bench/soak.sh needs root (network namespaces, TUN devices)"; exit 1; }
"$ROOT/scripts/install-deps.sh" test >/dev/null || exit 1
[ -n "${TUNTCP_TOOL:-}" ] || "$ROOT/run.sh" --help >/dev/null || { echo "build failed"; exit 1; }

NS=tsk-$$-$RANDOM DEV=tsk$RANDOM
LOG=$(mktemp /tmp/tuntcp-soak.XXXXXX)
PID= CPID= FPID=
cleanup() {
    for p in $CPID $FPID; do kill "$p" 2>/dev/null; done
    if [ -n "$PID" ]; then
        kill -INT "$PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null
    fi
    ip netns delete "$NS" 2>/dev/null
    rm -f "$LOG" "$LOG.client"
}
trap cleanup EXIT
ip netns add "$NS" || exit 1
# shellcheck disable=SC2086
"$TOOL" serve --netns "$NS" --tun "$DEV" --no-http -q $FAULTS >"$LOG" 2>&1 & PID=$!
for _ in $(seq 300); do grep -q ready "$LOG" && break; kill -0 $PID 2>/dev/null || break; sleep 0.1; done
grep -q ready "$LOG" || { echo "tuntcp serve did not start:"; cat "$LOG"; exit 1; }

rss() { awk '/^VmRSS/ {printf "%d", $2/1024}' /proc/$PID/status; }
stack() {
    "$TOOL" stats --netns "$NS" --tun "$DEV" --json 2>/dev/null | python3 -c '
import json, sys
t = json.load(sys.stdin)["Totals"]
print(t.get("connections", 0), t.get("tcp_memory", 0) // 1024, t.get("retransmissions", 0))' 2>/dev/null || echo "? ? ?"
}

echo "soak: $MINUTES min, faults: $FAULTS, interval ${INTERVAL}s"
read -r c0 m0 _ <<<"$(stack)"; r0=$(rss)
echo "start: RSS ${r0} MB, connections $c0, tcp_memory ${m0} KiB"
printf "%6s %10s %10s %9s %9s %7s %7s %7s %9s %8s\n" t "down Mb/s" "up Mb/s" "echo/s" "short/s" errors "RSS MB" conns "tcp KiB" "retrans"
timeout $((SECS + 60)) ip netns exec "$NS" python3 -u "$HERE/soak_client.py" $STACK "$SECS" "$INTERVAL" \
    "${BULK:-4}" "${UPLOADS:-2}" "${ECHOERS:-200}" >"$LOG.client" 2>&1 & CPID=$!
# A 5 s RST flood at random sequence numbers every minute (bounded by timeout).
( for _ in $(seq $(( (SECS + 59) / 60 ))); do
      sleep 55; timeout 5 ip netns exec "$NS" hping3 -q -R -p 7 --flood $STACK >/dev/null 2>&1
  done ) & FPID=$!
seen=0
while kill -0 $CPID 2>/dev/null; do
    sleep 1
    lines=$(wc -l <"$LOG.client")
    while [ "$seen" -lt "$lines" ]; do
        seen=$((seen + 1))
        line=$(sed -n "${seen}p" "$LOG.client")
        read -r c m x <<<"$(stack)"
        python3 - "$line" "$INTERVAL" "$(rss)" "$c" "$m" "$x" <<'PY'
import json, sys
line, interval, rss, c, m, x = sys.argv[1:]
try:
    d = json.loads(line)
except ValueError:
    print(line); sys.exit()
i = float(interval)
print(f"{d['t']:>6} {d['down_bytes'] * 8 / i / 1e6:>10.1f} {d['up_bytes'] * 8 / i / 1e6:>10.1f} {d['echo_rt'] / i:>9.0f} {d['short_conn'] / i:>9.0f} {d['errors']:>7} {rss:>7} {c:>7} {m:>9} {x:>8}")
PY
    done
done
wait $CPID
kill $FPID 2>/dev/null
sleep 3
read -r c1 m1 _ <<<"$(stack)"; r1=$(rss)
echo "end: RSS ${r1} MB (start ${r0}), connections $c1 (start $c0), tcp_memory ${m1} KiB (start ${m0})"
