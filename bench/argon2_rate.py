"""The raw argon2id verify rate, measured the way the server hashes.

``python bench/argon2_rate.py SECONDS WARMUP CONCURRENCY [TIME_COST MEMORY_KIB PARALLELISM]``
prints one JSON object. Like SproutGate's Argon2Hasher, each verify runs through
``asyncio.to_thread``, i.e. on the event loop's default ThreadPoolExecutor, whose worker count
(``min(32, os.cpu_count() + 4)`` on Python 3.11) is the same as in the server process.
``CONCURRENCY`` verifies are kept in flight, as many as the login benchmark's clients, so the
pool is as busy as it is during the login run. Run it pinned to the server's cores.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sys
import time

import argon2


async def measure(seconds: float, warmup: float, concurrency: int, params: tuple[int, int, int]) -> dict:
    t, m, p = params
    ph = argon2.PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=argon2.Type.ID)
    password = "Sprout#2026-bench-pw"
    stored = ph.hash(password)
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
            began = loop.time()
            ok = await asyncio.to_thread(ph.verify, stored, password)
            if ok and began >= start and loop.time() <= end:
                done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    # What ThreadPoolExecutor() picks by default, i.e. what asyncio.to_thread runs on.
    pool_workers = concurrent.futures.ThreadPoolExecutor()._max_workers
    return {
        "verifies": done,
        "seconds": seconds,
        "rate": done / seconds,
        "cpu_ms_per_verify": (cpu[1] - cpu[0]) * 1000 / done if done and len(cpu) == 2 else 0.0,
        "pool_workers": pool_workers,
        "concurrency": concurrency,
        "cpus": sorted(os.sched_getaffinity(0)),
        "params": {"time_cost": t, "memory_kib": m, "parallelism": p},
    }


def main() -> None:
    seconds, warmup, concurrency = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    params = tuple(int(x) for x in sys.argv[4:7]) or (2, 19456, 1)
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    t0 = time.perf_counter()
    result = asyncio.run(measure(seconds, warmup, concurrency, params))  # type: ignore[arg-type]
    result["wall"] = time.perf_counter() - t0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
