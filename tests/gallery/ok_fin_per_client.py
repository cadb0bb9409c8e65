#!/usr/bin/env python3
"""Student-like sheet 001 OK server, one thread per client, where "fin"
closes that client's connection only: the server keeps running.
Usage: python3 ok_fin_per_client.py PORT"""
import socket, sys, threading
def handle(sc):
    while True:
        m = sc.recv(1024)
        if not m:
            break
        sc.sendall(b"OK")
        if m == b"fin":
            break
    sc.close()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(5)
while True:
    sc, a = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
