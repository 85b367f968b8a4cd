"""Two `sproutgate serve` processes on one PostgreSQL and one Redis behave as one server:
nothing either keeps in memory changes what the other answers. Also: a process killed with
SIGKILL mid-burst loses no answered sign-up, and a Redis outage neither opens the limits nor
stops the service."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from support.servers import RedisServer, ServerProcess

from .cluster import (
    PASSWORD,
    bearer,
    client,
    fresh_ip,
    mailed_code,
    server_env,
    sign_up,
    sql,
    start_all,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

GRACE_SECONDS = 2.0
LOGIN_LIMIT = 4  # failed sign-ins per account and address, per minute


@dataclass
class Pair:
    a: ServerProcess
    b: ServerProcess
    redis: RedisServer
    dsn: str
    env: dict

    @property
    def urls(self) -> tuple[str, str]:
        return self.a.base_url, self.b.base_url


@pytest.fixture(scope="module")
def pair(postgres_server, tmp_path_factory) -> Pair:
    base: Path = tmp_path_factory.mktemp("pair")
    name = f"pair_{int(time.time() * 1000) % 10**9}"
    url = postgres_server.create_database(name)
    with RedisServer() as redis:
        env = server_env(
            base / "data",
            url,
            redis.url,
            refresh_grace_seconds=GRACE_SECONDS,
            limit_login_fail_account_ip=f"{LOGIN_LIMIT}/minute",
            # A sign-up killed before it committed has still used its mail allowance.
            limit_code_mail_per_address="5/minute",
            redis_retry_seconds=1,
        )
        a = ServerProcess(env=env, log_dir=base / "logs", name="a")
        b = ServerProcess(env=env, log_dir=base / "logs", name="b")
        start_all([a, b])
        try:
            yield Pair(a, b, redis, postgres_server.dsn(name), env)
        finally:
            a.close()
            b.close()


async def test_token_from_one_instance_is_accepted_by_the_other(pair):
    a, b = pair.urls
    session = await sign_up(a, "shared@example.com", username="shared")
    async with client(a) as ca, client(b) as cb:
        r = await cb.get("/api/v1/users/me", headers=bearer(session["access_token"]))
        assert r.status_code == 200, r.text
        assert (await cb.get("/.well-known/jwks.json")).json() == (
            await ca.get("/.well-known/jwks.json")
        ).json()


async def test_code_mailed_by_one_instance_is_accepted_by_the_other(pair):
    a, b = pair.urls
    async with client(a) as ca, client(b) as cb:
        body = {"email": "crossing@example.com", "password": PASSWORD, "username": "crossing"}
        assert (await ca.post("/api/v1/auth/verifications", json=body)).status_code == 202
        code = await mailed_code(a, "crossing@example.com")
        r = await cb.post("/api/v1/auth/verifications/verify", json={"email": body["email"], "token": code})
        assert r.status_code == 200, r.text


async def test_refresh_token_rotated_on_one_instance_is_reuse_on_the_other_after_grace(pair):
    a, b = pair.urls
    first = await sign_up(a, "rotate@example.com", username="rotate")
    async with client(a) as ca, client(b) as cb:
        r = await ca.post("/api/v1/auth/sessions/refresh", json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 200, r.text
        second = r.json()
        # Within the grace window the old token still works anywhere (two tabs refreshing at once).
        r = await cb.post("/api/v1/auth/sessions/refresh", json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 200, r.text
        await asyncio.sleep(GRACE_SECONDS + 0.5)
        r = await cb.post("/api/v1/auth/sessions/refresh", json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 401 and r.json()["code"] == "invalid_refresh_token", r.text
        # Reuse ends the session everywhere: its newer refresh token and its access tokens too.
        r = await ca.post("/api/v1/auth/sessions/refresh", json={"refresh_token": second["refresh_token"]})
        assert r.status_code == 401, r.text
        for c in (ca, cb):
            assert (
                await c.get("/api/v1/users/me", headers=bearer(second["access_token"]))
            ).status_code == 401


async def test_session_revoked_on_one_instance_is_rejected_by_the_other_at_once(pair):
    a, b = pair.urls
    session = await sign_up(a, "revoke@example.com", username="revoke")
    async with client(a) as ca, client(b) as cb:
        assert (await cb.get("/api/v1/users/me", headers=bearer(session["access_token"]))).status_code == 200
        r = await ca.request(
            "DELETE", "/api/v1/auth/sessions", json={"refresh_token": session["refresh_token"]}
        )
        assert r.status_code == 204, r.text
        assert (await cb.get("/api/v1/users/me", headers=bearer(session["access_token"]))).status_code == 401
        r = await cb.post("/api/auth/verify", json={"token": session["access_token"]})
        assert r.json() == {"valid": False} or r.json().get("valid") is False


async def _failed_logins(urls: list[str], email: str, ip: str) -> list[int]:
    statuses = []
    for url in urls:
        async with client(url, ip) as c:
            r = await c.post("/api/v1/auth/sessions", json={"email": email, "password": "wrong-password"})
            statuses.append(r.status_code)
    return statuses


async def test_rate_limit_counts_across_instances(pair):
    a, b = pair.urls
    await sign_up(a, "limited@example.com", username="limited")
    ip = fresh_ip()
    # Alternating instances: each one sees only half of the attempts, the limit sees all.
    statuses = await _failed_logins([a, b, a, b, a, b], "limited@example.com", ip)
    assert statuses == [401] * LOGIN_LIMIT + [429, 429], statuses
    async with client(b, ip) as cb:
        r = await cb.post(
            "/api/v1/auth/sessions", json={"email": "limited@example.com", "password": PASSWORD}
        )
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


async def test_new_signing_key_is_accepted_by_every_instance(pair):
    a, b = pair.urls
    rotated = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sproutgate", "keys", "rotate"],
        env=pair.a.full_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    kid = rotated.stdout.split()[-1]
    pair.a.restart()  # A now signs with the new key; B has never seen it
    session = await sign_up(a, "newkey@example.com", username="newkey")
    assert jwt.get_unverified_header(session["access_token"])["kid"] == kid
    async with client(b) as cb:
        assert (await cb.get("/api/v1/users/me", headers=bearer(session["access_token"]))).status_code == 200
        kids = [k["kid"] for k in (await cb.get("/.well-known/jwks.json")).json()["keys"]]
    assert kid in kids and len(kids) == 2


async def _burst(url: str, path: str, bodies: dict[str, dict], kill: ServerProcess, after: int) -> dict:
    """POST every body at once to ``url``; SIGKILL the server once ``after`` answers came back.
    Returns email -> status code, or None when the connection died first."""
    results: dict[str, int | None] = {}
    enough = asyncio.Event()

    async def one(email: str, body: dict) -> None:
        async with client(url, timeout=30) as c:
            try:
                results[email] = (await c.post(path, json=body)).status_code
            except httpx.TransportError:
                results[email] = None
        if sum(1 for s in results.values() if s is not None) >= after or len(results) == len(bodies):
            enough.set()

    tasks = [asyncio.create_task(one(e, body)) for e, body in bodies.items()]
    await enough.wait()
    kill.kill()
    await asyncio.gather(*tasks)
    return results


async def test_sigkill_during_a_signup_burst_loses_no_answered_signup(pair):
    a, b = pair.urls
    emails = [f"burst{i}@example.com" for i in range(36)]
    start = {e: {"email": e, "password": PASSWORD, "username": f"burst{i}"} for i, e in enumerate(emails)}

    # 1. Sign-ups started on A; A dies with a third of them answered.
    started = await _burst(a, "/api/v1/auth/verifications", start, pair.a, after=len(emails) // 3)
    assert {s for s in started.values()} <= {202, None}, started
    answered = {e for e, s in started.items() if s == 202}
    assert answered and len(answered) < len(emails), started
    pending = {
        r["email"]: r
        for r in await sql(
            pair.dsn,
            "SELECT p.email, (SELECT count(*) FROM verification_codes c WHERE c.email = p.email) AS codes,"
            " (SELECT count(*) FROM mail_outbox m WHERE m.to_addr = p.email) AS mails"
            " FROM pending_signups p WHERE p.email LIKE 'burst%'",
        )
    }
    assert answered <= set(pending), answered - set(pending)
    assert set(pending) <= set(emails)
    # Each sign-up is all there (pending row, code and mail) or not there at all.
    assert all(r["codes"] == 1 and r["mails"] == 1 for r in pending.values()), pending
    # The unanswered ones that did not commit are simply started again elsewhere, as a client would.
    async with client(b) as cb:
        for e in set(emails) - set(pending):
            assert (await cb.post("/api/v1/auth/verifications", json=start[e])).status_code == 202

    # 2. Codes verified on A; A dies again half-way.
    pair.a.start()
    codes = {e: await mailed_code(b, e) for e in emails}
    verify = {e: {"email": e, "token": codes[e]} for e in emails}
    verified = await _burst(a, "/api/v1/auth/verifications/verify", verify, pair.a, after=len(emails) // 3)
    assert {s for s in verified.values()} <= {200, None}, verified
    ok = {e for e, s in verified.items() if s == 200}
    assert ok and len(ok) < len(emails), verified
    users = {
        r["email"]: r
        for r in await sql(
            pair.dsn,
            "SELECT u.email, (SELECT count(*) FROM user_emails ue WHERE ue.user_id = u.id AND ue.is_primary"
            " AND ue.email = u.email) AS primaries,"
            " (SELECT count(*) FROM user_emails ue WHERE ue.user_id = u.id) AS addresses,"
            " (SELECT count(*) FROM sessions s WHERE s.user_id = u.id) AS sessions,"
            " (SELECT count(*) FROM pending_signups p WHERE p.email = u.email) AS pendings"
            " FROM users u WHERE u.email LIKE 'burst%'",
        )
    }
    assert ok <= set(users), ok - set(users)
    assert set(users) <= set(emails)
    for email, r in users.items():
        assert (r["primaries"], r["addresses"], r["sessions"], r["pendings"]) == (1, 1, 1, 0), (email, r)
    # Whatever did not commit can still be completed with the same code.
    async with client(b) as cb:
        for e in set(emails) - set(users):
            r = await cb.post("/api/v1/auth/verifications/verify", json=verify[e])
            assert r.status_code == 200, (e, r.text)
        for e in sorted(ok)[:5]:
            r = await cb.post("/api/v1/auth/sessions", json={"email": e, "password": PASSWORD})
            assert r.status_code == 200, r.text
    total = await sql(pair.dsn, "SELECT count(*) AS n FROM users WHERE email LIKE 'burst%'")
    assert total[0]["n"] == len(emails)
    pair.a.start()


async def _health(url: str) -> dict:
    async with client(url) as c:
        r = await c.get("/api/v1/infra/health")
        assert r.status_code == 200
        return r.json()


async def test_redis_outage_keeps_logins_limited_and_heals(pair):
    a, b = pair.urls
    await sign_up(a, "outage@example.com", username="outage")
    pair.redis.stop()
    try:
        health = await _health(a)
        assert health["status"] == "unhealthy"
        assert health["services"]["redis"]["status"] == "unhealthy"
        assert health["services"]["database"]["status"] == "healthy"
        assert isinstance(health["services"]["redis"]["latency_ms"], int | float)
        # Limits fall back to each process's memory: never unlimited, and no waiting on Redis.
        ip = fresh_ip()
        began = time.monotonic()
        statuses = await _failed_logins([a] * (LOGIN_LIMIT + 2), "outage@example.com", ip)
        assert statuses == [401] * LOGIN_LIMIT + [429, 429], statuses
        assert time.monotonic() - began < 10
        # Sign-ups and sign-ins keep working.
        await sign_up(b, "during-outage@example.com", username="during")
    finally:
        pair.redis.start()

    async def redis_healthy() -> bool:
        states = [(await _health(u))["services"]["redis"]["status"] for u in (a, b)]
        return states == ["healthy", "healthy"]

    await wait_until(redis_healthy, 15, "Redis healthy again")
    await asyncio.sleep(1.5)  # past redis_retry_seconds: the limiters try Redis again
    statuses = await _failed_logins([a, b, a, b, a, b], "outage@example.com", fresh_ip())
    assert statuses == [401] * LOGIN_LIMIT + [429, 429], statuses
