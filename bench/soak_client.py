#!/usr/bin/env python3
"""Mixed load for the soak: bulk down (chargen), bulk up (discard), many persistent echo
connections, and short connections, all at once, for SECONDS; every INTERVAL seconds one JSON
line with what each part moved in that interval. Every socket operation has a timeout; errors
are counted, and a failed connection is opened again.

Usage: soak_client.py HOST SECONDS INTERVAL [BULK UPLOADS ECHOERS]
"""
import json, os, socket, sys, threading, time

host, seconds, interval = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
bulk, uploads, echoers = (int(a) for a in (sys.argv[4:7] + ["4", "2", "200"][len(sys.argv[4:7]):]))
end = time.monotonic() + seconds
lock = threading.Lock()
count = {"down_bytes": 0, "up_bytes": 0, "echo_rt": 0, "short_conn": 0, "errors": 0}

def add(key, n):
    with lock:
        count[key] += n

def connect(port):
    s = socket.create_connection((host, port), timeout=10)
    s.settimeout(10)
    return s

def down():
    while time.monotonic() < end:
        try:
            s = connect(19)
            while time.monotonic() < end:
                n = len(s.recv(1 << 16))
                if n == 0: break
                add("down_bytes", n)
            s.close()
        except OSError:
            add("errors", 1); time.sleep(0.1)

def up():
    chunk = os.urandom(1 << 16)
    while time.monotonic() < end:
        try:
            s = connect(9)
            while time.monotonic() < end:
                s.sendall(chunk); add("up_bytes", len(chunk))
            s.close()
        except OSError:
            add("errors", 1); time.sleep(0.1)

def echo(n):
    # n persistent connections, one round trip each in turn
    conns = []
    while time.monotonic() < end:
        try:
            while len(conns) < n and time.monotonic() < end:
                conns.append(connect(7))
            for s in list(conns):
                if time.monotonic() >= end: break
                try:
                    s.sendall(b"ping"); got = b""
                    while len(got) < 4:
                        c = s.recv(4 - len(got))
                        if not c: raise OSError("closed")
                        got += c
                    add("echo_rt", 1)
                except OSError:
                    add("errors", 1); conns.remove(s); s.close()
        except OSError:
            add("errors", 1); time.sleep(0.1)
    for s in conns: s.close()

def short():
    while time.monotonic() < end:
        try:
            s = connect(7); s.sendall(b"hi"); s.recv(2); s.close(); add("short_conn", 1)
        except OSError:
            add("errors", 1); time.sleep(0.05)

threads = [threading.Thread(target=down) for _ in range(bulk)] + [threading.Thread(target=up) for _ in range(uploads)]
threads += [threading.Thread(target=echo, args=(max(1, echoers // 4),)) for _ in range(4)] + [threading.Thread(target=short)]
for t in threads: t.daemon = True; t.start()
start = time.monotonic()
while time.monotonic() < end:
    time.sleep(max(0, min(interval, end - time.monotonic())))
    with lock:
        snap = dict(count)
        for k in count: count[k] = 0
    snap["t"] = round(time.monotonic() - start, 1)
    print(json.dumps(snap), flush=True)
for t in threads: t.join(timeout=15)
