#!/usr/bin/env python3
"""Student-like server that listens (backlog 1) but never calls accept():
the system completes two connections, the next ones wait in vain.
Usage: python3 echo_never_accepts.py PORT"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(1)
while True:
    time.sleep(100)
