"""The raw argon2id verify rate, in one of two shapes.

``python bench/argon2_rate.py SECONDS WARMUP CONCURRENCY [TIME_COST MEMORY_KIB PARALLELISM]
[--loop]`` prints one JSON object. Run it pinned to the server's cores.

- ``--loop``: the physical bound. One plain thread per core this process may use
  (``os.sched_getaffinity``), each calling ``verify`` back to back: no event loop, no pool, no
  queue, never more hashes at once than cores. On one core that is a single-threaded loop.
  ``CONCURRENCY`` is ignored.
- default (pool): each verify runs through ``asyncio.to_thread``, i.e. on the event loop's
  default ThreadPoolExecutor (``min(32, os.cpu_count() + 4)`` workers on Python 3.11), with
  ``CONCURRENCY`` verifies in flight, as many as the login benchmark's clients. This is how the
  server hashed until it got a hash executor of its own (one thread per core); with more
  threads than cores, hashes share a core and evict each other's 19 MiB working set.

In both shapes every verify that ends inside the window (after the warm-up) counts, wherever it
started, as bench/loadgen.py counts requests.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sys
import threading
import time

import argon2

PASSWORD = "Sprout#2026-bench-pw"


def _hasher(params: tuple[int, int, int]) -> argon2.PasswordHasher:
    t, m, p = params
    return argon2.PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=argon2.Type.ID)


def _result(
    done: int, seconds: float, cpu: list[float], params: tuple[int, int, int], **extra: object
) -> dict:
    t, m, p = params
    return {
        "verifies": done,
        "seconds": seconds,
        "rate": done / seconds,
        "cpu_ms_per_verify": (cpu[1] - cpu[0]) * 1000 / done if done and len(cpu) == 2 else 0.0,
        "cpus": sorted(os.sched_getaffinity(0)),
        "params": {"time_cost": t, "memory_kib": m, "parallelism": p},
        **extra,
    }


def measure_loop(seconds: float, warmup: float, params: tuple[int, int, int]) -> dict:
    """One tight verify loop per usable core, counted over ``seconds`` after ``warmup``."""
    ph = _hasher(params)
    stored = ph.hash(PASSWORD)
    threads = len(os.sched_getaffinity(0))
    start = time.perf_counter() + warmup
    end = start + seconds
    counts = [0] * threads

    def loop(i: int) -> None:
        while time.perf_counter() < end:
            ph.verify(stored, PASSWORD)
            if start <= time.perf_counter() <= end:
                counts[i] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    cpu: list[float] = []
    time.sleep(max(0.0, start - time.perf_counter()))
    cpu.append(time.process_time())
    time.sleep(max(0.0, end - time.perf_counter()))
    cpu.append(time.process_time())
    for w in workers:
        w.join()
    return _result(sum(counts), seconds, cpu, params, mode="loop", threads=threads)


async def measure_pool(seconds: float, warmup: float, concurrency: int, params: tuple[int, int, int]) -> dict:
    """``concurrency`` verifies in flight through ``asyncio.to_thread``."""
    ph = _hasher(params)
    stored = ph.hash(PASSWORD)
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    end = start + seconds
    done = 0
    cpu: list[float] = []  # process CPU time (all threads) when the window opens and closes
    loop.call_at(start, lambda: cpu.append(time.process_time()))
    loop.call_at(end, lambda: cpu.append(time.process_time()))

    async def worker() -> None:
        nonlocal done
        while loop.time() < end:
            ok = await asyncio.to_thread(ph.verify, stored, PASSWORD)
            if ok and start <= loop.time() <= end:
                done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    # What ThreadPoolExecutor() picks by default, i.e. what asyncio.to_thread runs on.
    pool_workers = concurrent.futures.ThreadPoolExecutor()._max_workers
    extra = {"mode": "pool", "pool_workers": pool_workers, "concurrency": concurrency}
    return _result(done, seconds, cpu, params, **extra)


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--loop"]
    seconds, warmup, concurrency = float(args[0]), float(args[1]), int(args[2])
    params: tuple[int, int, int] = tuple(int(x) for x in args[3:6]) or (2, 19456, 1)  # type: ignore[assignment]
    t0 = time.perf_counter()
    if "--loop" in sys.argv:
        result = measure_loop(seconds, warmup, params)
    else:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass
        result = asyncio.run(measure_pool(seconds, warmup, concurrency, params))
    result["wall"] = time.perf_counter() - t0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
