"""W2 spawn-gather, asyncio/uvloop: N coroutines each sleeping 10 ms and
returning a value, gathered with asyncio.gather (which wraps each in a Task)."""
import asyncio
from common import setup, env_n, now, emit, status_bytes, reset_hwm

RUNTIME = setup()


async def task(i):
    await asyncio.sleep(0.010)
    return i


async def main():
    n = env_n("BENCH_N", 100000)
    reset_hwm()
    rss0 = status_bytes("VmRSS")
    t0 = now()
    results = await asyncio.gather(*[task(i) for i in range(n)])
    wall = now() - t0
    hwm = status_bytes("VmHWM")
    assert results[n - 1] == n - 1
    emit(workload="W2", runtime=RUNTIME, tasks=n, wall_s=wall, us_per_task=(wall - 0.010) * 1e6 / n,
         rss_bytes_per_task=(hwm - rss0) / n)


asyncio.run(main())
