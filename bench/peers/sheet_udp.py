#!/usr/bin/env python3
"""Sheet 000 §1.4 — UDP echo server: recvfrom() then sendto(), forever.

Benchmark peer, faithful to the sheet (AF_INET6 SOCK_DGRAM, bind, loop).
recvfrom(65535) so that no datagram is truncated.

Usage: python3 sheet_udp.py PORT   (0 = let the system choose)
Prints "listening on PORT" once it receives; exits 0 on SIGTERM.
"""
import signal
import socket
import sys

# Not in the sheet: a clean exit on SIGTERM so the benchmark can stop us.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

port = int(sys.argv[1]) if len(sys.argv) > 1 else 7777

s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("", port))
print("listening on", s.getsockname()[1], flush=True)

while True:
    data, addr = s.recvfrom(65535)
    s.sendto(data, addr)
