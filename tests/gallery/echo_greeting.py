#!/usr/bin/env python3
"""Student-like §2.2 echo server that greets each client first
("Bienvenue sur le serveur echo\\n"), then echoes: an echo sends nothing
of its own.
Usage: python3 echo_greeting.py PORT"""
import socket, sys, threading
def handle(sc):
    sc.sendall(b"Bienvenue sur le serveur echo\n")
    while True:
        d = sc.recv(1500)
        if not d: break
        sc.sendall(d)
    sc.close()
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1]))); s.listen(100)
while True:
    c, a = s.accept(); threading.Thread(target=handle, args=(c,), daemon=True).start()
