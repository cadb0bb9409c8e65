#!/usr/bin/env python3
"""Student-like §1.4 UDP server reading with recvfrom(1500), as §1.2's
recv(1500): right for the step, but a 65,507-byte datagram comes back cut.
Usage: python3 udp_1500.py PORT"""
import socket, sys

s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(1500)
    s.sendto(data, addr)
