#!/usr/bin/env python3
"""A kernel echo server for bench/floods.sh's kernel target: asyncio, IPv4 and IPv6, backlog 4096.

Usage: echo_server.py PORT
"""
import asyncio, sys

async def echo(reader, writer):
    try:
        while (data := await reader.read(65536)):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()

async def main(port):
    server = await asyncio.start_server(echo, host=["0.0.0.0", "::"], port=port, backlog=4096)
    await server.serve_forever()

asyncio.run(main(int(sys.argv[1])))
