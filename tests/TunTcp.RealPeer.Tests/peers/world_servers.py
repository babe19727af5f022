#!/usr/bin/env python3
"""Servers of the forward tests' "world" namespace, on every address of both families.

TCP 7007 echo (until the client's FIN, then FIN back: half-close honoured), TCP 7008 sink
(reads to EOF, answers the SHA-256 of what it read, closes), TCP 7010 reset (accepts and
resets at once), UDP 7009 echo. Prints "ready" once every socket is bound. Runs until killed
or for --seconds (a bound, so it can never outlive a test run by much).
"""
import asyncio, hashlib, socket, struct, sys

async def echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()

async def sink(reader, writer):
    digest = hashlib.sha256()
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            digest.update(data)
        writer.write(digest.hexdigest().encode())
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()

async def reset(reader, writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()

class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport
    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)

async def main(seconds):
    loop = asyncio.get_running_loop()
    servers = [await asyncio.start_server(h, host=None, port=p, backlog=1024) for h, p in ((echo, 7007), (sink, 7008), (reset, 7010))]
    for family, any_address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((any_address, 7009))
        await loop.create_datagram_endpoint(UdpEcho, sock=sock)
    print("ready", flush=True)
    await asyncio.sleep(seconds)

asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1800))
