#!/usr/bin/env python3
"""Sheet 001 "Python – les sockets", "Premier programme serveur", as printed.

One client only; answers b"OK" to each recv(1024); stops when it receives
exactly b"fin". Kept faithful, weaknesses included (decode() may raise on
Latin-1 bytes; a client that leaves without "fin" makes recv() return b""
forever and the server eventually dies on a broken pipe).

Deviations from the sheet, for tests only:
- the port comes from argv (0 = let the system choose; the sheet uses 12800);
- the listening line prints the port actually bound, flushed, so a test can
  wait for it ("Le serveur écoute à présent sur le port PORT").

Usage: python3 sheet001_server.py [PORT]
"""
import socket
import sys

hote = ''
port = int(sys.argv[1]) if len(sys.argv) > 1 else 12800

connexion_principale = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
connexion_principale.bind((hote, port))
connexion_principale.listen(5)
print("Le serveur écoute à présent sur le port {}".format(
    connexion_principale.getsockname()[1]), flush=True)

connexion_avec_client, infos_connexion = connexion_principale.accept()

msg_recu = b""
while msg_recu != b"fin":
    msg_recu = connexion_avec_client.recv(1024)
    # L'instruction ci-dessous peut lever une exception si le message
    # Réceptionné comporte des accents
    print(msg_recu.decode())
    connexion_avec_client.send(b"OK")

print("Fermeture de la connexion")
connexion_avec_client.close()
connexion_principale.close()
