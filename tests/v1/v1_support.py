"""Helpers shared by the runtime API (/api/v1) tests."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jwt

from sproutgate.domain.admin.service import UserFields
from sproutgate.storage.models import User

PASSWORD = "Sprout#2026pw"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}
HAN = re.compile(r"[\u4e00-\u9fff]")
CODE_IN_TEXT = re.compile(r"(?<!\d)\d{6}(?!\d)")


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 7807 problem with the given status (and stable code)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == "application/problem+json", r.headers
    body = r.json()
    assert PROBLEM_KEYS <= body.keys(), body
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == r.request.url.path
    assert body["request_id"] == r.headers["x-request-id"]  # one id: header, body, log lines
    if code is not None:
        assert body.get("code") == code, body
    return body


def error_fields(r: httpx.Response) -> set[str]:
    return {e["field"] for e in r.json().get("errors") or []}


async def create_user(
    h: Any, email: str, username: str = "someone", password: str = PASSWORD, account: str | None = None
) -> User:
    """A registered user, made through the admin service (faster than the mailed-code flow)."""
    account = account or re.sub(r"[^a-z0-9]", "", email.partition("@")[0].lower())[:24].ljust(3, "x")
    view = await h.services.admin.create_user(
        UserFields(account=account, email=email, password=password, username=username), actor="test"
    )
    return view.user


async def login(
    h: Any, email: str, password: str = PASSWORD, client: httpx.AsyncClient | None = None
) -> dict:
    r = await (client or h.client).post("/api/v1/auth/sessions", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


async def request_code(h: Any, email: str, password: str = PASSWORD, username: str = "sprout") -> str:
    r = await h.client.post(
        "/api/v1/auth/verifications", json={"email": email, "password": password, "username": username}
    )
    assert r.status_code == 202, r.text
    return await h.last_code(email)


async def reset_code(h: Any, email: str) -> str:
    r = await h.client.post("/api/v1/auth/password-reset", json={"email": email})
    assert r.status_code == 204, r.text
    messages = [m for m in await h.mailbox(email) if m["kind"] == "reset_code"]
    assert messages, await h.mailbox(email)
    found = CODE_IN_TEXT.search(messages[0]["subject"])
    assert found, messages[0]
    return found.group(0)


def unverified_claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"
