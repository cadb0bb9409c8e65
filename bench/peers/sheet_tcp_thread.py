#!/usr/bin/env python3
"""Sheet 000 §2.2 — TCP echo server with one thread per client.

Benchmark peer, faithful to the sheet: the recv(1500)/send() loop of §1.2
moved into handle(sc), started with threading.Thread(None, handle, None, (sc,)).

Usage: python3 sheet_tcp_thread.py PORT   (0 = let the system choose)
Prints "listening on PORT" once it accepts; exits 0 on SIGTERM.
"""
import signal
import socket
import sys
import threading

# Not in the sheet: a clean exit on SIGTERM so the benchmark can stop us.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

port = int(sys.argv[1]) if len(sys.argv) > 1 else 7777


def handle(sc):
    # Not in the sheet: SIGTERM must reach the main thread (the only one that
    # runs Python signal handlers); with thousands of client threads the
    # kernel would otherwise deliver it to one of them and accept() would
    # never be interrupted.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    while True:
        data = sc.recv(1500)
        if len(data) == 0:
            break
        sc.send(data)  # sheet: send(), not sendall()
    sc.close()


s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", port))
s.listen(1)
print("listening on", s.getsockname()[1], flush=True)

while True:
    sc, addr = s.accept()
    t = threading.Thread(None, handle, None, (sc,))
    # Not in the sheet: daemon threads, otherwise sys.exit() on SIGTERM would
    # wait forever for clients that are still connected.
    t.daemon = True
    t.start()
