#!/usr/bin/env python3
"""Sheet 000 §1.3 "Client Echo": reads standard input line by line, sends
each line to the echo server, prints the echo; closes the connection when
the user enters an empty line ("\n").

The sheet gives only the steps (start from the Daytime client, AF_INET6
socket, sys.stdin.readline()); this is the plain program those steps give,
with the sheet's recv(1500) and send(), kept weaknesses included (one recv()
per line: a long line may come back in several pieces, printed late).

Deviations, for tests only:
- port and host come from argv (the sheet uses localhost 7777);
- end of standard input also ends the loop (readline() returns "" then;
  without this the program would send nothing and wait forever);
- output is flushed after each echo so a test sees it as it happens.

Usage: python3 sheet_tcp_client.py [PORT [HOST]]
"""
import socket
import sys

host = sys.argv[2] if len(sys.argv) > 2 else "localhost"
port = int(sys.argv[1]) if len(sys.argv) > 1 else 7777

s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.connect((host, port))

while True:
    line = sys.stdin.readline()
    if line == "\n" or line == "":
        break
    s.send(line.encode("utf-8"))
    data = s.recv(1500)
    print(data.decode("utf-8"), end="", flush=True)

s.close()
