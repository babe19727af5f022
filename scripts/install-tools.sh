#!/usr/bin/env bash
# Installs the .NET tools the tests use (only those missing) into artifacts/tools, from NuGet:
# dotnet-counters, to check that the TunTcp meter shows in it; sharpfuzz (SharpFuzz.CommandLine),
# which instruments TunTcp.dll for afl-fuzz. Called by test.sh and scripts/fuzz.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/artifacts/tools"
mkdir -p "$tools"
if [ ! -x "$tools/dotnet-counters" ]; then
  echo "install-tools: installing dotnet-counters into $tools" >&2
  dotnet tool install dotnet-counters --version 10.0.750501 --tool-path "$tools" >/dev/null
fi
if [ ! -x "$tools/sharpfuzz" ]; then
  echo "install-tools: installing sharpfuzz into $tools" >&2
  dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tools" >/dev/null
fi
