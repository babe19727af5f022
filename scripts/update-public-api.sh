#!/usr/bin/env bash
# Rewrites PublicAPI.Unshipped.txt of each package project from what the build reports as
# undeclared (RS0016) or gone (RS0017). Run after a deliberate change to the public API, then read
# the diff: it is the API change.
set -euo pipefail
cd "$(dirname "$0")/.."
for proj in src/TunTcp src/TunTcp.AspNetCore src/TunTcp.Hosting; do
  [ -f "$proj/PublicAPI.Unshipped.txt" ] || continue
  log=$(mktemp)
  dotnet build "$proj" -c Release -nologo -v:q --no-incremental >"$log" 2>&1 || true
  python3 - "$proj" "$log" <<'PY'
import re, sys
proj, out = sys.argv[1], open(sys.argv[2]).read()
name = proj.rstrip('/').split('/')[-1]
mine = [l for l in out.splitlines() if f"/{name}.csproj]" in l]
add = set(re.findall(r"error RS0016: Symbol '(.*?)' is not part of the declared public API", "\n".join(mine)))
gone = set(re.findall(r"error RS0017: Symbol '(.*?)' is part of the declared API, but is either not public or could not be found", "\n".join(mine)))
path = f"{proj}/PublicAPI.Unshipped.txt"
lines = [l for l in open(path).read().splitlines() if l and not l.startswith('#')]
lines = sorted((set(lines) - gone) | add, key=lambda s: s.lstrip('~').replace('static ', '').replace('override ', '').replace('const ', '').replace('abstract ', '').replace('virtual ', '').replace('readonly ', ''))
open(path, 'w').write("#nullable enable\n" + "".join(l + "\n" for l in lines))
print(f"{path}: +{len(add)} -{len(gone)}, {len(lines)} entries")
PY
  rm -f "$log"
done
