"""Password hashing: argon2id at OWASP cost, off the event loop, upgraded on sign-in."""

from __future__ import annotations

import asyncio
import time

from argon2 import extract_parameters
from v1_support import PASSWORD, create_user, login

from sproutgate.config import Settings
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
