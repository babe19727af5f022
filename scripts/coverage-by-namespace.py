#!/usr/bin/env python3
"""Line coverage of one namespace from a coverlet Cobertura report.

Usage:
  dotnet test tests/TunTcp.Tests -c Release --collect:"XPlat Code Coverage" --results-directory /tmp/cov
  scripts/coverage-by-namespace.py /tmp/cov/*/coverage.cobertura.xml TunTcp.Tcp [--uncovered]

Counts each source line once (partial classes and compiler-generated nested classes share
files), prints a line per file and the total; --uncovered also lists the lines never run.
"""
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    if len(args) < 2:
        print(__doc__.strip())
        return 2
    *reports, namespace = args
    show_uncovered = "--uncovered" in argv
    lines = defaultdict(dict)  # file -> line -> hits (max over reports and classes)
    for report in reports:
        for cls in ET.parse(report).getroot().iter("class"):
            name = cls.get("name", "")
            if not (name == namespace or name.startswith(namespace + ".")):
                continue
            # Only types directly in the namespace (or nested in them), not sub-namespaces.
            rest = name[len(namespace) + 1:]
            if "." in rest.split("/")[0]:
                continue
            filename = cls.get("filename")
            for line in cls.iter("line"):
                n = int(line.get("number"))
                hits = int(line.get("hits"))
                lines[filename][n] = max(hits, lines[filename].get(n, 0))
    total = covered = 0
    for filename in sorted(lines):
        file_lines = lines[filename]
        c = sum(1 for h in file_lines.values() if h > 0)
        total += len(file_lines)
        covered += c
        print(f"{100.0 * c / len(file_lines):6.1f} %  {c:5}/{len(file_lines):<5} {filename}")
        if show_uncovered:
            missed = sorted(n for n, h in file_lines.items() if h == 0)
            if missed:
                print("          uncovered: " + ", ".join(map(str, missed)))
    if total == 0:
        print(f"no classes in namespace {namespace}")
        return 1
    print(f"{100.0 * covered / total:6.1f} %  {covered:5}/{total:<5} namespace {namespace} (line coverage)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
