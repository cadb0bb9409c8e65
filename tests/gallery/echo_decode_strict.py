#!/usr/bin/env python3
"""Student-like §2.2 echo server that decodes what it receives as UTF-8
(to print it) and encodes it again: on bytes that are not UTF-8 its thread
dies with UnicodeDecodeError (the server goes on; that client gets nothing).
Usage: python3 echo_decode_strict.py PORT"""
import socket, sys, threading
def handle(sc):
    while True:
        data = sc.recv(1500)
        if not data:
            break
        msg = data.decode("utf-8")
        print("reçu", len(msg), flush=True)
        sc.sendall(msg.encode("utf-8"))
    sc.close()
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(50)
while True:
    sc, a = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
