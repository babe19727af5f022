#!/usr/bin/env python3
"""Bounded floods hping3 cannot make: IPv6 SYNs from random sources, and random garbage.

Usage: flood_packets.py KIND COUNT SECONDS SRC DST PORT
  syn6     TCP SYNs to DST:PORT from random sources in SRC's /64, valid checksums
  garbage  IPv4 headers (SRC -> DST) with random transport bytes and protocols
Sends through a raw IPPROTO_RAW socket (the header is ours, so the source can be spoofed), at most
COUNT packets and for at most SECONDS; the packets are built before the clock starts (a pool
reused round-robin), so the rate is the socket's, not Python's packing. Prints the count sent.
"""
import ipaddress, os, random, socket, struct, sys, time

kind, count, seconds, src, dst, port = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
random.seed(5)

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

pool = []
if kind == "syn6":
    prefix = int(ipaddress.IPv6Address(src)) >> 64 << 64
    d = ipaddress.IPv6Address(dst).packed
    family = socket.AF_INET6
    for i in range(4096):
        s = (prefix | random.getrandbits(64)).to_bytes(16, "big")
        sport, seq = random.randint(1024, 65535), random.getrandbits(32)
        # SYN with an MSS option (20 + 4 bytes)
        tcp = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 6 << 4, 0x02, 64240, 0, 0) + struct.pack("!BBH", 2, 4, 1440)
        pseudo = s + d + struct.pack("!IxxxB", len(tcp), 6)
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + s + d
        pool.append(ip + tcp)
elif kind == "garbage":
    family = socket.AF_INET
    for i in range(4096):
        body = os.urandom(random.randint(0, 120))
        pool.append(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), i & 0xFFFF, 0, 64, random.choice([6, 17, 1, 250]), 0,
                                socket.inet_aton(src), socket.inet_aton(dst)) + body)
else:
    sys.exit(f"flood_packets.py: unknown kind {kind}")

sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
addr = (dst, 0)
sent, end = 0, time.monotonic() + seconds
n = len(pool)
while sent < count:
    for _ in range(256):
        try:
            sock.sendto(pool[sent % n], addr)
        except OSError:
            pass   # ENOBUFS when the device's queue is full: a flood goes on
        sent += 1
    if time.monotonic() > end:
        break
print(sent)
