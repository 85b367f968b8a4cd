"""Helpers and fixtures for the SproutGate API (/api/auth, /api/admin) tests.

``face`` runs a test twice: against the ASGI app in-process (``AsgiTarget``, with the harness
for time travel and direct service access) and against a real ``python -m sproutgate serve``
process (``ServerTarget``, one per test session, sharing its database: tests use unique names).
Import the fixtures into a test module with ``from gate_support import face, gate_server``."""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.harness import next_ip
from support.servers import ServerProcess

PASSWORD = "Sprout#Garden2026"
NEW_PASSWORD = "Fresh#Meadow2026"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code"}
HAN = re.compile(r"[\u4e00-\u9fff]")
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sproutgate-sample"
SAMPLE_PASSWORDS = {
    "demo": "Demo#pass2026",
    "bcryptb": "Bee#pass2026",
    "alice": "Alice#pass2026",
    "bob.smith": "Bob#pass2026",
    "carol": "Carol#pass2026",
    "dave_disabled": "Dave#pass2026",
}
USER_FIELDS = {
    "account",
    "username",
    "email",
    "level",
    "sproutCoins",
    "secondaryEmails",
    "phone",
    "avatarUrl",
    "bio",
    "locale",  # an addition (issue 14): the document's user object is open ("...")
    "createdAt",
    "updatedAt",
}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

_names = itertools.count(1)


def uniq(prefix: str = "u") -> str:
    """An account name no other test (or earlier run on the shared server) uses."""
    return f"{prefix}{next(_names)}x{secrets.token_hex(3)}"


def email_of(account: str) -> str:
    return f"{account.lower()}@example.com"


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """An RFC 7807 problem with this status (and stable code)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == "application/problem+json", r.headers
    body = r.json()
    assert PROBLEM_KEYS <= body.keys(), body
    assert body["status"] == status and body["instance"] == r.request.url.path
    assert body["request_id"] == r.headers["x-request-id"]  # one id: header, body, log lines
    if code is not None:
        assert body["code"] == code, body
    return body


def error_fields(r: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["code"] for e in r.json().get("errors") or []}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class _Target:
    """What a gate test needs from the system under test, whichever way it runs."""

    client: httpx.AsyncClient
    harness: Any = None  # the AppHarness, in-process only

    def new_client(self, ip: str | None = None, **headers: str) -> httpx.AsyncClient:
        raise NotImplementedError

    @property
    def admin_token(self) -> str:
        raise NotImplementedError

    async def mailbox(self, to: str | None = None) -> list[dict[str, Any]]:
        # The mailbox answers local clients under a loopback Host name only (api/dev.py): read it as one.
        r = await self.client.get(
            "/dev/mailbox",
            params={"to": to} if to else None,
            headers={"X-Forwarded-For": "127.0.0.1", "Host": "localhost"},
        )
        r.raise_for_status()
        return r.json()

    async def last_code(self, to: str, kind: str | None = None) -> str:
        for m in await self.mailbox(to):
            found = re.search(r"(?<!\d)(\d{6})(?!\d)", m["subject"])
            if found and (kind is None or m["kind"] == kind):
                return found.group(1)
        raise AssertionError(f"no code mailed to {to}: {await self.mailbox(to)}")

    async def aclose(self) -> None:
        pass


class AsgiTarget(_Target):
    def __init__(self, harness: Any) -> None:
        self.harness = harness
        self.client = harness.client

    def new_client(self, ip: str | None = None, **headers: str) -> httpx.AsyncClient:
        return self.harness.new_client(ip, **headers)

    @property
    def admin_token(self) -> str:
        return self.harness.services.admin_guard.token


class ServerTarget(_Target):
    def __init__(self, server: ServerProcess, data_dir: Path) -> None:
        self.server = server
        self.data_dir = data_dir
        self._clients: list[httpx.AsyncClient] = []
        self.client = self.new_client()

    def new_client(self, ip: str | None = None, **headers: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            base_url=self.server.base_url,
            headers={"X-Forwarded-For": ip or next_ip(), **headers},
            trust_env=False,
            timeout=30,
        )
        self._clients.append(client)
        return client

    @property
    def admin_token(self) -> str:
        return json.loads((self.data_dir / "config" / "admin.json").read_text())["token"]

    async def aclose(self) -> None:
        for c in self._clients:
            await c.aclose()


def server_env(data_dir: Path, **extra: str | None) -> dict[str, str | None]:
    """Environment for a real server: its own data dir, cheap argon2, loopback as the proxy;
    any SPROUTGATE_* of the outer environment removed so that only these count."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SPROUTGATE_")}
    env.update(
        {
            "SPROUTGATE_DATA_DIR": str(data_dir),
            "SPROUTGATE_TRUSTED_PROXIES": "127.0.0.1",
            "SPROUTGATE_ARGON2_TIME_COST": "1",
            "SPROUTGATE_ARGON2_MEMORY_KIB": "1024",
        }
    )
    env.update(extra)
    return env


_shared_server: dict[str, tuple[ServerProcess, Path]] = {}


@pytest.fixture(scope="session")
def gate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """One real server for all the session's gate tests. Each test module imports this fixture,
    which makes one fixture per module: the server itself is shared through this module."""
    if "gate" not in _shared_server:
        root = tmp_path_factory.mktemp("gate-server")
        data_dir = root / "data"
        server = ServerProcess(env=server_env(data_dir), log_dir=root, name="gate").start()
        _shared_server["gate"] = (server, data_dir)
    yield _shared_server["gate"]
    entry = _shared_server.pop("gate", None)
    if entry is not None:
        entry[0].close()


@pytest.fixture(params=["asgi", "server"])
async def face(
    request: pytest.FixtureRequest, make_harness: Any, make_settings: Any
) -> AsyncIterator[_Target]:
    if request.param == "asgi":
        yield AsgiTarget(await make_harness(make_settings()))
        return
    # The shared server keeps its own SQLite database: no test database is made for this run
    # (and tests/conftest.py runs it once, not once per engine).
    server, data_dir = request.getfixturevalue("gate_server")
    target = ServerTarget(server, data_dir)
    try:
        yield target
    finally:
        await target.aclose()


# -- flows ----------------------------------------------------------------------------------
async def register(
    t: _Target,
    account: str | None = None,
    email: str | None = None,
    password: str = PASSWORD,
    username: str | None = None,
) -> dict[str, Any]:
    """Register through /api/auth/register and /api/auth/verify-email; returns the user object."""
    account = account or uniq()
    email = email or email_of(account)
    r = await t.client.post(
        "/api/auth/register",
        json={"account": account, "password": password, "username": username or account, "email": email},
    )
    assert r.status_code == 200, r.text
    code = await t.last_code(email, "signup_code")
    r = await t.client.post("/api/auth/verify-email", json={"account": account, "code": code})
    assert r.status_code == 200, r.text
    assert r.json()["created"] is True
    return r.json()["user"]


async def gate_login(
    t: _Target, account: str, password: str = PASSWORD, client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    r = await (client or t.client).post("/api/auth/login", json={"account": account, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


async def v1_signup(
    t: _Target, email: str, password: str = PASSWORD, username: str = "sprout"
) -> dict[str, Any]:
    r = await t.client.post(
        "/api/v1/auth/verifications", json={"email": email, "password": password, "username": username}
    )
    assert r.status_code == 202, r.text
    code = await t.last_code(email, "signup_code")
    r = await t.client.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
    assert r.status_code == 200, r.text
    return r.json()


async def admin_create(t: _Target, **fields: Any) -> dict[str, Any]:
    fields.setdefault("account", uniq("adm"))
    fields.setdefault("email", email_of(fields["account"]))
    fields.setdefault("password", PASSWORD)
    r = await t.client.post("/api/admin/users", json=fields, headers={"X-Admin-Token": t.admin_token})
    assert r.status_code == 201, r.text
    return r.json()["user"]


async def valid(t: _Target, token: str) -> bool:
    r = await t.client.post("/api/auth/verify", json={"token": token})
    assert r.status_code == 200, r.text
    return r.json()["valid"]


@pytest.fixture
async def asgi_face(make_harness: Any, settings: Any) -> AsgiTarget:
    """In-process only: for tests that move the clock or look inside the services."""
    return AsgiTarget(await make_harness(settings))
