#!/usr/bin/env python3
"""asyncio Protocol TCP echo server: the fast, idiomatic asyncio peer.

Also the body of uvloop_echo.py, which only swaps the event loop: main()
takes the loop factory so the two peers share this code.

Usage: python3 asyncio_echo.py PORT   (0 = let the system choose)
Prints "listening on PORT" once it accepts; exits 0 on SIGTERM.
"""
import asyncio
import signal
import socket
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        # transport.write() buffers; pause_reading when the client does not
        # read, so memory stays bounded (flow control below).
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


async def serve(port):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    # Our own socket: create_server(host="::") would set IPV6_V6ONLY and
    # refuse IPv4 clients; the sheet's AF_INET6 + ("", port) is dual-stack.
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", port))
    sock.setblocking(False)
    server = await loop.create_server(Echo, sock=sock, backlog=511)
    print("listening on", server.sockets[0].getsockname()[1], flush=True)
    await stop
    server.close()


def main(new_loop=asyncio.new_event_loop):
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7777
    loop = new_loop()
    try:
        loop.run_until_complete(serve(port))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
