#!/usr/bin/env python3
"""Clients of the forward tests, run inside the application namespace; each prints one result line.

  connect HOST PORT           -> "connected" or the errno name (ECONNREFUSED, ENETUNREACH, ...)
  upload HOST PORT FILE       -> the SHA-256 the sink answered after our FIN
  reset HOST PORT             -> the errno name of the first receive (ECONNRESET expected)
  halfclose HOST PORT         -> sends, half-closes, reads the echo to EOF: "echoed N"
  udp HOST PORT COUNT         -> "udp N/COUNT" answered datagrams
  udperror HOST PORT          -> the errno name a connected UDP socket gets after sending there ("timeout" if none)
  many HOST PORT N            -> "many OK/N" concurrent echo connections that round-tripped 1 KiB
  resolve NAME                -> the IPv4 address of NAME
"""
import asyncio, errno, hashlib, os, socket, sys

def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET

def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) and e.errno else type(e).__name__

def connect(host, port):
    s = socket.socket(family(host), socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect((host, int(port)))
    return s

def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "connect":
        try:
            connect(args[0], args[1]).close()
            print("connected")
        except OSError as e:
            print(err_name(e))
    elif cmd == "upload":
        s = connect(args[0], args[1])
        with open(args[2], "rb") as f:
            while True:
                chunk = f.read(1 << 16)
                if not chunk:
                    break
                s.sendall(chunk)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            data = s.recv(4096)
            if not data:
                break
            answer += data
        print(answer.decode())
    elif cmd == "reset":
        s = connect(args[0], args[1])
        try:
            data = s.recv(10)
            print("eof" if not data else "data")
        except OSError as e:
            print(err_name(e))
    elif cmd == "halfclose":
        s = connect(args[0], args[1])
        payload = os.urandom(100000)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += data
        print(f"echoed {len(got)}" if got == payload else f"mismatch {len(got)}")
    elif cmd == "udp":
        s = socket.socket(family(args[0]), socket.SOCK_DGRAM)
        s.settimeout(2)
        count, answered = int(args[2]), 0
        for i in range(count):
            message = f"datagram {i}".encode()
            s.sendto(message, (args[0], int(args[1])))
            try:
                data, _ = s.recvfrom(2048)
                answered += data == message
            except socket.timeout:
                pass
        print(f"udp {answered}/{count}")
    elif cmd == "udperror":
        # A connected UDP socket learns of an ICMP error about its datagram as the next receive's errno.
        s = socket.socket(family(args[0]), socket.SOCK_DGRAM)
        s.connect((args[0], int(args[1])))
        s.settimeout(5)
        try:
            s.send(b"anyone there?")
            s.recv(2048)
            print("answered")
        except socket.timeout:
            print("timeout")
        except OSError as e:
            print(err_name(e))
    elif cmd == "many":
        host, port, n = args[0], int(args[1]), int(args[2])
        async def one(i):
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
                payload = os.urandom(1024)
                writer.write(payload)
                await writer.drain()
                got = await asyncio.wait_for(reader.readexactly(len(payload)), 30)
                writer.close()
                return got == payload
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                return False
        async def run():
            results = await asyncio.gather(*(one(i) for i in range(n)))
            return sum(results)
        print(f"many {asyncio.run(run())}/{n}")
    elif cmd == "resolve":
        try:
            print(socket.gethostbyname(args[0]))
        except OSError as e:
            print(f"failed {e}")
    else:
        sys.exit(f"unknown command {cmd}")

main(sys.argv)
