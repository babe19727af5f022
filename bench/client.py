#!/usr/bin/env python3
"""Kernel-side measurement client for bench/run.sh (same definitions as ../shared/peers/client.py).

  client.py discard HOST MB   send MB MiB to port 9, half-close, wait for the server's FIN;
                              time = connect .. FIN (all data consumed by the server)
  client.py source  HOST MB   read MB MiB from port 19; time = connect .. last byte
  client.py echo    HOST N    N 1-byte round trips on port 7 after 500 warm-up ones, TCP_NODELAY
Prints one JSON line. Every socket has a timeout, so a hang fails instead of blocking.
"""
import json, socket, statistics, sys, time

CHUNK = 1 << 20
TIMEOUT = 30.0


def conn(host, port):
    s = socket.create_connection((host, port), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def discard(host, mb):
    total, buf = mb * CHUNK, b"\0" * CHUNK
    t0 = time.perf_counter()
    s = conn(host, 9)
    sent = 0
    while sent < total:
        sent += s.send(buf[: min(CHUNK, total - sent)])
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    dt = time.perf_counter() - t0
    return {"test": "discard", "bytes": total, "seconds": dt, "gbit_s": total * 8 / dt / 1e9}


def source(host, mb):
    total, buf = mb * CHUNK, bytearray(CHUNK)
    t0 = time.perf_counter()
    s = conn(host, 19)
    got = 0
    while got < total:
        n = s.recv_into(buf, min(CHUNK, total - got))
        if n == 0:
            raise RuntimeError("source closed early")
        got += n
    dt = time.perf_counter() - t0
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # close with RST
    s.close()
    return {"test": "source", "bytes": total, "seconds": dt, "gbit_s": total * 8 / dt / 1e9}


def echo(host, n, warmup=500):
    s = conn(host, 7)
    samples = []
    for i in range(warmup + n):
        t0 = time.perf_counter_ns()
        s.sendall(b"x")
        if not s.recv(1):
            raise RuntimeError("echo closed early")
        if i >= warmup:
            samples.append((time.perf_counter_ns() - t0) / 1000)
    s.close()
    q = statistics.quantiles(samples, n=100)
    return {"test": "echo", "n": n, "p50_us": q[49], "p99_us": q[98], "min_us": min(samples)}


if __name__ == "__main__":
    what, host, arg = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps({"discard": discard, "source": source, "echo": echo}[what](host, arg)))
