#!/usr/bin/env python3
"""A correct §2.2 echo server (one thread per client) that also writes to
stderr without end and without a newline (a debug print left in a loop):
check.ts must keep only the end of it, bounded.
Usage: python3 echo_stderr_flood.py PORT"""
import socket, sys, threading

def noise():
    while True:
        sys.stderr.write("x" * 65536)
        sys.stderr.flush()

def handle(sc):
    while True:
        data = sc.recv(65536)
        if not data:
            break
        sc.sendall(data)
    sc.close()

threading.Thread(target=noise, daemon=True).start()
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(100)
while True:
    sc, addr = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
