"""UDP peer for spec/udp_spec.lua, on Python's socket module.

  udp_python.py echo FAMILY       binds 127.0.0.1:0 (or ::1 for inet6),
      prints its port, answers each datagram with "py: " + it, until it
      gets "quit"
  udp_python.py send HOST PORT N  sends N datagrams "dgram I" from a
      socket of its own, then waits for one answer and prints it
"""
import socket
import sys

mode = sys.argv[1]
if mode == "echo":
    fam = socket.AF_INET6 if sys.argv[2] == "inet6" else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind(("::1" if fam == socket.AF_INET6 else "127.0.0.1", 0))
    print(s.getsockname()[1], flush=True)
    while True:
        data, addr = s.recvfrom(65535)
        if data == b"quit":
            break
        s.sendto(b"py: " + data, addr)
else:
    host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    for i in range(n):
        s.sendto(b"dgram %d" % i, (host, port))
    data, _ = s.recvfrom(65535)
    print(data.decode())
