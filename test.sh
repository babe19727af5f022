#!/usr/bin/env bash
# Runs every TunTcp test: installs the system packages the tests need, builds, runs all test
# projects, and ends with one line "N passed, N failed, N skipped" summing every test that ran.
# Tests that need root (real TUN devices in namespaces they create) skip with a message otherwise.
# Usage: ./test.sh [extra dotnet test args, e.g. --filter FullyQualifiedName~Wire]
set -uo pipefail
cd "$(dirname "$0")"

./scripts/install-deps.sh test || { echo "0 passed, 1 failed"; exit 1; }
./scripts/install-tools.sh || { echo "0 passed, 1 failed"; exit 1; }

results=$(mktemp -d /tmp/tuntcp-test.XXXXXX)
trap 'rm -rf "$results"' EXIT

if ! dotnet build TunTcp.slnx -c Release -nologo -clp:ErrorsOnly -v:q; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# The NuGet packages and the dotnet tool (PackageTests installs the tool from them).
if ! dotnet pack TunTcp.slnx -c Release --no-build -nologo -v:q -clp:ErrorsOnly; then
  echo "pack failed"
  echo "0 passed, 1 failed"
  exit 1
fi

status=0
hung=0
for proj in tests/*/*.csproj; do
  name=$(basename "$proj" .csproj)
  # Bounded: a test that hangs fails its project (counted below) instead of holding CI forever.
  timeout --kill-after=30 1800 dotnet test "$proj" -c Release --no-build -nologo \
    --logger "trx;LogFileName=$name.trx" --results-directory "$results" "$@"
  rc=$?
  if [ $rc -ne 0 ]; then status=1; fi
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "$name: timed out after 30 minutes"; hung=$((hung + 1)); fi
done

python3 - "$results" "$hung" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
for f in glob.glob(sys.argv[1] + "/**/*.trx", recursive=True):
    c = ET.parse(f).getroot().find("t:ResultSummary/t:Counters", ns)
    if c is None: continue
    passed += int(c.get("passed", 0)); failed += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0)) + int(c.get("aborted", 0))
    skipped += int(c.get("notExecuted", 0))
failed += int(sys.argv[2])  # a project that timed out left no results: one failure each
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
