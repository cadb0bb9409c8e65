#!/usr/bin/env python3
"""Student-like sheet 001 second server (select, 50 ms timeouts) that
stops only on b"fin\\n", as nc sends it: it answers OK to the sheet's
client's b"fin" but never stops for it.
Usage: python3 ok_fin_newline.py PORT"""
import select, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(5)
clients = []
running = True
while running:
    r, _, _ = select.select([s], [], [], 0.05)
    for c in r:
        sc, a = s.accept(); clients.append(sc)
    if not clients:
        continue
    r, _, _ = select.select(clients, [], [], 0.05)
    for c in r:
        m = c.recv(1024)
        if not m:
            clients.remove(c); c.close(); continue
        c.send(b"OK")
        if m == b"fin\n":
            running = False
for c in clients:
    c.close()
s.close()
