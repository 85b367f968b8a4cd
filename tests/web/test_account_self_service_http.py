"""The account page's primary-address change and session forms at the HTTP level (in-process
app): empty, malformed and same-address input, re-authentication after the recent-sign-in
window, CSRF, a session that is not the caller's. The happy paths in Chromium:
test_account_self_service_browser.py."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

PASSWORD = "Sprout#2026pw"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
AppHarness = Any  # tests/conftest.py's harness

pytestmark = pytest.mark.both_engines


def csrf_of(html: str) -> str:
    found = TOKEN_RE.search(html)
    assert found, html[:500]
    return found.group(1)


def field_error(html: str, field: str) -> str | None:
    found = re.search(rf'id="f-{field}-error"[^>]*>(.*?)</', html, re.S)
    return re.sub(r"<[^>]+>|\s+", " ", found.group(1)).strip() if found else None


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(make_settings(admin_token="self-service-http-admin-token"))


async def signed_in(h: AppHarness, lang: str = "en") -> tuple[httpx.AsyncClient, dict[str, Any]]:
    account = f"ss{uuid.uuid4().hex[:8]}"
    r = await h.client.post(
        "/api/admin/users",
        json={"account": account, "email": f"{account}@example.com", "password": PASSWORD},
        headers={"X-Admin-Token": "self-service-http-admin-token"},
    )
    assert r.status_code == 201, r.text
    client = h.new_client(**{"Accept-Language": lang})
    token = csrf_of((await client.get("/login")).text)
    r = await client.post("/login", data={"csrf_token": token, "identifier": account, "password": PASSWORD})
    assert r.status_code == 303, r.text
    return client, {"account": account, "email": f"{account}@example.com"}


async def post_change(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    page = await client.get("/account")
    return await client.post("/account/primary-email", data={"csrf_token": csrf_of(page.text), **fields})


async def test_the_change_form_refuses_bad_input_next_to_its_fields(h):
    client, user = await signed_in(h)
    r = await post_change(client, change_email="")
    assert r.status_code == 422 and field_error(r.text, "change_email") == "New primary address is required."
    r = await post_change(client, change_email="not an address")
    assert r.status_code == 422 and "valid email" in (field_error(r.text, "change_email") or "")
    r = await post_change(client, change_email=user["email"].upper())
    assert r.status_code == 422 and "already your primary address" in (
        field_error(r.text, "change_email") or ""
    )
    # Without the CSRF token nothing is sent.
    r = await client.post("/account/primary-email", data={"change_email": "x@example.com"})
    assert r.status_code == 403
    assert await h.mailbox("x@example.com") == []


async def test_after_the_recent_sign_in_window_the_form_needs_the_password(h):
    client, _ = await signed_in(h, lang="zh-CN")
    h.clock.advance(h.services.settings.recent_auth_seconds + 1)
    r = await post_change(client, change_email="later@example.com")
    assert r.status_code == 403 and field_error(r.text, "change_email_password")
    r = await post_change(client, change_email="later@example.com", change_email_password="Wrong#pw2026")
    assert r.status_code == 403 and field_error(r.text, "change_email_password")
    assert await h.mailbox("later@example.com") == []
    r = await post_change(client, change_email="later@example.com", change_email_password=PASSWORD)
    assert r.status_code == 303 and "change_email=later%40example.com" in r.headers["location"]
    page = await client.get(r.headers["location"])
    assert 'name="change_code"' in page.text and "later@example.com" in page.text
    r = await client.post(
        "/account/primary-email/verify",
        data={"csrf_token": csrf_of(page.text), "email": "later@example.com", "change_code": "12"},
    )
    assert r.status_code == 422 and field_error(r.text, "change_code")


async def test_ending_a_session_that_is_not_mine_changes_nothing(h):
    mine, _ = await signed_in(h)
    theirs, _ = await signed_in(h)
    their_page = await theirs.get("/account")
    [their_id] = re.findall(r'data-session-id="([^"]+)"', their_page.text)
    page = await mine.get("/account")
    r = await mine.post(f"/account/sessions/{their_id}/revoke", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and "notice=session_not_found" in r.headers["location"]
    assert (await theirs.get("/account")).status_code == 200  # still signed in
    notice = await mine.get(r.headers["location"])
    assert "That session has already ended." in notice.text
