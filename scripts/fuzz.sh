#!/usr/bin/env bash
# Coverage-guided fuzzing of one TunTcp target with AFL++ through SharpFuzz.
# Usage: scripts/fuzz.sh list                 the targets
#        scripts/fuzz.sh TARGET SECONDS       fuzz TARGET for SECONDS (all: every target in turn)
#        FUZZ_EXECS=N scripts/fuzz.sh TARGET SECONDS   stop after about N executions instead
# Installs afl++ and the sharpfuzz instrumenter if missing, builds fuzz/TunTcp.Fuzz into
# artifacts/fuzz/build, instruments a copy of TunTcp.dll in the work folder (the normal build is untouched),
# runs afl-fuzz on the seeds in fuzz/corpus/TARGET, prints afl's figures, and copies any crash
# inputs to fuzz/crashes/TARGET/ (replayed with the stack trace each throws), where they become
# regression tests. Exits 1 when it found a crash. Work files (instrumented copy, afl's output
# and log per target): $FUZZ_WORK, by default artifacts/fuzz/TARGET; crash copies go to
# $FUZZ_CRASHES/TARGET, by default fuzz/crashes/TARGET. Runs with different FUZZ_WORK can overlap.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="$root/artifacts/fuzz/build"

build_fuzzer() {
  if ! log=$(dotnet build fuzz/TunTcp.Fuzz/TunTcp.Fuzz.csproj -c Release -nologo -v:q -clp:ErrorsOnly -o "$build" 2>&1); then
    printf '%s\n' "$log" >&2; exit 1
  fi
}

if [ "${1:-}" = list ]; then
  build_fuzzer
  dotnet "$build/TunTcp.Fuzz.dll" list
  exit 0
fi
if [ $# -ne 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh list | TARGET SECONDS" >&2; exit 2
fi
target=$1 seconds=$2
work="${FUZZ_WORK:-$root/artifacts/fuzz/$target}"
bin="$work/bin"
crashes_root="${FUZZ_CRASHES:-$root/fuzz/crashes}"

./scripts/install-deps.sh fuzz
./scripts/install-tools.sh
build_fuzzer
targets=$(dotnet "$build/TunTcp.Fuzz.dll" list)
if [ "$target" != all ] && ! grep -qx -- "$target" <<<"$targets"; then
  echo "fuzz: unknown target '$target'; targets: $(echo $targets)" >&2; exit 2
fi

# A fresh instrumented copy: sharpfuzz rewrites TunTcp.dll in place (only the library under
# test is instrumented, not the harness, so coverage is the stack's own).
rm -rf "$bin"; mkdir -p "$bin"
cp -r "$build/." "$bin/"
"$root/artifacts/tools/sharpfuzz" "$bin/TunTcp.dll" >/dev/null

# dotnet itself is not instrumented (SharpFuzz reports the coverage of the managed code), hence
# AFL_SKIP_BIN_CHECK; no CPU pinning or frequency check on a shared machine.
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_SUPPRESS_CRASH_DISCOVERY_WARNINGS=1

fuzz_one() {
  local target=$1 out="$work/out/$1" log="$work/out/$1.log" limit wall rc
  rm -rf "$out"; mkdir -p "$(dirname "$out")"
  limit=(-V "$seconds"); wall=$((seconds + 120))
  if [ -n "${FUZZ_EXECS:-}" ]; then limit=(-E "$FUZZ_EXECS"); wall=$((seconds + 60)); fi
  echo "fuzz: $target for ${FUZZ_EXECS:+about $FUZZ_EXECS executions, at most }${seconds} s, seeds fuzz/corpus/$target" >&2
  # The wall-clock bound also holds an -E run whose executions are slower than expected.
  timeout --kill-after=10 "$wall" afl-fuzz -i "fuzz/corpus/$target" -o "$out" -t 5000 -m none "${limit[@]}" \
    -- dotnet "$bin/TunTcp.Fuzz.dll" "$target" >"$log" 2>&1 && rc=0 || rc=$?
  local stats="$out/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then tail -20 "$log" >&2; echo "fuzz $target: afl-fuzz exited $rc without fuzzer_stats (log $log)" >&2; return 1; fi
  stat() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  echo "fuzz $target: $(stat run_time) s, $(stat execs_done) execs, $(stat execs_per_sec) execs/s, corpus $(stat corpus_count), coverage $(stat bitmap_cvg), crashes $(stat saved_crashes), hangs $(stat saved_hangs)"
  local crashes=("$out"/default/crashes/id:*)
  [ -e "${crashes[0]}" ] || return 0
  local dest="$crashes_root/$target"
  mkdir -p "$dest"
  for c in "${crashes[@]}"; do cp "$c" "$dest/crash-$(sha1sum "$c" | cut -c1-12)"; done
  echo "fuzz $target: ${#crashes[@]} crash input(s) copied to $dest; what they throw:" >&2
  dotnet "$build/TunTcp.Fuzz.dll" "$target" "$dest"/crash-* >&2 || true
  return 1
}

status=0
if [ "$target" = all ]; then
  for t in $targets; do fuzz_one "$t" || status=1; done
else
  fuzz_one "$target" || status=1
fi
exit $status
