#!/usr/bin/env python3
"""Student-like OK server that reads lines (makefile().readline()), one
thread per client, and stops on the line "fin". Works with nc; the sheet's
client sends no newline, so it gets no answer, and "fin" is never seen
while the client keeps its connection open.
Usage: python3 ok_lines.py PORT"""
import os, socket, sys, threading

def handle(sc):
    f = sc.makefile("rb")
    for line in f:
        sc.sendall(b"OK\n")
        if line.strip() == b"fin":
            os._exit(0)
    sc.close()

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(16)
while True:
    sc, addr = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
