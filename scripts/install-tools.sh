#!/usr/bin/env bash
# Installs the .NET tools the tests use (only those missing) into artifacts/tools, from NuGet:
# dotnet-counters, to check that the TunTcp meter shows in it. Called by test.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/artifacts/tools"
mkdir -p "$tools"
if [ ! -x "$tools/dotnet-counters" ]; then
  echo "install-tools: installing dotnet-counters into $tools" >&2
  dotnet tool install dotnet-counters --version 10.0.750501 --tool-path "$tools" >/dev/null
fi
