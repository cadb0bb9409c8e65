#!/usr/bin/env python3
"""Student-like §2.1 select() server that made its client sockets
non-blocking "so select() never blocks", and calls send() once: what did
not fit in the socket's buffer is silently dropped. Fine with nc; a client
that stops reading for a while loses megabytes.
Usage: python3 select_nonblocking.py PORT"""
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
            sc.setblocking(False)
            l.append(sc)
        else:
            try:
                data = sock.recv(1500)
            except (BlockingIOError, ConnectionResetError):
                continue
            if len(data) == 0:
                sock.close()
                l.remove(sock)
                continue
            try:
                sock.send(data)  # may send only part; the rest is lost
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
