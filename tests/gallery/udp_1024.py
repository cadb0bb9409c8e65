#!/usr/bin/env python3
"""Student-like §1.4 UDP server reading with recvfrom(1024) (sheet 001's
habit): cuts every datagram past 1,024 bytes, one Ethernet frame's 1,472 too.
Usage: python3 udp_1024.py PORT"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(1024)
    s.sendto(data, addr)
