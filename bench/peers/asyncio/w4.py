"""W4 timers, asyncio/uvloop: N coroutines each sleeping an LCG duration in
[0,1) s, gathered with asyncio.gather."""
import asyncio
from common import setup, env_n, now, emit, lcg_next

RUNTIME = setup()


async def task(d):
    await asyncio.sleep(d)


async def main():
    n = env_n("BENCH_N", 200000)
    maxd = 0.0
    t0 = now()
    coros = []
    for _ in range(n):
        d = lcg_next()
        maxd = max(maxd, d)
        coros.append(task(d))
    await asyncio.gather(*coros)
    wall = now() - t0
    emit(workload="W4", runtime=RUNTIME, tasks=n, wall_s=wall, max_sleep_s=maxd, overhead_s=wall - maxd)


asyncio.run(main())
