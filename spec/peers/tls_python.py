"""TLS peer for spec/tls_spec.lua, on Python's ssl module.

  tls_python.py server CERT KEY [CA]   echo server on 127.0.0.1:0: prints
      its port, then answers each line with "py: " + the line (ALPN
      http/1.1 accepted; with CA, client certificates are required)
  tls_python.py client HOST PORT CA [SERVER_NAME]   sends "hello from
      python", prints the answer line, the TLS version and the ALPN
      protocol; a refused certificate prints "refused: <why>", exit 1
"""
import socket
import ssl
import sys
import threading


def serve(cert, key, ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    if ca:
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    print(lst.getsockname()[1], flush=True)

    def handle(conn):
        try:
            with ctx.wrap_socket(conn, server_side=True) as s:
                f = s.makefile("rwb")
                for line in f:
                    f.write(b"py: " + line)
                    f.flush()
        except (ssl.SSLError, OSError) as e:
            print("error:", e, file=sys.stderr, flush=True)

    while True:
        conn, _ = lst.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def client(host, port, ca, server_name=None):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_name or host) as s:
                s.sendall(b"hello from python\n")
                f = s.makefile("rb")
                print(f.readline().decode().rstrip("\n"))
                print(s.version())
                print(s.selected_alpn_protocol())
    except ssl.SSLCertVerificationError as e:
        print("refused:", e.verify_message)
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(*sys.argv[2:])
    else:
        client(*sys.argv[2:])
