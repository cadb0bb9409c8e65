#!/usr/bin/env python3
"""Sheet 000 §1.2 — sequential TCP echo server, as the sheet builds it.

Benchmark peer: kept faithful on purpose, including the sheet's weaknesses
(send() instead of sendall(), recv(1500), listen(1), one client at a time,
no handling of abrupt disconnections). Those weaknesses are what the
benchmark shows next to our servers.

Usage: python3 sheet_tcp_sequential.py PORT   (0 = let the system choose)
Prints "listening on PORT" once it accepts; exits 0 on SIGTERM.
"""
import signal
import socket
import sys

# Not in the sheet: a clean exit on SIGTERM so the benchmark can stop us.
# Raising SystemExit from the handler interrupts the blocking accept()/recv().
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

port = int(sys.argv[1]) if len(sys.argv) > 1 else 7777

s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", port))
s.listen(1)
print("listening on", s.getsockname()[1], flush=True)

while True:
    sc, addr = s.accept()
    while True:
        data = sc.recv(1500)
        if len(data) == 0:
            break
        sc.send(data)  # sheet: send(), not sendall() — may send only part
    sc.close()
