"""The SQLite inline driver (storage/sqlite_driver.py, docs/decisions/sqlite-inline-driver.md).

Its one rule, that nothing awaited inside an inline write block (``Database.write_now``) may
suspend, is enforced: a block that lets the event loop run other work is rolled back and raises.
``SPROUTGATE_SQLITE_INLINE_DRIVER=false`` turns the driver off, and the hot paths (sign-in,
refresh, the session check, search, sign-out) behave the same on plain aiosqlite."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy import bindparam, select, text, update

from sproutgate.storage.models import User
from sproutgate.storage.sqlite_driver import WriteBlockSuspended, runs_inline
from sproutgate.storage.statements import SessionStatements, SqliteStatements
from support.harness import bearer, signup

# These tests are about SQLite, whatever SPROUTGATE_TEST_DB says.
pytestmark = pytest.mark.parametrize("db_engine", ["sqlite"], indirect=True)

SET_LEVEL = update(User).where(User.id == bindparam("uid")).values(level=bindparam("new_level"))
LEVEL = select(User.level).where(User.id == bindparam("uid"))
PASSWORD = "Sprout#2026pw"

_n = itertools.count(1)


class Refused(Exception):
    """What a block raises when a rule of its own says no."""


@pytest.fixture
async def inline(make_harness, make_settings):
    return await make_harness(make_settings(sqlite_inline_driver=True))


async def _new_user(h, username: str = "sprout") -> dict:
    return await signup(h, f"driver{next(_n)}@example.com", username=username)


async def _level(h, uid: str) -> int:
    async with h.services.db.read() as s:
        return (await s.execute(LEVEL, {"uid": uid})).scalar_one()


async def _suspends_at_the_end(run, uid):
    await run.run(SET_LEVEL, uid=uid, new_level=7)
    await asyncio.sleep(0)


async def _suspends_between_statements(run, uid):
    await run.run(SET_LEVEL, uid=uid, new_level=7)
    await asyncio.sleep(0)
    await run.run(SET_LEVEL, uid=uid, new_level=9)


async def _waits_for_a_thread(run, uid):
    await run.run(SET_LEVEL, uid=uid, new_level=7)
    await asyncio.to_thread(lambda: None)  # as hashing a password inside the block would


async def _suspends_then_fails(run, uid):
    await run.run(SET_LEVEL, uid=uid, new_level=7)
    await asyncio.sleep(0)
    raise Refused()


@pytest.mark.parametrize(
    "block",
    [_suspends_at_the_end, _suspends_between_statements, _waits_for_a_thread, _suspends_then_fails],
)
async def test_inline_write_block_that_suspends_is_rolled_back_and_raises(inline, block):
    uid = (await _new_user(inline))["user"]["id"]
    db = inline.services.db
    with pytest.raises(WriteBlockSuspended):
        async with db.write_now() as run:
            assert isinstance(run, SqliteStatements)  # the inline path, not the fallback
            await block(run, uid)
    assert await _level(inline, uid) == 0
    # The write lock was let go: the next block commits.
    async with db.write_now() as run:
        assert await run.run(SET_LEVEL, uid=uid, new_level=8) == 1
    assert await _level(inline, uid) == 8


async def test_a_failure_after_a_suspension_is_kept_as_the_cause(inline):
    uid = (await _new_user(inline))["user"]["id"]
    with pytest.raises(WriteBlockSuspended) as caught:
        async with inline.services.db.write_now() as run:
            await _suspends_then_fails(run, uid)
    assert isinstance(caught.value.__cause__, Refused)


async def test_inline_write_block_may_await_what_does_not_suspend(inline):
    uid = (await _new_user(inline))["user"]["id"]

    async def no_wait() -> int:
        return 5

    async with inline.services.db.write_now() as run:
        assert isinstance(run, SqliteStatements)
        assert (await run.first(LEVEL, uid=uid)) == {"level": 0}
        async with asyncio.Lock():  # a free lock is taken without suspending
            level = await no_wait()
        await run.run(SET_LEVEL, uid=uid, new_level=level)
    assert await _level(inline, uid) == 5


async def test_inline_write_block_failing_without_suspending_raises_its_own_error(inline):
    uid = (await _new_user(inline))["user"]["id"]
    with pytest.raises(Refused):
        async with inline.services.db.write_now() as run:
            await run.run(SET_LEVEL, uid=uid, new_level=3)
            raise Refused()
    assert await _level(inline, uid) == 0


async def test_without_the_driver_write_now_is_an_ordinary_transaction(make_harness, make_settings):
    h = await make_harness(make_settings(sqlite_inline_driver=False))
    uid = (await _new_user(h))["user"]["id"]
    async with h.services.db.write_now() as run:
        assert isinstance(run, SessionStatements)
        await run.run(SET_LEVEL, uid=uid, new_level=4)
        await asyncio.sleep(0)  # allowed: no lock is held on the event loop here
    assert await _level(h, uid) == 4


@pytest.mark.parametrize("flag", ["true", "false"])
async def test_hot_paths_answer_alike_with_the_driver_on_and_off(
    make_harness, make_settings, monkeypatch, flag
):
    monkeypatch.setenv("SPROUTGATE_SQLITE_INLINE_DRIVER", flag)
    h = await make_harness(make_settings())
    on = flag == "true"
    db = h.services.db
    assert h.services.settings.sqlite_inline_driver is on
    assert runs_inline(db.engine) is on
    assert db.reads_now is on
    async with db.read() as s:
        # The driver's engine leaves checkpoints to its background thread; plain aiosqlite to SQLite.
        assert (await s.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == (0 if on else 1000)

    email = f"driver{next(_n)}@example.com"
    uid = (await signup(h, email, username="Hot Path Sprout"))["user"]["id"]
    r = await h.client.post("/api/v1/auth/sessions", json={"email": email, "password": "wrong#Pass99"})
    assert r.status_code == 401
    r = await h.client.post("/api/v1/auth/sessions", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    first = r.json()
    me = await h.client.get("/api/v1/users/me", headers=bearer(first["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == uid

    r = await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await h.client.get("/api/v1/users/me", headers=bearer(second["access_token"]))).status_code == 200

    found = await h.client.post(
        "/api/v1/users/search", json={"query": "hot path"}, headers=bearer(second["access_token"])
    )
    assert found.status_code == 200 and [u["id"] for u in found.json()] == [uid]
    exact = await h.client.post(
        "/api/v1/users/search", json={"query": email.upper()}, headers=bearer(second["access_token"])
    )
    assert exact.status_code == 200 and [u["id"] for u in exact.json()] == [uid]

    r = await h.client.request(
        "DELETE", "/api/v1/auth/sessions", json={"refresh_token": second["refresh_token"]}
    )
    assert r.status_code == 204
    assert (await h.client.get("/api/v1/users/me", headers=bearer(second["access_token"]))).status_code == 401
    r = await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 401
