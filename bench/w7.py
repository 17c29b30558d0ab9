"""W7 (issue 11): W6 over TLS. An HTTPS/1.1 keep-alive server answering
"Hello, World!", loaded with wrk over https on loopback, measured exactly as
W6 (bench/w6.py: the same pinning, connections, duration and CPU accounting;
BENCH_W6_* apply). Used by bench/run.

setup() makes, once per bench run, an EC P-256 certificate and key (CN and
subjectAltName 127.0.0.1) with the openssl command line in the run's
temporary directory; every server gets the same two files through
$BENCH_TLS_CERT and $BENCH_TLS_KEY and serves TLS 1.3 only with
TLS_AES_128_GCM_SHA256 (Go: TLS 1.3 only; it cannot be told a TLS 1.3 suite).

wrk has no TLS options (it takes OpenSSL's defaults and does not verify the
certificate), so it is restricted through OpenSSL's configuration instead:
$OPENSSL_CONF for wrk alone names a file whose system_default section says
MinProtocol = TLSv1.3 and Ciphersuites = TLS_AES_128_GCM_SHA256, which
OpenSSL applies to every SSL_CTX wrk creates. Before each measurement
`openssl s_client`, with that same file, checks what the server negotiates
(and that the certificate verifies for 127.0.0.1); it is stored in the
sample and printed in the report.
"""
import os
import re
import shutil
import subprocess

import w6

PORT = int(os.environ.get("BENCH_W7_PORT", "18443"))
PROTOCOL, CIPHER = "TLSv1.3", "TLS_AES_128_GCM_SHA256"

# OpenSSL's configuration for wrk (and the s_client check): TLS 1.3 and the
# one cipher suite, applied to every SSL_CTX the program makes
CLIENT_CONF = """\
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = %s
Ciphersuites = %s
""" % (PROTOCOL, CIPHER)


class TLSLoad(w6.Load):
    def __init__(self):
        super().__init__("W7", "https", PORT)
        self.dir = None     # the run's certificate, key and client configuration
        self.error = "no certificate (w7.setup was not called)"

    def path(self, name):
        return os.path.join(self.dir, name)

    def server_env(self):
        if self.error:
            return None, self.error
        return {"BENCH_TLS_CERT": self.path("cert.pem"),
                "BENCH_TLS_KEY": self.path("key.pem")}, None

    def wrk_env(self):
        return {"OPENSSL_CONF": self.path("client.cnf")}

    def probe(self):
        """What a client restricted as wrk is negotiates with the server."""
        try:
            r = subprocess.run(
                ["openssl", "s_client", "-brief", "-connect", "127.0.0.1:%d" % self.port,
                 "-CAfile", self.path("cert.pem"), "-verify_ip", "127.0.0.1",
                 "-verify_return_error"],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15,
                env={**os.environ, "OPENSSL_CONF": self.path("client.cnf")})
        except (OSError, subprocess.TimeoutExpired) as ex:
            return None, "openssl s_client: %s" % ex
        out = r.stdout + r.stderr
        proto = re.search(r"Protocol version:\s*(\S+)", out)
        suite = re.search(r"Ciphersuite:\s*(\S+)", out)
        group = re.search(r"(?:Server|Peer) Temp Key:\s*([^,\n]+)", out)
        if not (proto and suite) or "Verification: OK" not in out:
            return None, "openssl s_client: " + " / ".join(out.strip().splitlines()[-3:])[:300]
        if (proto.group(1), suite.group(1)) != (PROTOCOL, CIPHER):
            return None, "negotiated %s %s, not %s %s" % (
                proto.group(1), suite.group(1), PROTOCOL, CIPHER)
        return {"tls": "%s %s %s" % (proto.group(1), suite.group(1),
                                     group.group(1).strip() if group else "?")}, None


W7 = TLSLoad()


def setup(tmp):
    """Make the run's certificate, key and wrk's OpenSSL configuration in the
    directory tmp (once per bench run). An error is kept and reported by
    every W7 run."""
    W7.dir = os.path.join(tmp, "w7-tls")
    os.makedirs(W7.dir, exist_ok=True)
    with open(W7.path("client.cnf"), "w") as f:
        f.write(CLIENT_CONF)
    if not shutil.which("openssl"):
        W7.error = "`openssl` not installed"
        return
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", W7.path("key.pem"), "-out", W7.path("cert.pem")],
        capture_output=True, text=True)
    if r.returncode != 0:
        W7.error = "openssl req failed: " + r.stderr.strip()[-300:]
        return
    W7.error = None


def run(argv, extra, timeout, quick):
    return w6.run(argv, extra, timeout, quick, W7)


summary = w6.summary

PEERS = (("node", "Node.js https"), ("go", "Go net/http with TLS"))


def render(A, rows, status, samples, targets, med, spread, fmt_ratio):
    """The W7 section of the report: W6's table, user + sys per request, and
    casync's ratios against Node.js and Go. No targets."""
    A("## W7 HTTPS: W6's keep-alive \"Hello, World!\" server over TLS 1.3, loaded by wrk")
    A("")
    A(w6.method(samples, "W7") + " user+sys = the server's whole CPU time per request.")
    A("")
    A("TLS 1.3 only, %s, the same EC P-256 certificate (made for this run with "
      "`openssl req`) for every server; wrk is held to TLS 1.3 and that suite through "
      "`OPENSSL_CONF` (it has no TLS options of its own), and `openssl s_client` with the "
      "same settings checks each server before each measurement (below). The 64 "
      "handshakes of the measured run fall inside it. TLS libraries: casync the "
      "system's libssl (%s), Node.js the OpenSSL built into it (%s), Go its own "
      "crypto/tls." % (CIPHER, first_line(["openssl", "version"]).split(" (")[0],
                       first_line(["node", "-p", "process.versions.openssl"])))
    A("")
    w6.table(A, "W7", rows, status, samples, med, spread, [
        ("user+sys µs/req", lambda s: "%.2f (%s)" % (
            med(s, "cpu_us_per_req"), spread(s, "cpu_us_per_req", "%.2f")))])
    c = samples.get(("casync", "W7"))
    if not c or status("casync", "W7"):
        return
    A("")
    A("casync ÷ peer, medians (requests/s: above 1 is casync serving more; "
      "CPU per request: below 1 is casync spending less):")
    A("")
    A("| casync ÷ | requests/s | user+sys µs/req | user µs/req | sys µs/req | p99 ms |")
    A("|---|---:|---:|---:|---:|---:|")
    for rt, name in PEERS:
        p = samples.get((rt, "W7"))
        if not p or status(rt, "W7"):
            A("| %s | %s | | | | |" % (name, status(rt, "W7") or "not run"))
            continue
        A("| %s | %s |" % (name, " | ".join(
            fmt_ratio(med(c, k) / med(p, k) if med(p, k) else None)
            for k in ("rps", "cpu_us_per_req", "user_us_per_req", "sys_us_per_req", "p99_ms"))))
    tls = sorted({"%s: %s" % (rt, x["tls"]) for (rt, w), v in samples.items()
                  if w == "W7" for x in v if x.get("tls")})
    if tls:
        A("")
        A("Negotiated (openssl s_client restricted as wrk is): " + "; ".join(tls) + ".")


def first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return ((r.stdout or r.stderr).strip().splitlines() or ["?"])[0]
    except (OSError, subprocess.TimeoutExpired):
        return "?"
