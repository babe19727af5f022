#!/usr/bin/env python3
"""The kernel-TCP reference server for bench/run.sh: discard (9), source (19), echo (7) on
ADDRESS, one thread per connection, so kernel <-> kernel transfers over a veth pair can be
measured with the same client as TunTcp. Runs until killed (bench/run.sh kills it by PID)."""
import socket, sys, threading

ADDR = sys.argv[1]
BLOCK = b"\0" * (1 << 20)


def discard(c):
    with c:
        while c.recv(1 << 20):
            pass


def source(c):
    with c:
        try:
            while True:
                c.sendall(BLOCK)
        except OSError:
            pass


def echo(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)


def serve(port, handler):
    l = socket.socket(socket.AF_INET6 if ":" in ADDR else socket.AF_INET)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((ADDR, port))
    l.listen(16)
    while True:
        c, _ = l.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


for port, handler in ((9, discard), (19, source), (7, echo)):
    threading.Thread(target=serve, args=(port, handler), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
