#!/usr/bin/env python3
"""Student-like §2.1 select() server that closes a client's socket when
recv() returns b"" but forgets l.remove(sc): the next select() raises
ValueError (file descriptor -1) and the server dies as each client leaves.
Usage: python3 select_forgot_remove.py PORT"""
import socket, sys, select
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1]))); s.listen(1)
l = []
while True:
    r, _, _ = select.select(l + [s], [], [])
    for sock in r:
        if sock is s:
            sc, a = s.accept(); l.append(sc)
        else:
            d = sock.recv(1500)
            if len(d) == 0:
                sock.close()
            else:
                sock.sendall(d)
