#!/usr/bin/env python3
"""Not quite a student: an "OK server" that accepts every client and
never reads nor answers (check.ts must say so, not guess "one client at a
time" or "reads lines").
Usage: python3 ok_silent.py PORT"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(64)
keep = []
while True:
    sc, addr = s.accept()
    keep.append(sc)
