"""Password hashing: argon2id at OWASP cost, off the event loop, upgraded on sign-in."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest
from argon2 import extract_parameters
from v1_support import PASSWORD, create_user, login

from sproutgate.config import Settings
from sproutgate.infra.hasher import Argon2Hasher, hashing_threads, usable_cores
from sproutgate.services import build_services
from sproutgate.storage.repositories import UserRepository


async def test_default_hasher_meets_owasp_argon2id_parameters(tmp_path, monkeypatch):
    for name in ("TIME_COST", "MEMORY_KIB", "PARALLELISM"):
        monkeypatch.delenv(f"SPROUTGATE_ARGON2_{name}", raising=False)
    services = build_services(Settings(data_dir=tmp_path / "data"))
    try:
        stored = await services.hasher.hash(PASSWORD)
    finally:
        await services.db.dispose()
    assert stored.startswith("$argon2id$")
    params = extract_parameters(stored)
    assert params.memory_cost >= 19456
    assert params.time_cost >= 2
    assert params.parallelism == 1
    assert await services.hasher.verify(stored, PASSWORD)
    assert not await services.hasher.verify(stored, PASSWORD + "x")


async def test_hashing_does_not_block_the_event_loop(tmp_path):
    services = build_services(
        Settings(data_dir=tmp_path / "data", argon2_time_cost=2, argon2_memory_kib=19456)
    )
    hasher = services.hasher
    try:
        started = time.perf_counter()
        await hasher.hash(PASSWORD)
        one_hash = time.perf_counter() - started

        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.002)
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        started = time.perf_counter()
        stored = await hasher.hash(PASSWORD)
        await hasher.verify(stored, PASSWORD)
        await hasher.burn(PASSWORD)
        elapsed = time.perf_counter() - started
        stop.set()
        await task
    finally:
        await services.db.dispose()
    # Had the hash run on the loop, the ticker could not have run while it did.
    assert one_hash > 0.005, "hash too cheap to tell"
    assert ticks >= max(3, int(elapsed / 0.002 / 10)), (ticks, elapsed)


def _argon2_calls_in_progress() -> int:
    """How many threads are inside an argon2 hash or verify right now (their Python frame
    calling into the C library is argon2's low_level.py, whether or not they are on a core)."""
    busy = 0
    for frame in sys._current_frames().values():
        f = frame
        while f is not None:
            if f.f_code.co_filename.endswith(os.path.join("argon2", "low_level.py")):
                busy += 1
                break
            f = f.f_back
    return busy


async def _most_hashes_at_once(hasher: Argon2Hasher, calls: int) -> int:
    """Run ``calls`` hash/verify/burn calls at once (real argon2) and return the most that
    were ever in progress together, sampled every 0.5 ms from a thread of its own."""
    stored = await hasher.hash(PASSWORD)
    seen = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal seen
        while not stop.is_set():
            seen = max(seen, _argon2_calls_in_progress())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        await asyncio.gather(*(_one_of_each(hasher, stored, i) for i in range(calls)))
    finally:
        stop.set()
        sampler.join()
    return seen


async def _one_of_each(hasher: Argon2Hasher, stored: str, i: int) -> object:
    """A hash, a (failing) verify or a burn, by ``i``: all three count towards the bound."""
    if i % 3 == 0:
        return await hasher.hash(PASSWORD)
    if i % 3 == 1:
        return await hasher.verify(stored, PASSWORD + "x")
    return await hasher.burn(PASSWORD)


async def test_no_more_hashes_run_at_once_than_cores_the_process_may_use():
    # Two hashes sharing a core evict each other's 19 MiB working set: more wait in line.
    cores = len(os.sched_getaffinity(0))
    hasher = Argon2Hasher(time_cost=1, memory_kib=8192)
    assert hasher.threads == cores
    most = await _most_hashes_at_once(hasher, calls=4 * cores + 6)
    assert 1 <= most <= cores, (most, cores)


async def test_an_explicit_hash_thread_count_is_the_bound_and_is_reached():
    # Hashes long enough (tens of ms each) that the sampler sees three together even when the
    # machine is busy with other work.
    hasher = Argon2Hasher(time_cost=2, memory_kib=32768, threads=3)
    assert await _most_hashes_at_once(hasher, calls=15) == 3


def test_the_default_bound_follows_the_cpu_affinity_mask():
    # What `taskset -c 0 sproutgate serve` (or a cpuset) gives the process.
    code = "from sproutgate.infra.hasher import Argon2Hasher; print(Argon2Hasher(1, 64).threads)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
    )
    assert out.stdout.strip() == "1"


def test_workers_and_lanes_share_the_cores_between_them():
    cores = usable_cores()
    assert hashing_threads() == cores
    assert hashing_threads(parallelism=2) == max(1, cores // 2)
    assert hashing_threads(processes=cores) == 1
    assert hashing_threads(parallelism=4, processes=10**6) == 1  # never none


def test_a_hash_thread_count_below_one_is_refused():
    with pytest.raises(ValueError):
        Argon2Hasher(1, 64, threads=0)
    with pytest.raises(ValueError):
        Settings(argon2_threads=-1)


async def test_queued_hashes_do_not_hold_up_other_blocking_work():
    # Hashes have an executor of their own: asyncio.to_thread (file reads, SQLite through
    # aiosqlite's callers, ...) does not wait behind a queue of sign-ins.
    hasher = Argon2Hasher(time_cost=2, memory_kib=19456, threads=1)
    stored = await hasher.hash(PASSWORD)
    pending = [asyncio.ensure_future(hasher.verify(stored, PASSWORD)) for _ in range(16)]
    try:
        await asyncio.sleep(0)
        await asyncio.to_thread(time.monotonic)
        finished = sum(t.done() for t in pending)
    finally:
        await asyncio.gather(*pending)
    # Behind the hashes it would have found every one of them done (16 hashes of some 20 ms).
    # A result comes back in pairs while others wait in line, so 2 is what a quiet machine
    # sees; a loaded one may let another pair or two finish before this thread gets a core.
    assert finished < len(pending) // 2, finished


async def _stored_hash(h, email):
    async with h.services.db.read() as s:
        return (await UserRepository(s).by_email(email)).password_hash


async def test_sign_in_rehashes_when_parameters_change(make_harness, make_settings):
    cheap = await make_harness(make_settings())
    await create_user(cheap, "upgrade@example.com")
    before = await _stored_hash(cheap, "upgrade@example.com")
    assert extract_parameters(before).time_cost == 1

    strong = await make_harness(make_settings(argon2_time_cost=2, argon2_memory_kib=2048))
    await login(strong, "upgrade@example.com")
    after = await _stored_hash(strong, "upgrade@example.com")
    assert after != before
    params = extract_parameters(after)
    assert (params.time_cost, params.memory_cost) == (2, 2048)
    # the new hash still verifies, and an unchanged cost leaves it alone
    await login(strong, "upgrade@example.com")
    assert await _stored_hash(strong, "upgrade@example.com") == after


async def test_failed_sign_in_does_not_rehash(make_harness, make_settings):
    cheap = await make_harness(make_settings())
    await create_user(cheap, "stay@example.com")
    before = await _stored_hash(cheap, "stay@example.com")
    strong = await make_harness(make_settings(argon2_time_cost=2))
    r = await strong.client.post(
        "/api/v1/auth/sessions", json={"email": "stay@example.com", "password": "Wrong#Pass1"}
    )
    assert r.status_code == 401
    assert await _stored_hash(strong, "stay@example.com") == before


async def test_passwords_are_never_stored_in_clear(harness):
    from support.harness import signup

    await signup(harness, "secret@example.com", password="Very#Secret2026")
    stored = await _stored_hash(harness, "secret@example.com")
    assert stored.startswith("$argon2id$") and "Very#Secret2026" not in stored
