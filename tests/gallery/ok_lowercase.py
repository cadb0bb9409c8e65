#!/usr/bin/env python3
"""Student-like sheet 001 second server (select) that answers b"ok" in
lower case; otherwise right (stops on "fin").
Usage: python3 ok_lowercase.py PORT"""
import select, socket, sys

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(16)
clients = []
running = True
while running:
    readable, _, _ = select.select(clients + [s], [], [])
    for c in readable:
        if c is s:
            clients.append(s.accept()[0])
            continue
        try:
            msg = c.recv(1024)
        except OSError:
            msg = b""
        if not msg:
            clients.remove(c)
            c.close()
            continue
        c.send(b"ok")
        if msg == b"fin":
            running = False
