#!/usr/bin/env python3
"""A correct thread-per-client echo server whose AF_INET6 socket has
IPV6_V6ONLY set: what the sheet's AF_INET6 socket does by default on
Windows and OpenBSD. 127.0.0.1 is refused; ::1 works.
Usage: python3 ipv6_only.py PORT"""
import socket, sys, threading

def handle(sc):
    try:
        while True:
            data = sc.recv(65536)
            if len(data) == 0:
                break
            sc.sendall(data)
    except OSError:
        pass
    sc.close()

s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(128)
while True:
    sc, addr = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
