"""W6 HTTP "Hello, World!", Python aiohttp (Debian's python3-aiohttp): an
aiohttp.web application with one handler, on asyncio's default loop, no
access log. Listens on 127.0.0.1:$BENCH_PORT (8080) until killed."""
import os

from aiohttp import web


async def hello(request):
    return web.Response(text="Hello, World!")


app = web.Application()
app.router.add_get("/", hello)
web.run_app(app, host="127.0.0.1", port=int(os.environ.get("BENCH_PORT", "8080")),
            access_log=None, print=None)
