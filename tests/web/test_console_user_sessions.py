"""The admin console shows a user's active sessions and ends one (issue 14): its tokens stop at
once, the audit trail names who ended which session. In-process app, both engines."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from support.harness import bearer

pytestmark = pytest.mark.both_engines

PASSWORD = "Sprout#2026pw"
EN = {"Accept-Language": "en"}
LISTED = re.compile(r'data-session-id="([^"]+)"')


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture
async def h(make_harness, make_settings) -> Any:
    return await make_harness(make_settings(admin_token="console-user-sessions-admin-token"))


async def console(h: Any) -> httpx.AsyncClient:
    client = h.new_client(**EN)
    page = await client.get("/admin")
    r = await client.post(
        "/admin/login", data={"csrf_token": csrf_of(page.text), "token": h.services.admin_guard.token}
    )
    assert r.status_code == 303, r.text
    return client


async def test_the_console_lists_and_ends_a_users_session(h):
    r = await h.client.post(
        "/api/admin/users",
        json={"account": "watched", "email": "watched@example.com", "password": PASSWORD},
        headers={"X-Admin-Token": h.services.admin_guard.token},
    )
    assert r.status_code == 201, r.text
    sessions = []
    for agent in ("Phone/1.0", "Laptop/2.0"):
        r = await h.client.post(
            "/api/v1/auth/sessions",
            json={"email": "watched@example.com", "password": PASSWORD},
            headers={"User-Agent": agent},
        )
        sessions.append(r.json())
    admin = await console(h)

    page = await admin.get("/admin/users/watched")
    assert page.status_code == 200
    listed = LISTED.findall(page.text)
    assert len(listed) == 2 and "Active sessions" in page.text
    r = await admin.post(
        f"/admin/users/watched/sessions/{listed[1]}/end", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 303 and "notice=session_ended" in r.headers["location"]
    # The older one (the phone's) ended: its access and refresh tokens stop at once.
    me = await h.client.get("/api/v1/users/me", headers=bearer(sessions[0]["access_token"]))
    assert me.status_code == 401
    r = await h.client.post(
        "/api/v1/auth/sessions/refresh", json={"refresh_token": sessions[0]["refresh_token"]}
    )
    assert r.status_code == 401
    assert (
        await h.client.get("/api/v1/users/me", headers=bearer(sessions[1]["access_token"]))
    ).status_code == 200
    page = await admin.get("/admin/users/watched?notice=session_ended")
    assert LISTED.findall(page.text) == [listed[0]] and "The session was ended." in page.text

    # Ending it again, or an unknown one: said so, nothing else happens.
    r = await admin.post(
        f"/admin/users/watched/sessions/{listed[1]}/end", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 303 and "notice=session_not_found" in r.headers["location"]
    # Another user's session through this user's page: not found either.
    r = await admin.post(
        f"/admin/users/nobody/sessions/{listed[0]}/end", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 404
    assert (
        await h.client.get("/api/v1/users/me", headers=bearer(sessions[1]["access_token"]))
    ).status_code == 200

    audit = await admin.get("/admin/audit")
    assert "Ended a user&#39;s session" in audit.text or "Ended a user's session" in audit.text
    assert listed[1] in audit.text

    # Without the console: the sign-in page, nothing ended.
    stranger = h.new_client(**EN)
    r = await stranger.post(f"/admin/users/watched/sessions/{listed[0]}/end", data={})
    assert "session_ended" not in r.headers.get("location", "")
    assert (
        await h.client.get("/api/v1/users/me", headers=bearer(sessions[1]["access_token"]))
    ).status_code == 200
