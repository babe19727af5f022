#!/usr/bin/env bash
# Builds TunTcp (Release, incremental, quiet unless it fails) and runs the tuntcp tool with the
# given arguments; `serve` when there are none or only options (`./run.sh --ipv4-only`). The tool replaces this shell (exec), so signals
# such as Ctrl-C reach it directly and it can clean up what it created.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/scripts/install-deps.sh" run
out="$here/artifacts/tuntcp"
if ! log=$(dotnet build "$here/src/TunTcp.Cli/TunTcp.Cli.csproj" -c Release -nologo -v:q -clp:ErrorsOnly -o "$out" 2>&1); then
  printf '%s\n' "$log" >&2
  exit 1
fi
# No command, or options only (./run.sh --ipv4-only): serve with them. --help and --version stay the tool's own.
case "${1:-}" in
  "") set -- serve ;;
  -h|--help|-\?|--version) ;;
  -*) set -- serve "$@" ;;
esac
ln -sf TunTcp.Cli "$out/tuntcp"
exec "$out/tuntcp" "$@"
