"""Helpers shared by the asyncio / uvloop peers.

Each program takes one argument, ``asyncio`` (default loop) or ``uvloop``.
"""
import asyncio
import json
import os
import sys
import time


def setup():
    """Install the loop named on the command line; return the runtime name."""
    mode = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    if mode == "uvloop":
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    elif mode != "asyncio":
        sys.exit("usage: %s [asyncio|uvloop]" % sys.argv[0])
    return mode


def env_n(name, dflt):
    try:
        v = int(os.environ.get(name, ""))
        return v if v > 0 else dflt
    except ValueError:
        return dflt


def status_bytes(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return -1


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


now = time.perf_counter

_lcg_state = 42


def lcg_next():
    """Park-Miller "minimal standard" LCG, identical in every peer."""
    global _lcg_state
    _lcg_state = (_lcg_state * 48271) % 2147483647
    return _lcg_state / 2147483647


def emit(**kw):
    print(json.dumps(kw))
