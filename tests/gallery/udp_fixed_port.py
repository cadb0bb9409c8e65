#!/usr/bin/env python3
"""Student-like §1.4 UDP server that answers to a fixed port (the one it
"knows" the client uses) instead of the address recvfrom() returned.
Usage: python3 udp_fixed_port.py PORT"""
import socket, sys

s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(65535)
    s.sendto(data, (addr[0], 7778))
