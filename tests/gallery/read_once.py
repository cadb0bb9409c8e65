#!/usr/bin/env python3
"""Student-like echo server that reads once, echoes, and closes: one
recv() per client (forgot the loop). nc with one line looks right.
Usage: python3 read_once.py PORT"""
import socket, sys, threading

def handle(sc):
    data = sc.recv(1500)
    sc.sendall(data)
    sc.close()

s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(128)
while True:
    sc, addr = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
