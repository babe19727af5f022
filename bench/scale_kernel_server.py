#!/usr/bin/env python3
"""The kernel-TCP reference for bench/scale.sh's accept rate: on ADDRESS:PORT (default 19) it
accepts, sends at once up to 4 KiB of the chargen pattern (one send), and closes when the peer
closes or resets. One thread, epoll, like scale_client.py. Prints "ready"; runs until killed
(bench/scale.sh stops it by PID) or for at most --max-seconds."""
import argparse, select, socket, time

p = argparse.ArgumentParser()
p.add_argument("address"); p.add_argument("--port", type=int, default=19)
p.add_argument("--max-seconds", type=float, default=600)
a = p.parse_args()
line = bytes(range(33, 127))
data = (line * 50)[:4096]
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((a.address, a.port)); ls.listen(4096); ls.setblocking(False)
ep = select.epoll(); ep.register(ls.fileno(), select.EPOLLIN)
conns = {}
print("ready", flush=True)
end = time.monotonic() + a.max_seconds
while time.monotonic() < end:
    for fd, _ in ep.poll(0.5):
        if fd == ls.fileno():
            for _ in range(256):
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    break
                c.setblocking(False)
                try:
                    c.send(data)
                except OSError:
                    c.close(); continue
                conns[c.fileno()] = c
                ep.register(c.fileno(), select.EPOLLIN)
        else:
            c = conns.pop(fd)
            ep.unregister(fd)
            try:
                while c.recv(65536):
                    pass
            except OSError:
                pass
            c.close()
