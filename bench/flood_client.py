#!/usr/bin/env python3
"""Legitimate clients during a flood: sequential echo round trips on fresh connections.

Usage: flood_client.py HOST PORT COUNT TIMEOUT_S SECONDS
Makes connections (connect, 8-byte echo, close) for SECONDS, at most COUNT of them; prints one
JSON line: attempts, ok, p50/p99/max connect+echo latency in ms. Every connect and receive is
bounded by TIMEOUT_S.
"""
import json, socket, sys, time

host, port, count, timeout, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
lat, ok, attempts = [], 0, 0
end = time.monotonic() + seconds
for i in range(count):
    if time.monotonic() > end:
        break
    attempts += 1
    t0 = time.perf_counter()
    try:
        s = socket.create_connection((host, port), timeout=timeout)
        msg = b"hello %d" % i
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            chunk = s.recv(64)
            if not chunk:
                break
            got += chunk
        s.close()
        if got == msg:
            ok += 1
            lat.append((time.perf_counter() - t0) * 1000)
    except OSError:
        pass
lat.sort()
pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else None
print(json.dumps({"attempts": attempts, "ok": ok, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(lat[-1], 3) if lat else None}))
