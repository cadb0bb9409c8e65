#!/usr/bin/env python3
"""Student-like §1.4 UDP server that replies from a second socket (another
source port): a client that connected its socket (nc -u) never sees it.
Usage: python3 udp_other_socket.py PORT"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[1])))
out = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
while True:
    data, addr = s.recvfrom(65535)
    out.sendto(data, addr)
