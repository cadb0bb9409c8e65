#!/usr/bin/env python3
"""Student-like "OK server" that echoes each message instead of answering
OK (one thread per client, stops on fin).
Usage: python3 ok_echoes.py PORT"""
import socket, sys, threading, os
def handle(sc):
    while True:
        m = sc.recv(1024)
        if not m:
            break
        sc.sendall(m)
        if m.strip() == b"fin":
            os._exit(0)
    sc.close()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(5)
while True:
    sc, a = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
