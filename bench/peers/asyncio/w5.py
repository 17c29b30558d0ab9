"""W5, asyncio/uvloop: 100 x asyncio.sleep(0.01) one after another, then 100
coroutines sleeping 10 ms at once, gathered with asyncio.gather."""
import asyncio
from common import setup, env_n, now, emit

RUNTIME = setup()


async def main():
    n = env_n("BENCH_N", 100)
    t0 = now()
    for _ in range(n):
        await asyncio.sleep(0.010)
    seq = now() - t0
    t0 = now()
    await asyncio.gather(*[asyncio.sleep(0.010) for _ in range(n)])
    gat = now() - t0
    emit(workload="W5", runtime=RUNTIME, tasks=n, seq_s=seq, gather_s=gat, speedup=seq / gat)


asyncio.run(main())
