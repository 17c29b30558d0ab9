"""A WebSocket peer on Python's websockets (Debian's python3-websockets) for
spec/websocket_spec.lua; run with /usr/bin/python3.
  ws_python.py server        echo server; prints its port; "frag" is
                             answered as three fragments, "close:CODE" by
                             closing with CODE
  ws_python.py client URL    sends a fixed script of messages to URL and
                             prints one line per event
"""
import asyncio
import hashlib
import sys

import websockets


def out(s):
    sys.stdout.write(s + "\n")
    sys.stdout.flush()


async def echo(ws, path=None):
    try:
        async for msg in ws:
            if msg == "frag":
                await ws.send(["fr", "ag", "ment"])
            elif isinstance(msg, str) and msg.startswith("close:"):
                await ws.close(int(msg[6:]), "asked")
            else:
                await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    out("server-close %s" % ws.close_code)


async def server():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=1 << 20) as srv:
        out(str(srv.sockets[0].getsockname()[1]))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


async def client(url):
    binary = bytes(i % 251 for i in range(70000))
    async with websockets.connect(url) as ws:
        await ws.send("hello")
        out("text " + await ws.recv())
        await ws.send("h\u00e9llo \u2603")
        out("text " + await ws.recv())
        await ws.send(binary)
        got = await ws.recv()
        out("binary %d %s" % (len(got), "true" if got == binary else "false"))
        await ws.send(["fr", "ag", "ment"])
        out("text " + await ws.recv())
        pong = await ws.ping(b"p")
        await pong
        out("pong p")
        await ws.close(1000, "done")
        out("close %s %s" % (ws.close_code, ws.close_reason))


if sys.argv[1] == "server":
    asyncio.run(server())
else:
    asyncio.run(client(sys.argv[2]))
