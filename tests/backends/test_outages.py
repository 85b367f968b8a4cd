"""PostgreSQL going away: requests that need it answer 503 problem+json within a few seconds
(never 500, never a hang), /infra/health says unhealthy, and service resumes by itself.
This module has a PostgreSQL server of its own, so stopping it disturbs no other test."""

from __future__ import annotations

import os
import signal
import time

import pytest

from support.servers import PostgresServer, ServerProcess

from .cluster import PASSWORD, bearer, client, server_env, sign_up, start_all, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TIMEOUT_SECONDS = 2  # connect and statement timeouts of the instance under test


@pytest.fixture(scope="module")
def pg():
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
def instance(pg, tmp_path_factory):
    base = tmp_path_factory.mktemp("outage")
    env = server_env(
        base / "data",
        pg.create_database("outage"),
        db_connect_timeout_seconds=TIMEOUT_SECONDS,
        db_statement_timeout_seconds=TIMEOUT_SECONDS,
        db_pool_timeout_seconds=TIMEOUT_SECONDS,
    )
    server = ServerProcess(env=env, log_dir=base / "logs", name="outage")
    start_all([server])
    try:
        yield server
    finally:
        server.close()


def _postgres_processes(postmaster: int) -> list[int]:
    """The postmaster and its children (backends run in process groups of their own)."""
    pids = [postmaster]
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                pids.append(int(stat))
    return pids


def assert_unavailable(r, started: float, limit: float) -> None:
    elapsed = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "database_unavailable" and r.headers.get("Retry-After")
    assert elapsed < limit, f"answered after {elapsed:.1f}s"


async def _outage_answers(url: str, session: dict, limit: float, newcomer: str) -> None:
    async with client(url) as c:
        started = time.monotonic()
        r = await c.post("/api/v1/auth/sessions", json={"email": "steady@example.com", "password": PASSWORD})
        assert_unavailable(r, started, limit)
        started = time.monotonic()
        r = await c.get("/api/v1/users/me", headers=bearer(session["access_token"]))
        assert_unavailable(r, started, limit)
        started = time.monotonic()
        r = await c.post(
            "/api/v1/auth/verifications",
            json={"email": f"{newcomer}@example.com", "password": PASSWORD, "username": "newcomer"},
        )
        assert_unavailable(r, started, limit)
        started = time.monotonic()
        health = (await c.get("/api/v1/infra/health")).json()
        assert time.monotonic() - started < limit
        assert health["status"] == "unhealthy"
        assert health["services"]["database"]["status"] == "unhealthy"
        assert (await c.get("/health")).status_code == 200  # the process itself is alive


async def _recovers(url: str, session: dict) -> float:
    async def signed_in() -> bool:
        async with client(url) as c:
            r = await c.post(
                "/api/v1/auth/sessions", json={"email": "steady@example.com", "password": PASSWORD}
            )
            return r.status_code == 200

    took = await wait_until(signed_in, 20, "sign-in after the database came back")
    async with client(url) as c:
        assert (await c.get("/api/v1/users/me", headers=bearer(session["access_token"]))).status_code == 200
        assert (await c.get("/api/v1/infra/health")).json()["status"] == "healthy"
    return took


async def test_stopped_postgres_answers_503_fast_then_service_resumes(pg, instance):
    session = await sign_up(instance.base_url, "steady@example.com", username="steady")
    pg.stop()
    try:
        await _outage_answers(instance.base_url, session, limit=TIMEOUT_SECONDS + 2, newcomer="stopped")
    finally:
        pg.start()
    await _recovers(instance.base_url, session)
    # The sign-up refused with 503 used up nothing: retried within the minute, it goes through
    # (one code mail per address per minute still holds for the next one).
    async with client(instance.base_url) as c:
        body = {"email": "stopped@example.com", "password": PASSWORD, "username": "newcomer"}
        r = await c.post("/api/v1/auth/verifications", json=body)
        assert r.status_code == 202, r.text
        r = await c.post("/api/v1/auth/verifications", json=body)
        assert r.status_code == 429 and r.headers["Retry-After"], r.text
    # Crash and crash recovery of the server as well.
    pg.kill()
    try:
        await _outage_answers(instance.base_url, session, limit=TIMEOUT_SECONDS + 2, newcomer="crashed")
    finally:
        pg.start()
    await _recovers(instance.base_url, session)


async def test_frozen_postgres_answers_503_within_the_timeouts(pg, instance):
    """A server that stops answering without closing connections (SIGSTOP) is the slow case:
    connect, pool and statement timeouts bound the wait."""
    async with client(instance.base_url) as c:
        r = await c.post("/api/v1/auth/sessions", json={"email": "steady@example.com", "password": PASSWORD})
        assert r.status_code == 200, r.text
        session = r.json()
    frozen = _postgres_processes(pg.pid)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        await _outage_answers(instance.base_url, session, limit=2 * TIMEOUT_SECONDS + 3, newcomer="frozen")
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    await _recovers(instance.base_url, session)
