"""Self-service (issue 14) over HTTP against a real ``sproutgate serve`` on SQLite and on
PostgreSQL: a user's sessions on both faces, the idle timeout in real time, and changing the
primary address with its bad inputs. (Moved clocks and the audit trail: tests/v1/test_v1_self_service.py.)"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gate_support import HAN, PASSWORD, assert_problem, bearer, error_fields, server_env, uniq

from support.harness import next_ip
from support.servers import PostgresServer, ServerProcess

pytestmark = pytest.mark.both_engines

IDLE_SECONDS = 6  # short enough to wait out; the last use is then recorded every second
RECENT_AUTH_SECONDS = 2


class _Servers:
    """One server per engine for this module, started (on an empty database, which it
    migrates) when a test first asks for that engine. The tests share it as they would share a
    deployment: each registers accounts of its own and speaks from an address of its own."""

    def __init__(self, request: pytest.FixtureRequest, root: Path) -> None:
        self._request = request
        self._root = root
        self._running: dict[str, ServerProcess] = {}
        self._databases: list[tuple[PostgresServer, str]] = []

    def get(self, engine: str) -> ServerProcess:
        if engine not in self._running:
            database_url = None
            if engine == "postgres":
                pg: PostgresServer = self._request.getfixturevalue("postgres_server")
                name = f"self_service_{os.getpid()}"
                database_url = pg.create_database(name)
                self._databases.append((pg, name))
            env = server_env(
                self._root / engine / "data",
                SPROUTGATE_DATABASE_URL=database_url,
                SPROUTGATE_SESSION_IDLE_TIMEOUT_SECONDS=str(IDLE_SECONDS),
                SPROUTGATE_RECENT_AUTH_SECONDS=str(RECENT_AUTH_SECONDS),
                SPROUTGATE_MAIL_POLL_SECONDS="0.2",
                # A sign-up code and then a change code go to one address within the minute here.
                SPROUTGATE_LIMIT_CODE_MAIL_PER_ADDRESS="100/minute",
            )
            proc = ServerProcess(env, log_dir=self._root / engine, name=f"self-service-{engine}")
            self._running[engine] = proc
            proc.start()
        return self._running[engine]

    def close(self) -> None:
        for proc in self._running.values():
            proc.close()
        for pg, name in self._databases:
            if pg.is_running:
                pg.drop_database(name)


@pytest.fixture(scope="module")
def servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Servers]:
    started = _Servers(request, tmp_path_factory.mktemp("self-service"))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def server(servers: _Servers, db_engine: str) -> ServerProcess:
    return servers.get(db_engine)


@pytest.fixture
async def client(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"X-Forwarded-For": next_ip()}, timeout=30, trust_env=False
    ) as c:
        yield c


async def mailbox(c: httpx.AsyncClient, to: str) -> list[dict[str, Any]]:
    r = await c.get(
        "/dev/mailbox", params={"to": to}, headers={"X-Forwarded-For": "127.0.0.1", "Host": "localhost"}
    )
    r.raise_for_status()
    return r.json()


async def code_for(c: httpx.AsyncClient, to: str, kind: str) -> str:
    for m in await mailbox(c, to):
        found = re.search(r"(?<!\d)(\d{6})(?!\d)", m["subject"])
        if m["kind"] == kind and found:
            return found.group(1)
    raise AssertionError(await mailbox(c, to))


async def register(c: httpx.AsyncClient) -> tuple[str, str]:
    account = uniq("ss")
    email = f"{account}@example.com"
    r = await c.post(
        "/api/auth/register",
        json={"account": account, "email": email, "password": PASSWORD, "username": account},
    )
    assert r.status_code == 200, r.text
    r = await c.post(
        "/api/auth/verify-email", json={"account": account, "code": await code_for(c, email, "signup_code")}
    )
    assert r.status_code == 200, r.text
    return account, email


async def v1_sign_in(c: httpx.AsyncClient, email: str, agent: str = "Tester/1.0") -> dict[str, Any]:
    r = await c.post(
        "/api/v1/auth/sessions", json={"email": email, "password": PASSWORD}, headers={"User-Agent": agent}
    )
    assert r.status_code == 200, r.text
    return r.json()


async def gate_sign_in(c: httpx.AsyncClient, account: str) -> str:
    r = await c.post("/api/auth/login", json={"account": account, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["token"]


async def works(c: httpx.AsyncClient, token: str) -> bool:
    return (await c.get("/api/v1/users/me", headers=bearer(token))).status_code == 200


async def test_sessions_on_both_faces_and_the_idle_timeout(client):
    c = client
    account, email = await register(c)
    phone = await v1_sign_in(c, email, "Phone/1.0")
    laptop = await v1_sign_in(c, email, "Laptop/2.0")
    gate = await gate_sign_in(c, account)
    _, other_email = await register(c)
    other = await v1_sign_in(c, other_email)

    r = await c.get("/api/v1/users/me/sessions", headers=bearer(laptop["access_token"]))
    assert r.status_code == 200, r.text
    listed = r.json()
    assert [x["user_agent"] for x in listed][1:] == ["Laptop/2.0", "Phone/1.0"]  # newest first (gate on top)
    assert [x["current"] for x in listed] == [False, True, False]
    assert all(x["ip"] == c.headers["X-Forwarded-For"] for x in listed)  # as resolved for rate limits
    r = await c.get("/api/auth/sessions", headers=bearer(gate))
    assert [x["id"] for x in r.json()["sessions"]] == [x["id"] for x in listed]
    phone_id, laptop_id = listed[2]["id"], listed[1]["id"]
    other_id = (await c.get("/api/v1/users/me/sessions", headers=bearer(other["access_token"]))).json()[0][
        "id"
    ]

    # Ending one: its access and refresh tokens stop at once; someone else's is a 404.
    r = await c.delete(f"/api/v1/users/me/sessions/{phone_id}", headers=bearer(laptop["access_token"]))
    assert r.status_code == 204
    assert not await works(c, phone["access_token"])
    r = await c.post("/api/v1/auth/sessions/refresh", json={"refresh_token": phone["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    body = assert_problem(
        await c.delete(f"/api/v1/users/me/sessions/{other_id}", headers=bearer(laptop["access_token"])),
        404,
        "session_not_found",
    )
    assert HAN.search(body["detail"])
    r = await c.delete(f"/api/auth/sessions/{other_id}", headers={**bearer(gate), "Accept-Language": "en"})
    assert (
        assert_problem(r, 404, "session_not_found")["detail"] == "No such session, or it has already ended."
    )
    assert_problem(await c.delete(f"/api/auth/sessions/{'9' * 80}", headers=bearer(gate)), 422)
    assert_problem(await c.get("/api/v1/users/me/sessions"), 401, "not_authenticated")
    assert await works(c, other["access_token"])

    r = await c.delete(f"/api/auth/sessions/{laptop_id}", headers=bearer(gate))
    assert r.status_code == 200 and r.json() == {"revoked": True}
    assert not await works(c, laptop["access_token"])

    # revoke-others from a fresh session: the gate token ends too.
    fresh = await v1_sign_in(c, email)
    r = await c.post("/api/v1/users/me/sessions/revoke-others", headers=bearer(fresh["access_token"]))
    assert r.status_code == 204
    assert not await works(c, gate)
    assert [
        x["current"]
        for x in (await c.get("/api/v1/users/me/sessions", headers=bearer(fresh["access_token"]))).json()
    ] == [True]

    # Idle: a session used now and then lives on, one left alone past the timeout is refused,
    # access and refresh alike, though neither token has expired.
    idle = await v1_sign_in(c, email)
    for _ in range(4):
        await asyncio.sleep(IDLE_SECONDS / 3)
        assert await works(c, fresh["access_token"])
    assert not await works(c, idle["access_token"])
    r = await c.post("/api/v1/auth/sessions/refresh", json={"refresh_token": idle["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    r = await c.post("/api/v1/auth/sessions/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert r.status_code == 200, r.text


async def test_changing_the_primary_address_on_both_faces(client):
    c = client
    account, old = await register(c)
    token = await gate_sign_in(c, account)
    new = f"{uniq('new')}@example.com"

    # Bad input first: 422 for malformed, 401 without a token.
    r = await c.post("/api/v1/users/me/email", json={"new_email": "nope"}, headers=bearer(token))
    assert_problem(r, 422, "invalid_input")
    assert error_fields(r) == {"new_email": "invalid_email"}
    r = await c.post("/api/auth/email/verify", json={"email": new, "code": "12345x"}, headers=bearer(token))
    assert_problem(r, 422)
    assert error_fields(r) == {"code": "invalid_code_format"}
    assert_problem(await c.post("/api/auth/email/change", json={"email": new}), 401, "not_authenticated")

    # Just signed in: no password needed.
    r = await c.post("/api/auth/email/change", json={"email": new.upper()}, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["sent"] is True
    code = await code_for(c, new, "primary_change_code")
    r = await c.post("/api/auth/email/verify", json={"email": new, "code": code}, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["verified"] is True and r.json()["user"]["email"] == new
    assert "primary_changed" in [m["kind"] for m in await mailbox(c, old)]
    r = await c.post("/api/auth/login", json={"account": old, "password": PASSWORD})
    assert_problem(r, 401, "invalid_credentials")  # the old address no longer signs in
    assert (await c.post("/api/auth/login", json={"account": new, "password": PASSWORD})).status_code == 200

    # Later than the recent-auth window: the password is required (403 without it or wrong).
    await asyncio.sleep(RECENT_AUTH_SECONDS + 0.5)
    _, someone = await register(c)
    r = await c.post("/api/v1/users/me/email", json={"new_email": someone}, headers=bearer(token))
    assert_problem(r, 403, "recent_auth_required")
    r = await c.post(
        "/api/v1/users/me/email",
        json={"new_email": someone, "password": "Wrong#pw2026"},
        headers=bearer(token),
    )
    assert_problem(r, 403, "wrong_current_password")
    # Another account's address: answered like any other, and it never completes.
    r = await c.post(
        "/api/v1/users/me/email", json={"new_email": someone, "password": PASSWORD}, headers=bearer(token)
    )
    assert r.status_code == 202 and r.json() == {"email": someone}
    assert [m["kind"] for m in await mailbox(c, someone)][0] == "primary_change_taken"
    r = await c.post(
        "/api/v1/users/me/email/verify", json={"new_email": someone, "token": "123456"}, headers=bearer(token)
    )
    assert_problem(r, 401, "invalid_code")
    assert (await c.get("/api/auth/me", headers=bearer(token))).json()["user"]["email"] == new
