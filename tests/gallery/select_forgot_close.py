#!/usr/bin/env python3
"""Student-like §2.1 select() server that forgot the zero-length case: a
client that left stays in the list, "readable" forever (recv() returns b""
at once), so the loop spins at full CPU with no client at all; and the
socket is never closed, so a half-closed client never sees the end.
Usage: python3 select_forgot_close.py PORT"""
import select, socket, sys

s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(128)
l = []
while True:
    readable, _, _ = select.select(l + [s], [], [])
    for sock in readable:
        if sock is s:
            sc, addr = s.accept()
            l.append(sc)
        else:
            try:
                data = sock.recv(1500)
                sock.sendall(data)  # b"" when the client left: nothing sent
            except OSError:
                pass
