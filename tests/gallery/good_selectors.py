#!/usr/bin/env python3
"""A correct one-thread echo server, as a careful student writes it after
§2.1: selectors (epoll, no FD_SETSIZE limit), non-blocking sockets, and
what send() could not send kept for when the socket is writable. Passes
every check, 1,100 clients included.
Usage: python3 good_selectors.py PORT"""
import resource, selectors, socket, sys

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
sel = selectors.DefaultSelector()
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(1024)
s.setblocking(False)
sel.register(s, selectors.EVENT_READ)
pending = {}

def drop(sock):
    sel.unregister(sock)
    pending.pop(sock, None)
    sock.close()

while True:
    for key, events in sel.select():
        sock = key.fileobj
        if sock is s:
            try:
                sc, addr = s.accept()
            except BlockingIOError:
                continue
            sc.setblocking(False)
            pending[sc] = b""
            sel.register(sc, selectors.EVENT_READ)
            continue
        try:
            if events & selectors.EVENT_WRITE:
                sent = sock.send(pending[sock])
                pending[sock] = pending[sock][sent:]
            elif events & selectors.EVENT_READ:
                data = sock.recv(65536)
                if not data:
                    drop(sock)
                    continue
                try:
                    sent = sock.send(data) if not pending[sock] else 0
                except BlockingIOError:
                    sent = 0  # the send buffer is full: keep it all for later
                pending[sock] += data[sent:]
        except BlockingIOError:
            pass
        except OSError:
            drop(sock)
            continue
        # Stop reading while there is something to send back: no buffer grows.
        sel.modify(sock, selectors.EVENT_WRITE if pending[sock] else selectors.EVENT_READ)
