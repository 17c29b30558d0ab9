"""A TCP address that takes no more connections: a listener with a backlog
of 0 whose queue its own connections fill, so a new connect hangs without
an answer, like one to a blackholed address (but on this machine).

  blackhole.py HOST PORT   prints "ready", then holds until stdin closes
"""
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
lst = socket.socket(fam)
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind((host, port))
lst.listen(0)
held = []
for _ in range(4):  # the queue takes one or two; the rest hang
    c = socket.socket(fam)
    c.setblocking(False)
    try:
        c.connect((host, port))
    except BlockingIOError:
        pass
    held.append(c)
print("ready", flush=True)
sys.stdin.read()
