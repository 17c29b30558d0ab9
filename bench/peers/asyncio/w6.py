"""W6 HTTP "Hello, World!", Python asyncio (argument: asyncio or uvloop):
a raw asyncio.Protocol with a minimal parser (a request ends at the first
blank line; GET without a body, as wrk sends) and one fixed keep-alive
response. Listens on 127.0.0.1:$BENCH_PORT (8080) until killed."""
import asyncio
import os

from common import setup

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 13\r\n\r\nHello, World!")


class Hello(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        buf = self.buf + data
        n = 0
        while True:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                break
            buf = buf[i + 4:]
            n += 1
        self.buf = buf
        if n:
            self.transport.write(RESPONSE * n)


async def main():
    loop = asyncio.get_running_loop()
    port = int(os.environ.get("BENCH_PORT", "8080"))
    server = await loop.create_server(Hello, "127.0.0.1", port, backlog=511)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    setup()
    asyncio.run(main())
