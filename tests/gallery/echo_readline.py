#!/usr/bin/env python3
"""Student-like echo server on asyncio streams that reads lines
(reader.readline()): nothing is echoed until a newline comes, and what
follows the last newline never is. nc (line by line) looks right.
Usage: python3 echo_readline.py PORT"""
import asyncio, sys
async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line)
        await writer.drain()
    writer.close()
async def main():
    srv = await asyncio.start_server(handle, None, int(sys.argv[1]))
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
