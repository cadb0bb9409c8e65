#!/usr/bin/env python3
"""Not a student: a server that accepts, never reads, and floods each
client with bytes forever (check.ts must stay bounded in memory and time).
Usage: python3 echo_flood.py PORT"""
import socket, sys, threading
def handle(sc):
    chunk = b"x" * 65536
    try:
        while True:
            sc.sendall(chunk)
    except OSError:
        pass
    sc.close()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(2000)
while True:
    sc, a = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
