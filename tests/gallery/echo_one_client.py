#!/usr/bin/env python3
"""Student-like §1.2 echo server without the outer loop: serves one
client, then ends by itself (exit status 0, no error).
Usage: python3 echo_one_client.py PORT"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(1)
sc, a = s.accept()
while True:
    d = sc.recv(1500)
    if not d:
        break
    sc.send(d)
sc.close()
s.close()
