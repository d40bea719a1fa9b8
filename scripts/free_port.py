#!/usr/bin/env python3
"""Prints a loopback TCP port P such that P and P+1 are both free: a node listens on P and
takes its stream on P+1 (`corridor init`'s default). Ports given as arguments are taken,
with the one after each. Exit 1 if none is found in 400 tries.

usage: scripts/free_port.py [TAKEN_PORT]...
"""
import random
import socket
import sys

taken = {int(a) for a in sys.argv[1:]}
blocked = {t + d for t in taken for d in (-1, 0, 1)}
for _ in range(400):
    p = random.randint(15000, 30000)
    if p in blocked:
        continue
    sockets = []
    try:
        for port in (p, p + 1):
            s = socket.socket()
            sockets.append(s)
            s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        for s in sockets:
            s.close()
    print(p)
    sys.exit(0)
sys.exit(1)
