"""W6 (issue #4): an HTTP/1.1 keep-alive server answering "Hello, World!",
loaded with wrk on loopback. Used by bench/run; W7 (bench/w7.py, the same
over TLS) runs through the same code with its own Load.

Each run starts the server pinned to one core (taskset -c $BENCH_W6_SERVER_CPU,
default 0), waits for its port, loads it with wrk pinned to another core
(taskset -c $BENCH_W6_WRK_CPU, default 1; one thread, $BENCH_W6_CONNS = 64
connections) for a warm-up second, then for $BENCH_W6_DURATION (5) seconds
with --latency, and reads the server's user and system CPU time from
/proc/PID/stat around the measured run. Reported: requests per second, the
p50 and p99 latency wrk measured, and the server's user and system CPU time
per request (all of its threads, and its child processes: with
BENCH_W6_WORKERS=n casync serves from n worker processes; give them the
cores with BENCH_W6_SERVER_CPU=0,1).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PORT = int(os.environ.get("BENCH_W6_PORT", "18086"))
SERVER_CPU = os.environ.get("BENCH_W6_SERVER_CPU", "0")
WRK_CPU = os.environ.get("BENCH_W6_WRK_CPU", "1")
CONNS = os.environ.get("BENCH_W6_CONNS", "64")
DURATION = int(os.environ.get("BENCH_W6_DURATION", "5"))
HZ = os.sysconf("SC_CLK_TCK")


class Load:
    """One server-under-wrk workload: its name, URL scheme and port, and
    what it adds to the server's and wrk's environment. W6 is this class as
    it is; W7 (bench/w7.py) overrides the hooks for TLS."""

    def __init__(self, name, scheme, port):
        self.name, self.scheme, self.port = name, scheme, port

    def url(self):
        return "%s://127.0.0.1:%d/" % (self.scheme, self.port)

    def server_env(self):
        """(extra environment for the server, None) or (None, error)."""
        return {}, None

    def wrk_env(self):
        """Extra environment for wrk."""
        return {}

    def probe(self):
        """Called once the server listens, before the warm-up: (facts to
        store in the sample, None) or (None, error)."""
        return {}, None


W6 = Load("W6", "http", PORT)


def cpu_ticks(pid):
    """utime and stime of process pid (all threads) and of its children
    (a server's worker processes, casync's workers = n), in clock ticks."""
    u = s = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(name) == pid or int(rest[1]) == pid:
            u += int(rest[11])
            s += int(rest[12])
    return u, s


def wait_port(proc, port, seconds=15):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def ms(v):
    """wrk's "1.23ms" / "456.00us" / "1.02s" in milliseconds."""
    m = re.match(r"([\d.]+)(us|ms|s)$", v)
    if not m:
        return None
    x = float(m.group(1))
    return x / 1000 if m.group(2) == "us" else x * 1000 if m.group(2) == "s" else x


def wrk(load, seconds, latency):
    cmd = ["taskset", "-c", WRK_CPU, "wrk", "-t1", "-c" + CONNS, "-d%ds" % seconds]
    if latency:
        cmd.append("--latency")
    cmd.append(load.url())
    return subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30,
                          env={**os.environ, **load.wrk_env()}).stdout


def stop(proc):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(3)
            return
        except subprocess.TimeoutExpired:
            pass


def last_line(f):
    f.seek(0)
    lines = f.read().decode(errors="replace").strip().splitlines()
    return (lines or ["?"])[-1][:300]


def run(argv, extra, timeout, quick, load=W6):
    """One measurement of the server argv: (dict, None) or (None, error)."""
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            return None, "`%s` not installed" % tool
    senv, err = load.server_env()
    if err:
        return None, err
    env = dict(os.environ)
    env.pop("BENCH_N", None)
    env.update(extra)
    env.update(senv)
    env["BENCH_PORT"] = str(load.port)
    # the server's stderr goes to a file: a pipe nobody reads could fill up
    # (Go logs every failed TLS handshake) and stop the server
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv, env=env,
                                stdout=subprocess.DEVNULL, stderr=errf,
                                start_new_session=True)
        try:
            if not wait_port(proc, load.port):
                return None, "the server did not listen: " + (
                    last_line(errf) if proc.poll() is not None else "?")
            facts, err = load.probe()
            if err:
                return None, err
            dur = 1 if quick else DURATION
            wrk(load, 1, False)  # warm-up: JITs, caches, connection set-up
            u0, s0 = cpu_ticks(proc.pid)
            out = wrk(load, dur, True)
            u1, s1 = cpu_ticks(proc.pid)
        except (OSError, subprocess.TimeoutExpired) as ex:
            return None, str(ex)
        finally:
            stop(proc)
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (m and rps and p50 and p99) or int(m.group(1)) == 0:
        return None, "wrk: " + (out.strip().splitlines() or ["no output"])[-1][:300]
    n = int(m.group(1))
    errors = []
    e = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if e:
        errors.append("%s non-2xx" % e.group(1))
    e = re.search(r"Socket errors: (.*)", out)
    if e:
        errors.append("socket errors: " + e.group(1).strip())
    d = {
        "workload": load.name, "requests": n, "seconds": dur,
        "rps": float(rps.group(1)), "p50_ms": ms(p50.group(1)), "p99_ms": ms(p99.group(1)),
        "user_us_per_req": (u1 - u0) / HZ * 1e6 / n,
        "sys_us_per_req": (s1 - s0) / HZ * 1e6 / n,
        "errors": "; ".join(errors),
    }
    d["cpu_us_per_req"] = d["user_us_per_req"] + d["sys_us_per_req"]
    d.update(facts)
    return d, None


def summary(d):
    return "%.0f req/s, p99 %.2f ms, user %.2f us/req, sys %.2f us/req%s" % (
        d["rps"], d["p99_ms"], d["user_us_per_req"], d["sys_us_per_req"],
        " (%s)" % d["errors"] if d.get("errors") else "")


def method(samples, w):
    """The paragraph saying how a server-under-wrk workload is measured."""
    secs = max([x["seconds"] for (rt, ww), v in samples.items() if ww == w for x in v]
               or [DURATION])
    return ("Server pinned to core %s, wrk (one thread, %s connections, %d s after a 1 s "
            "warm-up) to core %s; CPU time per request = the server's user (or system) time "
            "from /proc/PID/stat over the measured run / requests served. wrk on one core "
            "saturates before a fast server does, so requests per second tops out for the "
            "fast ones; rank those by CPU per request." % (SERVER_CPU, CONNS, secs, WRK_CPU))


def table(A, w, rows, status, samples, med, spread, extra):
    """The table of a server-under-wrk workload w: requests/s, latency, CPU per
    request; extra = [(header, function(samples) -> cell)] columns after those."""
    n = max([len(v) for (rt, ww), v in samples.items() if ww == w] or [0])
    A("Repetitions: %d per runtime (medians shown, min–max in brackets)." % n)
    A("")
    A("| runtime | requests/s | p50 ms | p99 ms | user µs/req | sys µs/req |"
      + "".join(" %s |" % h for h, _ in extra))
    A("|---|---:|---:|---:|---:|---:|" + "---:|" * len(extra))
    for rt in rows:
        st = status(rt, w)
        if st:
            A("| %s | %s | | | | |" % (rt, st) + " |" * len(extra))
            continue
        s = samples[(rt, w)]
        errs = [x["errors"] for x in s if x.get("errors")]
        A("| %s%s | %.0f (%s) | %.2f | %.2f (%s) | %.2f (%s) | %.2f |" % (
            rt, " (wrk: %s)" % errs[0] if errs else "",
            med(s, "rps"), spread(s, "rps", "%.0f"), med(s, "p50_ms"),
            med(s, "p99_ms"), spread(s, "p99_ms", "%.2f"),
            med(s, "user_us_per_req"), spread(s, "user_us_per_req", "%.2f"),
            med(s, "sys_us_per_req")) + "".join(" %s |" % f(s) for _, f in extra))


def render(A, rows, status, samples, targets, med, spread, fmt_ratio):
    """The W6 section of the report; appends casync's targets."""
    A("## W6 HTTP: a keep-alive server answering \"Hello, World!\", loaded by wrk")
    A("")
    A(method(samples, "W6"))
    A("")
    ref = samples.get(("c", "W6"))
    refv = med(ref, "user_us_per_req") if ref and not status("c", "W6") else None
    table(A, "W6", rows, status, samples, med, spread, [
        ("user × C", lambda s: fmt_ratio(med(s, "user_us_per_req") / refv if refv else None))])
    c = samples.get(("casync", "W6"))
    ok = c and not status("casync", "W6")
    targets.append(("W6 server user CPU per request vs plain C on libuv", "≤ 2.20×",
                    fmt_ratio(med(c, "user_us_per_req") / refv) if ok and refv else "–",
                    ok and refv and med(c, "user_us_per_req") / refv <= 2.2))
    node = samples.get(("node", "W6"))
    nv = med(node, "rps") if node and not status("node", "W6") else None
    targets.append(("W6 requests per second vs Node.js http", "≥ 1.00×",
                    fmt_ratio(med(c, "rps") / nv) if ok and nv else "–",
                    ok and nv and med(c, "rps") >= nv))
    if ok:
        A("")
        A("p99 latency: casync %.2f ms%s." % (
            med(c, "p99_ms"), ", Node.js %.2f ms" % med(node, "p99_ms") if nv else ""))
