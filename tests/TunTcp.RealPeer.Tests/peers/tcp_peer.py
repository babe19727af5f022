#!/usr/bin/env python3
"""Kernel-side peers for the TunTcp real-peer tests.

Each subcommand runs one client or server on the Linux kernel's TCP/UDP (the test runs it
inside its own network namespace with `ip netns exec`), checks every byte itself, prints
what it did in plain words, and ends with one line

    RESULT {"ok": true|false, ...}

that the C# test parses. Every socket has a timeout and every run a deadline, so a hang
fails within a bound instead of blocking the test run. Exit code 0 when ok, 1 otherwise.
"""

import argparse
import errno
import hashlib
import json
import random
import selectors
import socket
import sys
import threading
import time

CHUNK = 64 * 1024


def log(*parts):
    print(*parts, flush=True)


def finish(result):
    """Prints the RESULT line and exits with 0 when result["ok"] holds."""
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
    sys.exit(0 if result.get("ok") else 1)


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def check(self, what):
        if time.monotonic() > self.end:
            raise TimeoutError(f"deadline of {self.seconds} s passed while {what}")


class Pattern:
    """A reproducible, non-periodic byte stream: the bytes of random.Random(seed), made in
    fixed 64 KiB blocks so the stream does not depend on how callers slice it."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.buffer = b""
        self.offset = 0

    def take(self, n):
        while len(self.buffer) - self.offset < n:
            self.buffer = self.buffer[self.offset:] + self.rng.randbytes(CHUNK)
            self.offset = 0
        out = self.buffer[self.offset:self.offset + n]
        self.offset += n
        return out


class StreamCheck:
    """Compares received bytes, in order, with the expected stream; remembers the first mismatch."""

    def __init__(self, expected):
        self.expected = expected
        self.count = 0
        self.first_mismatch = None
        self.sha = hashlib.sha256()

    def feed(self, data):
        want = self.expected.take(len(data))
        if self.first_mismatch is None and want != data:
            i = next(k for k in range(len(data)) if data[k] != want[k])
            self.first_mismatch = self.count + i
        self.sha.update(data)
        self.count += len(data)


def send_pattern(sock, total, seed, deadline, sha):
    pattern = Pattern(seed)
    sent = 0
    while sent < total:
        deadline.check(f"sending (sent {sent} of {total})")
        block = pattern.take(min(CHUNK, total - sent))
        sock.sendall(block)
        sha.update(block)
        sent += len(block)
    return sent


def connect(args):
    return socket.create_connection((args.host, args.port), timeout=args.timeout)


# ---- discard: send N bytes, half-close, wait for the peer's FIN -------------------------------

def cmd_discard(args):
    deadline = Deadline(args.deadline)
    result = {"ok": False, "sent": 0}
    try:
        s = connect(args)
        sha = hashlib.sha256()
        started = time.monotonic()
        result["sent"] = send_pattern(s, args.bytes, args.seed, deadline, sha)
        result["sha256_sent"] = sha.hexdigest()
        s.shutdown(socket.SHUT_WR)
        log(f"sent {result['sent']} bytes (sha256 {sha.hexdigest()}), half-closed; waiting for the peer's FIN")
        # The discard server answers our FIN with its own once it has consumed everything.
        unexpected = 0
        while True:
            deadline.check("waiting for the peer's FIN")
            data = s.recv(CHUNK)
            if not data:
                break
            unexpected += len(data)
        result["fin"] = True
        result["unexpected_bytes"] = unexpected
        result["seconds"] = round(time.monotonic() - started, 3)
        s.close()
        log(f"peer FIN received after {result['seconds']} s; {unexpected} unexpected bytes from a discard server")
        result["ok"] = unexpected == 0
    except OSError as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finish(result)


# ---- chargen: read N bytes and compare them with RFC 864 ---------------------------------------

def rfc864_period():
    """One period of the RFC 864 stream, built from the RFC's description: the 95 printable
    ASCII characters (space to '~'), 72 per line plus CR LF, each line starting one character
    further along; the RFC's sample output starts with '!'. After 95 lines it repeats."""
    printable = bytes(range(0x20, 0x7F))
    assert len(printable) == 95
    lines = []
    for k in range(95):
        start = (k + 1) % 95
        rotated = printable[start:] + printable[:start]
        lines.append(rotated[:72] + b"\r\n")
    # The RFC's first sample line, literally.
    assert lines[0] == b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n"
    return b"".join(lines)


class Rfc864Stream:
    def __init__(self):
        self.period = rfc864_period()
        self.position = 0

    def take(self, n):
        p = len(self.period)
        start = self.position % p
        reps = (start + n) // p + 1
        out = (self.period * reps)[start:start + n]
        self.position += n
        return out


def cmd_chargen(args):
    deadline = Deadline(args.deadline)
    result = {"ok": False, "received": 0}
    try:
        s = connect(args)
        check = StreamCheck(Rfc864Stream())
        started = time.monotonic()
        while check.count < args.bytes:
            deadline.check(f"reading (got {check.count} of {args.bytes})")
            data = s.recv(min(1 << 20, args.bytes - check.count))
            if not data:
                result["early_eof"] = True
                break
            check.feed(data)
        result["seconds"] = round(time.monotonic() - started, 3)
        s.close()
        result["received"] = check.count
        result["sha256"] = check.sha.hexdigest()
        # The hash of exactly N bytes of the RFC 864 stream, computed on its own.
        full = hashlib.sha256()
        ref = Rfc864Stream()
        left = args.bytes
        while left > 0:
            n = min(1 << 20, left)
            full.update(ref.take(n))
            left -= n
        result["expected_sha256"] = full.hexdigest()
        result["first_mismatch"] = check.first_mismatch
        log(f"received {check.count} bytes in {result['seconds']} s, sha256 {result['sha256']}; "
            f"RFC 864 pattern sha256 {result['expected_sha256']}; first mismatch at {check.first_mismatch}")
        result["ok"] = check.count == args.bytes and result["sha256"] == result["expected_sha256"] and check.first_mismatch is None
    except OSError as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finish(result)


# ---- echo: send N bytes, read them back, half-close ---------------------------------------------

def cmd_echo(args):
    deadline = Deadline(args.deadline)
    result = {"ok": False, "sent": 0, "received": 0}
    try:
        s = connect(args)
        check = StreamCheck(Pattern(args.seed))
        sent_sha = hashlib.sha256()
        state = {"sent": 0, "error": None, "shutdown_at": None}

        def writer():
            try:
                state["sent"] = send_pattern(s, args.bytes, args.seed, deadline, sent_sha)
                s.shutdown(socket.SHUT_WR)
                state["shutdown_at"] = check.count
            except Exception as e:  # reported, not raised, so the reader ends too
                state["error"] = f"{type(e).__name__}: {e}"

        started = time.monotonic()
        if args.read_after_shutdown:
            # Nothing is read until our FIN is out: whatever comes back afterwards shows the
            # server still sending after our half-close, and its FIN must follow the data.
            writer()
        else:
            t = threading.Thread(target=writer, daemon=True)
            t.start()
        eof = False
        while True:
            deadline.check(f"reading the echo (got {check.count} of {args.bytes})")
            data = s.recv(CHUNK)
            if not data:
                eof = True
                break
            check.feed(data)
        if not args.read_after_shutdown:
            t.join(timeout=max(1, deadline.end - time.monotonic()))
        s.close()
        result.update(
            sent=state["sent"], received=check.count, eof=eof,
            sha256_sent=sent_sha.hexdigest(), sha256_received=check.sha.hexdigest(),
            first_mismatch=check.first_mismatch,
            received_after_shutdown=None if state["shutdown_at"] is None else check.count - state["shutdown_at"],
            seconds=round(time.monotonic() - started, 3))
        if state["error"]:
            result["error"] = state["error"]
        log(f"sent {result['sent']} bytes (sha256 {result['sha256_sent']}), received {check.count} "
            f"(sha256 {result['sha256_received']}), then EOF: {eof}; {result['received_after_shutdown']} bytes came "
            f"after our half-close; first mismatch at {check.first_mismatch}; {result['seconds']} s")
        result["ok"] = (not state["error"] and eof and state["sent"] == args.bytes and check.count == args.bytes
                        and check.first_mismatch is None)
    except OSError as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finish(result)


# ---- echo-many: C concurrent connections, each echoing N bytes of its own ---------------------

class EchoFlow:
    def __init__(self, index, total, seed):
        self.index = index
        self.total = total
        self.out = Pattern(seed * 100003 + index)
        self.check = StreamCheck(Pattern(seed * 100003 + index))
        self.pending = b""
        self.sent = 0
        self.shut = False
        self.eof = False
        self.error = None
        self.sock = None


def cmd_echo_many(args):
    deadline = Deadline(args.deadline)
    flows = [EchoFlow(i, args.bytes, args.seed) for i in range(args.connections)]
    sel = selectors.DefaultSelector()
    started = time.monotonic()
    for f in flows:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        code = s.connect_ex((args.host, args.port))
        if code not in (0, errno.EINPROGRESS):
            f.error = f"connect: {errno.errorcode.get(code, code)}"
            s.close()
            continue
        f.sock = s
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, f)
    open_flows = sum(1 for f in flows if f.sock)
    last_progress = time.monotonic()
    while open_flows > 0:
        deadline.check(f"{open_flows} of {len(flows)} connections still open")
        if time.monotonic() - last_progress > args.timeout:
            raise TimeoutError(f"no progress for {args.timeout} s with {open_flows} connections open")
        for key, mask in sel.select(timeout=1.0):
            f = key.data
            s = f.sock
            try:
                if mask & selectors.EVENT_WRITE:
                    if not f.pending and f.sent < f.total:
                        f.pending = f.out.take(min(CHUNK, f.total - f.sent))
                    if f.pending:
                        n = s.send(f.pending)
                        f.pending = f.pending[n:]
                        f.sent += n
                        last_progress = time.monotonic()
                    if f.sent == f.total and not f.pending and not f.shut:
                        s.shutdown(socket.SHUT_WR)
                        f.shut = True
                        sel.modify(s, selectors.EVENT_READ, f)
                if mask & selectors.EVENT_READ:
                    data = s.recv(CHUNK)
                    last_progress = time.monotonic()
                    if data:
                        f.check.feed(data)
                    else:
                        f.eof = True
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                f.error = f"{type(e).__name__}: {e}"
            if f.eof or f.error:
                sel.unregister(s)
                s.close()
                f.sock = None
                open_flows -= 1
    good = [f for f in flows if not f.error and f.eof and f.sent == f.total
            and f.check.count == f.total and f.check.first_mismatch is None]
    failures = [{"index": f.index, "error": f.error, "sent": f.sent, "received": f.check.count,
                 "eof": f.eof, "first_mismatch": f.check.first_mismatch} for f in flows if f not in good]
    result = {"ok": len(good) == len(flows), "connections": len(flows), "intact": len(good),
              "bytes_each": args.bytes, "failures": failures[:10], "failed": len(failures),
              "seconds": round(time.monotonic() - started, 3)}
    log(f"{len(good)} of {len(flows)} connections echoed {args.bytes} bytes intact in {result['seconds']} s")
    finish(result)


# ---- listen: the peer of `tuntcp connect` --------------------------------------------------------

def cmd_listen(args):
    deadline = Deadline(args.deadline)
    result = {"ok": False, "received": 0, "sent": 0}
    try:
        # Dual-stack: [::] without IPV6_V6ONLY takes IPv4 connections too (as ::ffff:a.b.c.d).
        ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("::", args.port))
        ls.listen(1)
        ls.settimeout(args.timeout)
        log(f"listening on port {args.port}")
        s, peer = ls.accept()
        ls.close()
        s.settimeout(args.timeout)
        log(f"accepted {peer[0]}:{peer[1]}")
        started = time.monotonic()
        received_sha = hashlib.sha256()
        sent_sha = hashlib.sha256()
        state = {"received": 0, "eof": False, "error": None}

        def reader():
            try:
                while True:
                    deadline.check(f"reading (got {state['received']})")
                    data = s.recv(CHUNK)
                    if not data:
                        state["eof"] = True
                        return
                    received_sha.update(data)
                    state["received"] += len(data)
            except Exception as e:
                state["error"] = f"{type(e).__name__}: {e}"

        if args.send_after_eof:
            # The other side half-closes first; only then do we send, so every byte we send
            # reaches a connection whose sending side is already closed.
            reader()
            result["eof_before_send"] = state["eof"]
            log(f"received {state['received']} bytes and EOF; now sending {args.send_bytes}")
            result["sent"] = send_pattern(s, args.send_bytes, args.seed, deadline, sent_sha)
            s.shutdown(socket.SHUT_WR)
        else:
            t = threading.Thread(target=reader, daemon=True)
            t.start()
            result["sent"] = send_pattern(s, args.send_bytes, args.seed, deadline, sent_sha)
            s.shutdown(socket.SHUT_WR)
            t.join(timeout=max(1, deadline.end - time.monotonic()))
            if t.is_alive():
                state["error"] = state["error"] or "reader still running at the deadline"
        s.close()
        result.update(received=state["received"], eof=state["eof"], sha256_received=received_sha.hexdigest(),
                      sha256_sent=sent_sha.hexdigest(), seconds=round(time.monotonic() - started, 3))
        if state["error"]:
            result["error"] = state["error"]
        log(f"sent {result['sent']} bytes (sha256 {result['sha256_sent']}); received {state['received']} bytes "
            f"(sha256 {result['sha256_received']}) then EOF: {state['eof']}; {result['seconds']} s")
        result["ok"] = not state["error"] and state["eof"] and result["sent"] == args.send_bytes
    except OSError as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finish(result)


# ---- expect-reset: connect, send a little, then wait for the peer's reset -------------------------

def cmd_expect_reset(args):
    result = {"ok": False}
    try:
        s = connect(args)
        s.sendall(b"x" * args.send_bytes)
        log(f"connected and sent {args.send_bytes} bytes; waiting for the peer")
        try:
            data = s.recv(CHUNK)
            result["outcome"] = "data" if data else "eof"
        except ConnectionResetError:
            result["outcome"] = "reset"
        except socket.timeout:
            result["outcome"] = "timeout"
        s.close()
    except ConnectionRefusedError:
        result["outcome"] = "refused"
    except OSError as e:
        result["outcome"] = "error"
        result["error"] = f"{type(e).__name__}: {e}"
    log(f"outcome: {result['outcome']}")
    result["ok"] = result["outcome"] == args.expect
    finish(result)


# ---- udp-echo: datagrams of several sizes must come back unchanged ---------------------------------

def cmd_udp_echo(args):
    result = {"ok": False}
    sizes = [int(x) for x in args.sizes.split(",")]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(args.timeout)
    rng = random.Random(args.seed)
    answered = 0
    failures = []
    for i, size in enumerate(sizes):
        payload = rng.randbytes(size)
        s.sendto(payload, (args.host, args.port))
        try:
            data, source = s.recvfrom(65535)
        except socket.timeout:
            failures.append(f"datagram {i} ({size} bytes): no answer within {args.timeout} s")
            continue
        if source != (args.host, args.port):
            failures.append(f"datagram {i}: answer from {source}")
        elif data != payload:
            failures.append(f"datagram {i} ({size} bytes): answer of {len(data)} bytes differs")
        else:
            answered += 1
    s.close()
    result.update(sent=len(sizes), echoed=answered, failures=failures, ok=answered == len(sizes))
    log(f"{answered} of {len(sizes)} datagrams echoed intact; {failures}")
    finish(result)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="10.77.0.2")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=20.0, help="socket timeout: longest wait for any progress, s")
    p.add_argument("--deadline", type=float, default=120.0, help="the whole run's bound, s")
    p.add_argument("--seed", type=int, default=1)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("discard"); d.add_argument("--bytes", type=int, required=True)
    c = sub.add_parser("chargen"); c.add_argument("--bytes", type=int, required=True)
    e = sub.add_parser("echo"); e.add_argument("--bytes", type=int, required=True)
    e.add_argument("--read-after-shutdown", action="store_true")
    m = sub.add_parser("echo-many"); m.add_argument("--bytes", type=int, required=True)
    m.add_argument("--connections", type=int, required=True)
    l = sub.add_parser("listen"); l.add_argument("--send-bytes", type=int, required=True)
    l.add_argument("--send-after-eof", action="store_true")
    r = sub.add_parser("expect-reset"); r.add_argument("--send-bytes", type=int, default=100)
    r.add_argument("--expect", default="reset", choices=["reset", "refused", "eof", "data", "timeout", "error"])
    u = sub.add_parser("udp-echo"); u.add_argument("--sizes", default="1,64,512,1400,1472")
    args = p.parse_args()
    handler = {"discard": cmd_discard, "chargen": cmd_chargen, "echo": cmd_echo, "echo-many": cmd_echo_many,
               "listen": cmd_listen, "expect-reset": cmd_expect_reset, "udp-echo": cmd_udp_echo}[args.command]
    try:
        handler(args)
    except TimeoutError as e:
        finish({"ok": False, "error": f"TimeoutError: {e}"})


if __name__ == "__main__":
    main()
