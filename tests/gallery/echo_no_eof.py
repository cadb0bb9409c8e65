#!/usr/bin/env python3
"""Student-like §2.2 echo server that never tests for b"": when its client
leaves, the thread spins on recv() forever (never closes, burns CPU).
Usage: python3 echo_no_eof.py PORT"""
import socket, sys, threading
def handle(sc):
    while True:
        data = sc.recv(1500)
        sc.sendall(data)
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(50)
while True:
    sc, a = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
