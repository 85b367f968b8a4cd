"""The account page's sessions: it lists the active ones (the one session predicate) and
"sign out everywhere" ends every session of the user, of every kind, in one domain call."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

PASSWORD = "Sprout#2026pw"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LISTED = re.compile(r'data-session-id="([^"]+)"')


@pytest.fixture
async def h(make_harness, make_settings) -> Any:
    return await make_harness(make_settings(admin_token="sessions-test-admin-token"))


async def _user(h: Any, account: str) -> None:
    r = await h.client.post(
        "/api/admin/users",
        json={"account": account, "email": f"{account}@example.com", "password": PASSWORD},
        headers={"X-Admin-Token": h.services.admin_guard.token},
    )
    assert r.status_code == 201, r.text


async def _browser(h: Any, account: str) -> httpx.AsyncClient:
    client = h.new_client()
    token = CSRF.search((await client.get("/login")).text).group(1)
    r = await client.post("/login", data={"csrf_token": token, "identifier": account, "password": PASSWORD})
    assert r.status_code == 303, r.text
    return client


async def _api_session(h: Any, account: str) -> dict[str, Any]:
    r = await h.client.post(
        "/api/v1/auth/sessions", json={"email": f"{account}@example.com", "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _works(h: Any, session: dict[str, Any]) -> bool:
    r = await h.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {session['access_token']}"})
    return r.status_code == 200


async def test_sign_out_everywhere_ends_every_session_of_the_user_and_no_one_elses(h):
    await _user(h, "everywhere")
    await _user(h, "bystander")
    browser = await _browser(h, "everywhere")
    mine = [await _api_session(h, "everywhere") for _ in range(2)]
    r = await h.client.post("/api/auth/login", json={"account": "everywhere", "password": PASSWORD})
    gate_token = r.json()["token"]
    theirs = await _api_session(h, "bystander")

    page = await browser.get("/account")
    assert len(LISTED.findall(page.text)) == 4  # this browser, two runtime sessions, the gate one
    r = await browser.post(
        "/account/sessions/revoke-all", data={"csrf_token": CSRF.search(page.text).group(1)}
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/login")

    assert not any([await _works(h, s) for s in mine])
    r = await h.client.post("/api/auth/verify", json={"token": gate_token})
    assert r.json()["valid"] is False
    r = await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": mine[0]["refresh_token"]})
    assert r.status_code == 401
    assert (await browser.get("/account")).status_code == 303  # the page's own session too
    assert await _works(h, theirs)


async def test_the_account_page_lists_only_active_sessions(h):
    await _user(h, "lister")
    browser = await _browser(h, "lister")
    ended, still_open = await _api_session(h, "lister"), await _api_session(h, "lister")
    r = await h.client.request(
        "DELETE", "/api/v1/auth/sessions", json={"refresh_token": ended["refresh_token"]}
    )
    assert r.status_code == 204
    page = await browser.get("/account")
    assert len(LISTED.findall(page.text)) == 2  # this browser and the one still open
    assert await _works(h, still_open)
