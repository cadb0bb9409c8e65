#!/usr/bin/env python3
"""Student-like §2.2 echo server: one thread per client, but it adds a
newline to every echo (print()-style thinking: "send back the line").
A teacher fails it at every step: an echo adds nothing.
Usage: python3 echo_newline.py PORT"""
import socket, sys, threading

def handle(sc):
    while True:
        data = sc.recv(1500)
        if len(data) == 0:
            break
        sc.sendall(data + b"\n")
    sc.close()

s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(128)
while True:
    sc, addr = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
