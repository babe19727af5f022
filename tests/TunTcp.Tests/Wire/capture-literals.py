#!/usr/bin/env python3
"""Captures the real Linux packets that WireCaptures.cs holds as literal byte arrays.

Run as root:  ./capture-literals.py   (it re-runs itself inside a private network namespace)

It creates a namespace of its own, a TUN device tun0 in it with 192.168.0.1/24 and fd00::1/64
on the kernel side, and makes the kernel send packets to 192.168.0.2 (ping, ping -R, a
fragmented ping, a TCP SYN, a UDP datagram, an ICMPv6 echo). It also injects a few packets
towards the kernel to get its answers (echo reply, SYN-ACK, RST, port unreachable). Every packet
is read from the TUN fd exactly as our stack would see it and printed as a C# array literal.
The namespace is deleted on every exit path. No traffic leaves the namespace.
"""
import fcntl, os, select, socket, struct, subprocess, sys, time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, ident=0x1234):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def pseudo(src, dst, proto, length):
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, length)


def tcp(src, dst, sport, dport, seq, ack, flags, window, options=b""):
    off = (20 + len(options)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, window, 0, 0) + options
    c = csum(pseudo(src, dst, 6, len(h)) + h)
    return h[:16] + struct.pack("!H", c) + h[18:]


def udp(src, dst, sport, dport, payload):
    h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = csum(pseudo(src, dst, 17, len(h)) + h) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + h[8:]


def icmp_echo(ident, seq, data):
    m = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def read_until(fd, want, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        p = os.read(fd, 65535)
        if want(p):
            return p
    raise SystemExit("timed out waiting for a packet")


def show(name, p, comment):
    print(f"    // {comment}")
    print(f"    public static readonly byte[] {name} =\n    [")
    for i in range(0, len(p), 16):
        print("        " + ", ".join(f"0x{b:02X}" for b in p[i:i + 16]) + ",")
    print("    ];\n")


def ip_proto(p):
    return p[9] if p and p[0] >> 4 == 4 else None


def inner():
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"tun0", IFF_TUN | IFF_NO_PI))
    sh = lambda c: subprocess.run(c, shell=True, check=True)
    sh("ip link set lo up")
    sh("ip addr add 192.168.0.1/24 dev tun0")
    sh("ip addr add fd00::1/64 dev tun0 nodad")
    sh("ip link set tun0 mtu 1500 up")
    time.sleep(0.3)  # let the link settle; router solicitations etc. are filtered out below

    def run_bg(cmd):
        return subprocess.Popen(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # IPv6 first: an MTU below 1280 (the fragment step) removes IPv6 from the device.
    # An ICMPv6 echo request, which TunTcp shows and ignores.
    p = run_bg("ping -6 -c1 -W1 -s 8 fd00::2")
    show("LinuxIpv6EchoRequest", read_until(fd, lambda x: x[0] >> 4 == 6 and x[6] == 58 and x[40] == 128),
         "ping -6 -c1 -s 8 fd00::2: ICMPv6 echo request")
    p.wait()

    # The kernel's TCP SYN over IPv6.
    p = run_bg("nc -6 -w1 fd00::2 80")
    show("LinuxIpv6Syn", read_until(fd, lambda x: x[0] >> 4 == 6 and x[6] == 6 and x[53] == 0x02),
         "nc -6 fd00::2 80: SYN over IPv6 with mss 1440,sackOK,TS,nop,wscale")
    p.kill(); p.wait()

    # A UDP datagram over IPv6.
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s6.bind(("fd00::1", 40000))
    s6.sendto(b"hello\n", ("fd00::2", 9))
    show("LinuxIpv6Udp", read_until(fd, lambda x: x[0] >> 4 == 6 and x[6] == 17),
         "UDP [fd00::1]:40000 -> [fd00::2]:9 'hello\\n'")

    # ping -6 larger than the MTU: the kernel fragments it with a Fragment header (RFC 8200 4.5).
    p = run_bg("ping -6 -c1 -W1 -s 1500 fd00::2")
    g1 = read_until(fd, lambda x: x[0] >> 4 == 6 and x[6] == 44 and (x[43] & 1))
    g2 = read_until(fd, lambda x: x[0] >> 4 == 6 and x[6] == 44 and not (x[43] & 1))
    show("LinuxIpv6FirstFragment", g1, "ping -6 -s 1500 fd00::2 over MTU 1500: first fragment (M set, offset 0)")
    show("LinuxIpv6LastFragment", g2, "the same ping: last fragment (M clear)")
    p.wait()

    # Echo request from ping (56 data bytes).
    p = run_bg("ping -c1 -W1 192.168.0.2")
    show("LinuxEchoRequest", read_until(fd, lambda x: ip_proto(x) == 1 and x[20] == 8),
         "ping -c1 192.168.0.2: ICMP echo request, 56 data bytes")
    p.wait()

    # Record route: IHL 15 (40 option bytes), payload starts at byte 60.
    p = run_bg("ping -c1 -W1 -R -s 8 192.168.0.2")
    show("LinuxEchoRequestWithRecordRoute", read_until(fd, lambda x: ip_proto(x) == 1 and (x[0] & 0xF) > 5),
         "ping -c1 -R -s 8 192.168.0.2: IHL 15, the record-route option fills 40 bytes")
    p.wait()

    # Fragments: over MTU 68 a 72-byte ICMP message goes as two fragments of 48 and 24 bytes.
    sh("ip link set tun0 mtu 68")
    p = run_bg("ping -c1 -W1 -M dont -s 64 192.168.0.2")
    f1 = read_until(fd, lambda x: ip_proto(x) == 1 and (x[6] & 0x20))
    f2 = read_until(fd, lambda x: ip_proto(x) == 1 and (struct.unpack('!H', x[6:8])[0] & 0x1FFF) != 0)
    show("LinuxFirstFragment", f1, "ping -M dont -s 64 over MTU 68: first fragment (MF set, offset 0)")
    show("LinuxLastFragment", f2, "the same ping: last fragment (MF clear, offset 48)")
    p.wait()
    sh("ip link set tun0 mtu 1500")

    # TCP SYN from the kernel's active open.
    p = run_bg("nc -w1 192.168.0.2 80")
    show("LinuxSyn", read_until(fd, lambda x: ip_proto(x) == 6 and x[33] == 0x02),
         "nc 192.168.0.2 80: SYN with mss 1460,sackOK,TS val ecr 0,nop,wscale (Linux layout)")
    p.kill(); p.wait()

    # UDP datagram.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("192.168.0.1", 40000))
    s.sendto(b"hello\n", ("192.168.0.2", 9))
    show("LinuxUdp", read_until(fd, lambda x: ip_proto(x) == 17 and x[20:24] == struct.pack("!HH", 40000, 9)),
         "UDP 192.168.0.1:40000 -> 192.168.0.2:9 'hello\\n'")

    # The kernel's echo reply to an echo request we inject.
    os.write(fd, ipv4("192.168.0.2", "192.168.0.1", 1, icmp_echo(0x4242, 7, b"abcdefgh")))
    show("LinuxEchoReply", read_until(fd, lambda x: ip_proto(x) == 1 and x[20] == 0),
         "the kernel's echo reply to an injected request id 0x4242 seq 7 data 'abcdefgh'")

    # The kernel's port unreachable for an injected datagram to a closed port.
    os.write(fd, ipv4("192.168.0.2", "192.168.0.1", 17, udp("192.168.0.2", "192.168.0.1", 5555, 9, b"ping")))
    show("LinuxPortUnreachable", read_until(fd, lambda x: ip_proto(x) == 1 and x[20] == 3),
         "the kernel's port unreachable for an injected UDP datagram 192.168.0.2:5555 -> 192.168.0.1:9")

    # The kernel's SYN-ACK to an injected SYN on a listening port.
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("192.168.0.1", 8080)); ls.listen()
    opts = bytes([2, 4, 0x05, 0xB4, 4, 2, 8, 10]) + struct.pack("!II", 1000, 0) + bytes([1, 3, 3, 7])
    os.write(fd, ipv4("192.168.0.2", "192.168.0.1", 6,
                      tcp("192.168.0.2", "192.168.0.1", 40001, 8080, 0x01020304, 0, 0x02, 64240, opts)))
    show("LinuxSynAck", read_until(fd, lambda x: ip_proto(x) == 6 and x[33] == 0x12),
         "the kernel's SYN-ACK to an injected SYN (seq 0x01020304, TS val 1000) on port 8080")

    # The kernel's RST to an injected SYN on a closed port.
    os.write(fd, ipv4("192.168.0.2", "192.168.0.1", 6,
                      tcp("192.168.0.2", "192.168.0.1", 40002, 81, 0x0A0B0C0D, 0, 0x02, 64240)))
    show("LinuxRstAck", read_until(fd, lambda x: ip_proto(x) == 6 and x[33] & 0x04),
         "the kernel's RST,ACK to an injected SYN on closed port 81")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        inner()
    else:
        ns = f"tuntcp-wirecap-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "--inner"],
                           check=True, timeout=60)
        finally:
            subprocess.run(["ip", "netns", "del", ns])
