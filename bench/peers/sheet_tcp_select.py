#!/usr/bin/env python3
"""Sheet 000 §2.1 — multi-client TCP echo server with select.select().

Benchmark peer, faithful to the sheet: one thread, a plain list of client
sockets rescanned by select() at every turn, recv(1500) then sendall().
A blocking sendall() to a client that does not read stalls every client,
as in the sheet.

Usage: python3 sheet_tcp_select.py PORT   (0 = let the system choose)
Prints "listening on PORT" once it accepts; exits 0 on SIGTERM.
"""
import select
import signal
import socket
import sys

# Not in the sheet: a clean exit on SIGTERM so the benchmark can stop us.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

port = int(sys.argv[1]) if len(sys.argv) > 1 else 7777

l = []  # the sheet's list of client sockets

s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", port))
s.listen(1)
print("listening on", s.getsockname()[1], flush=True)

while True:
    readable, _, _ = select.select(l + [s], [], [])
    for sock in readable:
        if sock is s:
            sc, addr = s.accept()
            l.append(sc)
        else:
            data = sock.recv(1500)
            if len(data) == 0:
                sock.close()
                l.remove(sock)
            else:
                sock.sendall(data)
