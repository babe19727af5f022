#!/usr/bin/env bash
# Makes the README's pictures of a connection (docs/plot-lossy.png, docs/plot-lossy-zoom.png):
# a 1 MiB chargen download from `tuntcp serve` through its own fault injector (2 % of the stack's
# packets lost, 10 ms delay each way), captured with --pcap and --tcp-trace, drawn by
# `tuntcp plot`, rendered by headless Chromium. Run as root. The traffic stays in a network
# namespace of this run (the tool creates it and deletes it on exit); Chromium runs in an
# anonymous namespace of its own without network. Usage: scripts/plot-example.sh [OUTDIR]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
outdir="${1:-$here/docs}"
zoom_from="${ZOOM_FROM:-0.28}" zoom_to="${ZOOM_TO:-0.46}"
"$here/scripts/install-deps.sh" test
out="$here/artifacts/tuntcp"
dotnet build "$here/src/TunTcp.Cli/TunTcp.Cli.csproj" -c Release -nologo -v:q -clp:ErrorsOnly -o "$out" >/dev/null
ln -sf TunTcp.Cli "$out/tuntcp"
tool="$out/tuntcp"
work="$(mktemp -d)"
ns="tt-plot-$$" dev="ttplot$$" pid=
cleanup() {
  if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; wait "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
"$tool" serve --netns "$ns" --tun "$dev" -4 --host-addr 10.79.0.1/24 --addr 10.79.0.2 \
  --pcap "$work/lossy.pcapng" --tcp-trace "$work/lossy.jsonl" --loss out:2 --delay 10 --seed 7 >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do grep -q ready "$work/serve.log" && break; sleep 0.1; done
grep -q ready "$work/serve.log" || { cat "$work/serve.log" >&2; exit 1; }
ip netns exec "$ns" sh -c 'nc -N 10.79.0.2 19 </dev/null | head -c 1048576 >/dev/null'
kill -INT "$pid"; wait "$pid"; pid=
"$tool" plot "$work/lossy.pcapng" --trace "$work/lossy.jsonl" -o "$work/lossy.html"
"$tool" plot "$work/lossy.pcapng" --trace "$work/lossy.jsonl" --from "$zoom_from" --to "$zoom_to" -o "$work/zoom.html"
render() {
  unshare --net chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --disable-background-networking \
    --disable-component-update --no-first-run --user-data-dir="$work/profile" --screenshot="$2" \
    --window-size=1130,1400 "file://$1" 2>/dev/null
}
mkdir -p "$outdir"
render "$work/lossy.html" "$outdir/plot-lossy.png"
render "$work/zoom.html" "$outdir/plot-lossy-zoom.png"
echo "plot-example: wrote $outdir/plot-lossy.png and $outdir/plot-lossy-zoom.png"
