"""TRT, Python: the round trip of ThreadPoolExecutor.submit(f).result() on an
empty function, N times one after another (the default pool size)."""
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor


def empty():
    pass


def main():
    n = int(os.environ.get("BENCH_N") or 20000)
    with ThreadPoolExecutor() as executor:
        for _ in range(1000):
            executor.submit(empty).result()
        t0 = time.perf_counter()
        for _ in range(n):
            executor.submit(empty).result()
        wall = time.perf_counter() - t0
    print(json.dumps({"workload": "TRT", "runtime": "python", "round_trips": n,
                      "wall_s": wall, "us_per_rt": wall / n * 1e6}))


if __name__ == "__main__":
    main()
