"""W6 (issue #4): an HTTP/1.1 keep-alive server answering "Hello, World!",
loaded with wrk on loopback. Used by bench/run.

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
import time

PORT = int(os.environ.get("BENCH_W6_PORT", "18086"))
SERVER_CPU = os.environ.get("BENCH_W6_SERVER_CPU", "0")
WRK_CPU = os.environ.get("BENCH_W6_WRK_CPU", "1")
CONNS = os.environ.get("BENCH_W6_CONNS", "64")
DURATION = int(os.environ.get("BENCH_W6_DURATION", "5"))
HZ = os.sysconf("SC_CLK_TCK")


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


def wait_port(proc, seconds=15):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", PORT), 0.2).close()
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


def wrk(seconds, latency):
    cmd = ["taskset", "-c", WRK_CPU, "wrk", "-t1", "-c" + CONNS, "-d%ds" % seconds]
    if latency:
        cmd.append("--latency")
    cmd.append("http://127.0.0.1:%d/" % PORT)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout


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


def run(argv, extra, timeout, quick):
    """One measurement of the server argv: (dict, None) or (None, error)."""
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            return None, "`%s` not installed" % tool
    env = dict(os.environ)
    env.pop("BENCH_N", None)
    env.update(extra)
    env["BENCH_PORT"] = str(PORT)
    proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        if not wait_port(proc):
            err = proc.stderr.read().decode(errors="replace") if proc.poll() is not None else ""
            return None, "the server did not listen: " + (err.strip().splitlines() or ["?"])[-1][:300]
        dur = 1 if quick else DURATION
        wrk(1, False)  # warm-up: JITs, caches, connection set-up
        u0, s0 = cpu_ticks(proc.pid)
        out = wrk(dur, True)
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
    return {
        "workload": "W6", "requests": n, "seconds": dur,
        "rps": float(rps.group(1)), "p50_ms": ms(p50.group(1)), "p99_ms": ms(p99.group(1)),
        "user_us_per_req": (u1 - u0) / HZ * 1e6 / n,
        "sys_us_per_req": (s1 - s0) / HZ * 1e6 / n,
        "errors": "; ".join(errors),
    }, None


def summary(d):
    return "%.0f req/s, p99 %.2f ms, user %.2f us/req, sys %.2f us/req%s" % (
        d["rps"], d["p99_ms"], d["user_us_per_req"], d["sys_us_per_req"],
        " (%s)" % d["errors"] if d.get("errors") else "")


def render(A, rows, status, samples, targets, med, spread, fmt_ratio):
    """The W6 section of the report; appends casync's targets."""
    secs = max([x["seconds"] for (rt, w), v in samples.items() if w == "W6" for x in v]
               or [DURATION])
    A("## W6 HTTP: a keep-alive server answering \"Hello, World!\", loaded by wrk")
    A("")
    A("Server pinned to core %s, wrk (one thread, %s connections, %d s after a 1 s warm-up) "
      "to core %s; CPU time per request = the server's user (or system) time from "
      "/proc/PID/stat over the measured run / requests served. wrk on one core saturates "
      "before a fast server does, so requests per second tops out for the fast ones; "
      "rank those by CPU per request." % (SERVER_CPU, CONNS, secs, WRK_CPU))
    A("")
    n = max([len(v) for (rt, w), v in samples.items() if w == "W6"] or [0])
    A("Repetitions: %d per runtime (medians shown, min–max in brackets)." % n)
    A("")
    A("| runtime | requests/s | p50 ms | p99 ms | user µs/req | sys µs/req | user × C |")
    A("|---|---:|---:|---:|---:|---:|---:|")
    ref = samples.get(("c", "W6"))
    refv = med(ref, "user_us_per_req") if ref and not status("c", "W6") else None
    for rt in rows:
        st = status(rt, "W6")
        if st:
            A("| %s | %s | | | | | |" % (rt, st))
            continue
        s = samples[(rt, "W6")]
        u = med(s, "user_us_per_req")
        errs = [x["errors"] for x in s if x.get("errors")]
        A("| %s%s | %.0f (%s) | %.2f | %.2f (%s) | %.2f (%s) | %.2f | %s |" % (
            rt, " (wrk: %s)" % errs[0] if errs else "",
            med(s, "rps"), spread(s, "rps", "%.0f"), med(s, "p50_ms"),
            med(s, "p99_ms"), spread(s, "p99_ms", "%.2f"),
            u, spread(s, "user_us_per_req", "%.2f"), med(s, "sys_us_per_req"),
            fmt_ratio(u / refv if refv else None)))
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
