"""The account page's data download and account deletion at the HTTP level (in-process app):
CSRF, the confirmation page, the password check, the attachment. In Chromium:
test_account_leaving_browser.py."""

from __future__ import annotations

import json
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


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(make_settings(admin_token="leaving-http-admin-token"))


async def make_user(h: AppHarness, role: str = "user") -> dict:
    account = f"leave{uuid.uuid4().hex[:8]}"
    r = await h.client.post(
        "/api/admin/users",
        json={"account": account, "email": f"{account}@example.com", "password": PASSWORD, "role": role},
        headers={"X-Admin-Token": "leaving-http-admin-token"},
    )
    assert r.status_code == 201, r.text
    return r.json()["user"]


async def signed_in(h: AppHarness, user: dict, lang: str = "en") -> httpx.AsyncClient:
    client = h.new_client(**{"Accept-Language": lang})
    token = csrf_of((await client.get("/login")).text)
    r = await client.post(
        "/login", data={"csrf_token": token, "identifier": user["account"], "password": PASSWORD}
    )
    assert r.status_code == 303 and r.headers["location"] == "/account", r.text
    return client


async def test_the_pages_need_a_signed_in_user(h):
    r = await h.client.get("/account/delete")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Faccount%2Fdelete"


async def test_account_page_links_the_download_and_the_confirmation_step(h):
    client = await signed_in(h, await make_user(h))
    page = (await client.get("/account")).text
    assert 'action="/account/export"' in page and 'href="/account/delete"' in page
    # Deleting is never one click from the account page: only a link to the confirmation page.
    assert 'action="/account/delete"' not in page
    r = await client.get("/account/delete")
    assert r.status_code == 200 and 'action="/account/delete"' in r.text
    assert "30 days" in r.text and 'autocomplete="current-password"' in r.text


async def test_forms_without_a_csrf_token_are_refused(h):
    user = await make_user(h)
    client = await signed_in(h, user)
    for path, data in (("/account/delete", {"password": PASSWORD}), ("/account/export", {})):
        r = await client.post(path, data=data)
        assert r.status_code == 403, path
        r = await client.post(path, data={**data, "csrf_token": "forged"})
        assert r.status_code == 403, path
    assert (await client.get("/account")).status_code == 200  # still there, still signed in


async def test_a_wrong_or_missing_password_is_shown_at_the_field(h):
    client = await signed_in(h, await make_user(h))
    token = csrf_of((await client.get("/account/delete")).text)
    r = await client.post("/account/delete", data={"csrf_token": token, "password": "Wrong#pass2026"})
    assert r.status_code == 401
    assert re.search(r'id="f-password-error">The password is wrong\.<', r.text)
    r = await client.post("/account/delete", data={"csrf_token": token, "password": ""})
    assert r.status_code == 422 and 'id="f-password-error"' in r.text
    assert (await client.get("/account")).status_code == 200


async def test_the_download_is_a_json_attachment(h):
    user = await make_user(h)
    client = await signed_in(h, user)
    token = csrf_of((await client.get("/account")).text)
    r = await client.post("/account/export", data={"csrf_token": token})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert re.fullmatch(
        rf'attachment; filename="sproutgate-{user["account"]}-\d{{8}}\.json"',
        r.headers["content-disposition"],
    )
    assert r.headers["cache-control"] == "no-store"
    data = json.loads(r.text)
    assert data["profile"]["account"] == user["account"]
    assert [s["kind"] for s in data["sessions"] if s["current"]] == ["web"]
    assert "password_hash" not in r.text and "$argon2" not in r.text


async def test_deleting_signs_the_browser_out_and_ends_the_account(h):
    user = await make_user(h)
    client = await signed_in(h, user, lang="zh-CN")
    other = await signed_in(h, user)
    token = csrf_of((await client.get("/account/delete")).text)
    r = await client.post("/account/delete", data={"csrf_token": token, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/login?notice=account_deleted"
    assert re.search(r"sg_session=\"?\"?;.*Max-Age=0", r.headers["set-cookie"])
    r = await client.get("/login?notice=account_deleted")
    assert "你的账号已删除" in r.text
    # The other browser's session ended too.
    r = await other.get("/account")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    kinds = [m["kind"] for m in await h.mailbox(user["email"])]
    assert kinds[0] == "account_deleted"
    subject = (await h.mailbox(user["email"]))[0]["subject"]
    assert subject == "【SproutGate】你的账号已删除"
    # The console's audit log says who deleted it, in the reader's language, and nothing more.
    admin = await signed_in(h, await make_user(h, role="admin"))
    r = await admin.get("/admin/audit")
    row = re.search(r'<tr data-action="user.delete">(.*?)</tr>', r.text, re.S)
    assert row, r.text
    assert user["account"] in row.group(1) and "deleted by the user" in row.group(1)
    assert user["email"] not in row.group(1)
