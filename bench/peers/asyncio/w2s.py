"""W2S scopes, asyncio: N tasks that each sleep 10 ms in an
asyncio.TaskGroup (a scope), beside asyncio.gather over N coroutines."""
import asyncio
import json
import os
import sys
import time

N = int(os.environ.get("BENCH_N") or 100000)


async def sleeper():
    await asyncio.sleep(0.010)


async def with_scope():
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(N):
            tg.create_task(sleeper())
    return time.perf_counter() - t0


async def with_gather():
    t0 = time.perf_counter()
    await asyncio.gather(*[sleeper() for _ in range(N)])
    return time.perf_counter() - t0


async def main():
    await with_scope()
    g = await with_gather()
    s = await with_scope()
    print(json.dumps({"workload": "W2S", "runtime": sys.argv[1] if len(sys.argv) > 1 else "asyncio",
                      "tasks": N, "scope_us_per_task": (s - 0.010) * 1e6 / N,
                      "gather_us_per_task": (g - 0.010) * 1e6 / N}))


if len(sys.argv) > 1 and sys.argv[1] == "uvloop":
    import uvloop
    uvloop.install()
asyncio.run(main())
