"""W1 switch, asyncio/uvloop: two tasks taking turns through asyncio.sleep(0)."""
import asyncio
from common import setup, env_n, now, emit

RUNTIME = setup()


async def main():
    n = env_n("BENCH_N", 1000000)
    per = n // 2
    count = 0

    async def task():
        nonlocal count
        for _ in range(per):
            await asyncio.sleep(0)
            count += 1

    t0 = now()
    await asyncio.gather(task(), task())
    wall = now() - t0
    emit(workload="W1", runtime=RUNTIME, switches=count, wall_s=wall, ns_per_op=wall * 1e9 / count)


asyncio.run(main())
