"""Helpers for the account-takeover tests (issue 11): an in-process harness on either engine,
sign-ups and sign-ins on both API faces and the pages, and reading codes from the dev mailbox."""

from __future__ import annotations

import contextlib
import itertools
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from support.harness import AppHarness, bearer

OWNER_PASSWORD = "Owner#Garden2026"
OTHER_PASSWORD = "Other#Weeds2026"
NEW_PASSWORD = "Fresh#Meadow2026"
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

_names = itertools.count(1)


def uniq(prefix: str = "t") -> str:
    return f"{prefix}{next(_names)}x{secrets.token_hex(3)}"


def email_of(account: str) -> str:
    return f"{account.lower()}@example.com"


@pytest.fixture
async def h(make_harness: Any, make_settings: Any) -> AppHarness:
    """A harness that lets one address receive several code mails in a row (the tests send
    more than the one a minute an address may get by default)."""
    return await make_harness(
        make_settings(limit_code_mail_per_address="100/minute", admin_token="takeover-admin-token")
    )


def admin(h: AppHarness) -> dict[str, str]:
    return {"X-Admin-Token": h.services.admin_guard.token}


async def mails(h: AppHarness, to: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Messages to ``to`` (of ``kind``), newest first."""
    return [m for m in await h.mailbox(to) if kind is None or m["kind"] == kind]


async def newest_code(h: AppHarness, to: str, kind: str) -> str:
    found = await mails(h, to, kind)
    assert found, await h.mailbox(to)
    match = CODE.search(found[0]["subject"])
    assert match, found[0]
    return match.group(1)


async def create_user(h: AppHarness, **fields: Any) -> dict[str, Any]:
    """A user made through the admin API; returns the SproutGate user object."""
    fields.setdefault("account", uniq("u"))
    fields.setdefault("email", email_of(fields["account"]))
    fields.setdefault("password", OWNER_PASSWORD)
    r = await h.client.post("/api/admin/users", json=fields, headers=admin(h))
    assert r.status_code == 201, r.text
    return r.json()["user"]


async def gate_token(h: AppHarness, who: str, password: str = OWNER_PASSWORD) -> str:
    r = await h.client.post("/api/auth/login", json={"account": who, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["token"]


async def v1_tokens(h: AppHarness, email: str, password: str = OWNER_PASSWORD) -> dict[str, Any]:
    r = await h.client.post("/api/v1/auth/sessions", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


async def signs_in(h: AppHarness, who: str, password: str) -> bool:
    """Whether ``password`` opens a session for ``who`` on the SproutGate face (fresh client
    address each time, so failures never add up to a rate limit)."""
    async with h.new_client() as c:
        r = await c.post("/api/auth/login", json={"account": who, "password": password})
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


async def reset_code(h: AppHarness, email: str) -> str:
    """Ask for a reset code on the runtime face and read it from the mailbox."""
    r = await h.client.post("/api/v1/auth/password-reset", json={"email": email})
    assert r.status_code == 204, r.text
    return await newest_code(h, email, "reset_code")


async def reset_works(h: AppHarness, email: str, code: str, password: str = "Reset#Sprout2026") -> bool:
    """Whether ``code`` still sets a password for ``email`` (401 ``invalid_code`` if not)."""
    async with h.new_client() as c:
        r = await c.post(
            "/api/v1/auth/password-reset/confirm",
            json={"email": email, "token": code, "new_password": password},
        )
    assert r.status_code in (204, 401), r.text
    if r.status_code == 401:
        assert r.json()["code"] == "invalid_code", r.text
    return r.status_code == 204


# -- pages ------------------------------------------------------------------------------------
def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


async def form_token(client: httpx.AsyncClient, path: str) -> str:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


@contextlib.asynccontextmanager
async def page_client(
    h: AppHarness, who: str, password: str = OWNER_PASSWORD
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client signed in on the pages (closed on leaving the block)."""
    async with h.new_client() as client:
        token = await form_token(client, "/login")
        r = await client.post("/login", data={"csrf_token": token, "identifier": who, "password": password})
        assert r.status_code == 303 and r.headers["location"] == "/account", r.text
        yield client


__all__ = ["bearer"]
