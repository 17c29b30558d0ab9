"""W3 ping-pong, asyncio/uvloop: two tasks exchange N round trips over two
asyncio.Queue(maxsize=1). A puts i on q1 and gets it back from q2; B gets from
q1 and puts the value on q2. A message is one put + get, so a round trip is
two messages. (asyncio has no unbuffered channel; a one-slot queue is the
nearest, and needs the same two task switches per round trip.)"""
import asyncio
from common import setup, env_n, now, emit

RUNTIME = setup()


async def main():
    n = env_n("BENCH_N", 500000)
    q1, q2 = asyncio.Queue(maxsize=1), asyncio.Queue(maxsize=1)
    total = 0

    async def a():
        nonlocal total
        for i in range(1, n + 1):
            await q1.put(i)
            v = await q2.get()
            assert v == i
            total += v

    async def b():
        for _ in range(n):
            await q2.put(await q1.get())

    t0 = now()
    await asyncio.gather(a(), b())
    wall = now() - t0
    assert total == n * (n + 1) // 2, "lost or duplicated messages"
    emit(workload="W3", runtime=RUNTIME, round_trips=n, messages=2 * n, wall_s=wall,
         ns_per_msg=wall * 1e9 / (2 * n))


asyncio.run(main())
