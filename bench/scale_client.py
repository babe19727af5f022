#!/usr/bin/env python3
"""Kernel-side client of bench/scale.sh (stdlib only, one thread, non-blocking sockets + epoll).

  scale_client.py hold HOST PORT N SOURCES [--inflight 2000] [--go FILE] [--max-hold S] [--timeout S]
      Opens N connections to HOST:PORT as fast as it can with at most --inflight connects pending,
      the sockets bound to the comma-separated SOURCES addresses in turn (IP_BIND_ADDRESS_NO_PORT,
      so each source address has its own ephemeral port range). Checks each one is established
      (writable and SO_ERROR 0), prints one JSON line "phase": "established", then holds them all
      until the file --go exists (or --max-hold seconds), checks none has been closed by the far
      end meanwhile, closes them all and prints a second JSON line "phase": "closed".
      The whole run is bounded by --timeout seconds (connects not done by then are counted failed).

  scale_client.py rate HOST PORT [--concurrency 64] [--seconds 10] [--max-count N] [--source ADDR]
      Connection rate, handshake to first byte: each of --concurrency slots connects, waits for the
      first byte the server sends, closes, and starts again, for --seconds (or --max-count
      connections). Prints one JSON line: completed, failed, conn_per_s, p50/p99 of the time from
      connect() to the first byte received, in microseconds.
"""
import argparse, errno, json, os, select, socket, struct, sys, time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
LINGER_RST = struct.pack("ii", 1, 0)


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def hold(a):
    sources = [s for s in a.sources.split(",") if s]
    start = time.monotonic()
    deadline = start + a.timeout
    ep = select.epoll()
    pending = {}      # fd -> socket, connect in progress
    est = {}          # fd -> socket, established
    failed = 0
    errors = {}
    opened = 0
    connect_deadline = deadline - a.max_hold - 10  # leave time to hold and close
    while (opened < a.n or pending) and time.monotonic() < connect_deadline:
        while opened < a.n and len(pending) < a.inflight:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((sources[opened % len(sources)], 0))
                rc = s.connect_ex((a.host, a.port))
            except OSError as e:
                rc = e.errno
            opened += 1
            if rc in (0, errno.EINPROGRESS):
                pending[s.fileno()] = s
                ep.register(s.fileno(), select.EPOLLOUT)
            else:
                failed += 1
                errors[errno.errorcode.get(rc, str(rc))] = errors.get(errno.errorcode.get(rc, str(rc)), 0) + 1
                s.close()
        for fd, _ in ep.poll(0.05):
            s = pending.pop(fd, None)
            if s is None:
                continue
            ep.unregister(fd)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                est[fd] = s
            else:
                failed += 1
                errors[errno.errorcode.get(err, str(err))] = errors.get(errno.errorcode.get(err, str(err)), 0) + 1
                s.close()
    t_est = time.monotonic() - start
    for s in pending.values():   # connects still pending at the deadline
        failed += 1
        errors["timeout"] = errors.get("timeout", 0) + 1
        ep.unregister(s.fileno())
        s.close()
    pending.clear()
    print(json.dumps({"phase": "established", "requested": a.n, "established": len(est), "failed": failed,
                      "errors": errors, "seconds": round(t_est, 3),
                      "conn_per_s": round(len(est) / t_est, 1) if t_est > 0 else 0}), flush=True)

    # Hold: watch for any connection the far end closes or resets (readable = EOF/RST/data).
    for fd in est:
        ep.register(fd, select.EPOLLIN | select.EPOLLRDHUP)
    lost = 0
    hold_start = time.monotonic()
    hold_end = min(hold_start + a.max_hold, deadline - 5)
    while time.monotonic() < hold_end and not (a.go and os.path.exists(a.go)):
        for fd, _ in ep.poll(0.2):
            lost += 1
            ep.unregister(fd)
    held = time.monotonic() - hold_start
    t = time.monotonic()
    for s in est.values():
        s.close()
    t_close = time.monotonic() - t
    print(json.dumps({"phase": "closed", "held_seconds": round(held, 2), "closed_by_peer_while_held": lost,
                      "close_seconds": round(t_close, 3)}), flush=True)


def rate(a):
    ep = select.epoll()
    slots = {}    # fd -> (socket, t0, state) state 0 connecting, 1 waiting for the first byte
    lat = []
    failed = 0
    errors = {}
    started = 0
    start = time.monotonic()
    end = start + a.seconds

    def open_one():
        nonlocal started, failed
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        if a.source:
            s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((a.source, 0))
        t0 = time.perf_counter()
        rc = s.connect_ex((a.host, a.port))
        started += 1
        if rc in (0, errno.EINPROGRESS):
            slots[s.fileno()] = [s, t0]
            ep.register(s.fileno(), select.EPOLLIN)   # readable: the first byte (or an error)
        else:
            failed += 1
            errors[errno.errorcode.get(rc, str(rc))] = errors.get(errno.errorcode.get(rc, str(rc)), 0) + 1
            s.close()

    while True:
        now = time.monotonic()
        if now < end and (a.max_count == 0 or started < a.max_count):
            while len(slots) < a.concurrency and (a.max_count == 0 or started < a.max_count):
                open_one()
        elif not slots or now > end + 5:
            break
        for fd, _ in ep.poll(0.05):
            slot = slots.pop(fd, None)
            if slot is None:
                continue
            s, t0 = slot
            ep.unregister(fd)
            try:
                ok = len(s.recv(1)) == 1
                err = "eof"
            except OSError as e:
                ok = False
                err = errno.errorcode.get(e.errno, str(e.errno))
            if ok:
                lat.append(time.perf_counter() - t0)
            else:
                failed += 1
                errors[err] = errors.get(err, 0) + 1
            # Unread data is left behind, so close() sends RST: no TIME-WAIT on either side and
            # the ephemeral port is free again at once; SO_LINGER 0 makes that explicit.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            s.close()
    for s, _ in slots.values():
        failed += 1
        s.close()
    elapsed = min(time.monotonic(), end) - start
    lat.sort()
    print(json.dumps({"completed": len(lat), "failed": failed, "errors": errors, "seconds": round(elapsed, 3),
                      "conn_per_s": round(len(lat) / elapsed, 1) if elapsed > 0 else 0,
                      "p50_us": round(pct(lat, 0.50) * 1e6, 1), "p99_us": round(pct(lat, 0.99) * 1e6, 1),
                      "concurrency": a.concurrency}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    h = sub.add_parser("hold")
    h.add_argument("host"); h.add_argument("port", type=int); h.add_argument("n", type=int); h.add_argument("sources")
    h.add_argument("--inflight", type=int, default=2000)
    h.add_argument("--go", default="")
    h.add_argument("--max-hold", type=float, default=60)
    h.add_argument("--timeout", type=float, default=240)
    r = sub.add_parser("rate")
    r.add_argument("host"); r.add_argument("port", type=int)
    r.add_argument("--concurrency", type=int, default=64)
    r.add_argument("--seconds", type=float, default=10)
    r.add_argument("--max-count", type=int, default=0)
    r.add_argument("--source", default="")
    a = p.parse_args()
    hold(a) if a.mode == "hold" else rate(a)


if __name__ == "__main__":
    main()
