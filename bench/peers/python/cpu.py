"""CPU, Python: the seed's parallel_cpu_work, verbatim: cpu_intensive_task(10**7)
four times, one after another, then on a ProcessPoolExecutor(max_workers=4)
(started and warm before the clock starts), futures submitted and their
results taken in order."""
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

TASKS = 4


def cpu_intensive_task(n):
    """CPU-bound computation."""
    result = sum(i * i for i in range(n))
    return result


def main():
    n = int(os.environ.get("BENCH_N") or 10**7)
    t0 = time.perf_counter()
    seq = [cpu_intensive_task(n) for _ in range(TASKS)]
    seq_s = time.perf_counter() - t0
    with ProcessPoolExecutor(max_workers=TASKS) as executor:
        list(executor.map(cpu_intensive_task, [1] * TASKS * 4))  # processes up
        t0 = time.perf_counter()
        futures = [executor.submit(cpu_intensive_task, n) for _ in range(TASKS)]
        results = [f.result() for f in futures]
        par_s = time.perf_counter() - t0
    assert results == seq
    print(json.dumps({"workload": "CPU", "runtime": "python", "tasks": TASKS, "n": n,
                      "workers": TASKS, "seq_s": seq_s, "par_s": par_s,
                      "speedup": seq_s / par_s}))


if __name__ == "__main__":
    main()
