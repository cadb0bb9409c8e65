#!/usr/bin/env python3
"""Sheet 001 "Python – les sockets", "Premier programme client", as printed.

Reads lines with input("> "), sends each one encoded with no newline, waits
for one recv(1024) answer, prints it; stops after sending "fin". Kept
faithful (encode()/decode() may raise on special characters; input() raises
EOFError if stdin ends before "fin").

Deviation from the sheet, for tests only: the port (and host) come from argv
(the sheet uses "localhost" and 12800), and the "Connexion établie" line is
flushed so a test can see it.

Usage: python3 sheet001_client.py [PORT [HOST]]
"""
import socket
import sys

hote = sys.argv[2] if len(sys.argv) > 2 else "localhost"
port = int(sys.argv[1]) if len(sys.argv) > 1 else 12800

connexion_avec_serveur = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
connexion_avec_serveur.connect((hote, port))
print("Connexion établie avec le serveur sur le port {}".format(port),
      flush=True)

msg_a_envoyer = b""
while msg_a_envoyer != b"fin":
    msg_a_envoyer = input("> ")
    # Peut planter si vous tapez des caractères spéciaux
    msg_a_envoyer = msg_a_envoyer.encode()
    # On envoie le message
    connexion_avec_serveur.send(msg_a_envoyer)
    msg_recu = connexion_avec_serveur.recv(1024)
    print(msg_recu.decode(), flush=True)  # Là encore, peut planter s'il y a des accents

print("Fermeture de la connexion")
connexion_avec_serveur.close()
