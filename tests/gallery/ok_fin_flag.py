#!/usr/bin/env python3
"""Student-like sheet 001 OK server, one thread per client: "fin" sets a
flag that the main loop tests only between two accept() calls, so the
server stops only when yet another client connects (the sheet's client
never does). Prints its port, for tests that start it themselves.
Usage: python3 ok_fin_flag.py PORT"""
import socket, sys, threading

running = True

def handle(sc):
    global running
    while True:
        try:
            m = sc.recv(1024)
        except OSError:
            break
        if not m:
            break
        sc.sendall(b"OK")
        if m == b"fin":
            running = False
            break
    sc.close()

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(5)
print("listening on {}".format(s.getsockname()[1]), flush=True)
# The flag is tested only once accept() returns. (A student's `while
# running:` also tests it before accept(), and then stops by luck when
# "fin" beats the main thread back to accept(): a race this test must not
# depend on. check.ts pauses before "fin" to make that luck rare.)
while True:
    sc, addr = s.accept()
    if not running:
        sc.close()
        break
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
s.close()
