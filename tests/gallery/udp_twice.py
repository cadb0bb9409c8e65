#!/usr/bin/env python3
"""Student-like §1.4 UDP server that sends each reply twice (a sendto()
left both before and after a print()): every sender gets two datagrams.
Usage: python3 udp_twice.py PORT"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(65535)
    s.sendto(data, addr)
    s.sendto(data, addr)
