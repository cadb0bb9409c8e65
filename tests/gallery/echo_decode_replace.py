#!/usr/bin/env python3
"""Student-like §2.2 echo server that decodes what it receives as UTF-8
with errors="replace" and encodes it again: never crashes, but bytes that
are not UTF-8 (or a character split between two recv()) come back as U+FFFD.
Usage: python3 echo_decode_replace.py PORT"""
import socket, sys, threading
def handle(sc):
    while True:
        data = sc.recv(1500)
        if not data:
            break
        sc.sendall(data.decode("utf-8", errors="replace").encode("utf-8"))
    sc.close()
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(50)
while True:
    sc, a = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
