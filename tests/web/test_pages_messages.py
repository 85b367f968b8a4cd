"""What people read (issue 15, in-process app): validation messages that name each field's own
limits as one sentence in both languages, forms that show every problem at once and keep what
was typed, the styled 404 page for browsers, plurals, the audit log in the reader's language,
the chat without a model, and the API viewers' pages."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx
import pytest

from sproutgate.domain.accounts.rules import ACCOUNT_MAX_LENGTH, ACCOUNT_MIN_LENGTH
from sproutgate.domain.profiles.rules import RUNTIME_PROFILE, SPROUTGATE_PROFILE

PASSWORD = "Sprout#2026pw"
EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
_n = itertools.count(1)
AppHarness = Any


def csrf_of(html: str) -> str:
    found = TOKEN_RE.search(html)
    assert found, html[:500]
    return found.group(1)


def field_error(html: str, name: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="f-{name}-error">([^<]*)</p>', html)
    return found.group(1) if found else None


def value_of(html: str, name: str) -> str | None:
    found = re.search(rf'<input id="f-{name}" name="{name}"[^>]*?value="([^"]*)"', html)
    return found.group(1) if found else None


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(make_settings(admin_token="messages-test-admin-token", code_ttl_seconds=60))


async def make_user(h: AppHarness, role: str = "user") -> dict:
    account = f"msg{next(_n)}"
    body = {"account": account, "email": f"{account}@example.com", "password": PASSWORD, "role": role}
    r = await h.client.post(
        "/api/admin/users", json=body, headers={"X-Admin-Token": h.services.admin_guard.token}
    )
    assert r.status_code == 201, r.text
    return r.json()["user"]


async def signed_in(h: AppHarness, user: dict, **headers: str) -> httpx.AsyncClient:
    client = h.new_client(**headers)
    token = csrf_of((await client.get("/login")).text)
    r = await client.post(
        "/login", data={"csrf_token": token, "identifier": user["account"], "password": PASSWORD}
    )
    assert r.status_code == 303, r.text
    return client


# -- the API's messages -----------------------------------------------------------------------
async def test_a_short_username_is_told_both_ends_of_its_own_range(h):
    r = await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "short@example.com", "password": PASSWORD, "username": "ab"},
        headers=EN,
    )
    body = r.json()
    assert r.status_code == 422, body
    [error] = body["errors"]
    low, high = RUNTIME_PROFILE.username_min, RUNTIME_PROFILE.username_max
    assert error == {
        "field": "username",
        "code": "invalid_length",
        "message": f"must be {low} to {high} characters long",
    }
    assert body["detail"] == f"The request is invalid: username must be {low} to {high} characters long."

    r = await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "short@example.com", "password": PASSWORD, "username": "ab"},
        headers=ZH,
    )
    assert r.json()["detail"] == f"请求参数无效:username 长度应为 {low}–{high} 个字符。"


async def test_every_field_names_its_own_limits_never_the_passwords(h):
    """A username the domain refused used to be told the password's limits ("length must be
    6-128"): every field got them as defaults."""
    r = await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "not-an-address", "password": "x", "username": "   "},
        headers=EN,
    )
    body = r.json()
    messages = {e["field"]: e["message"] for e in body["errors"]}
    policy, rules = h.services.accounts.policy, RUNTIME_PROFILE
    assert messages == {
        "email": "is not a valid email address",
        "password": f"must be at least {policy.min_length} characters long",
        "username": f"must be {rules.username_min} to {rules.username_max} characters long",
    }
    detail = body["detail"]
    assert ".:" not in detail and detail.count(".") == 1 and detail.endswith(".")


async def test_the_sproutgate_face_names_its_own_profile_limits(h):
    user = await make_user(h)
    login = await h.client.post("/api/auth/login", json={"account": user["account"], "password": PASSWORD})
    auth = {"Authorization": f"Bearer {login.json()['token']}", **EN}
    r = await h.client.put("/api/auth/profile", json={"username": "x" * 31, "bio": "b" * 2001}, headers=auth)
    body = r.json()
    assert r.status_code == 422, body
    messages = {e["field"]: (e["code"], e["message"]) for e in body["errors"]}
    low, high = SPROUTGATE_PROFILE.username_min, SPROUTGATE_PROFILE.username_max
    assert messages["username"] == ("too_long", f"must be {low} to {high} characters long")
    assert messages["bio"] == ("too_long", f"must be at most {SPROUTGATE_PROFILE.bio_max} characters long")


async def test_an_account_name_is_told_the_account_rule(h):
    r = await h.client.post(
        "/api/admin/users",
        json={"account": "x", "email": "acct@example.com", "password": PASSWORD},
        headers={"X-Admin-Token": h.services.admin_guard.token, **EN},
    )
    [error] = r.json()["errors"]
    assert error["code"] == "invalid_account"
    assert f"must be {ACCOUNT_MIN_LENGTH} to {ACCOUNT_MAX_LENGTH} characters long" in error["message"]


# -- forms ------------------------------------------------------------------------------------
async def test_the_sign_up_form_shows_every_problem_at_once_and_keeps_what_was_typed(h):
    client = h.new_client(**EN)
    token = csrf_of((await client.get("/register")).text)
    r = await client.post(
        "/register",
        data={"csrf_token": token, "email": "bad-address", "username": "", "account": "x", "password": "123"},
    )
    assert r.status_code == 422
    policy = h.services.accounts.policy
    assert field_error(r.text, "email") == "Email is not a valid email address."
    assert field_error(r.text, "username") == "Display name is required."
    assert field_error(r.text, "account") == (
        f"Account name must be {ACCOUNT_MIN_LENGTH} to {ACCOUNT_MAX_LENGTH} characters long, "
        "using letters, digits, underscores, hyphens and dots."
    )
    assert (
        field_error(r.text, "password") == f"Password must be at least {policy.min_length} characters long."
    )
    assert value_of(r.text, "email") == "bad-address" and value_of(r.text, "account") == "x"
    assert 'value="123"' not in r.text  # passwords are never sent back

    client = h.new_client(**ZH)
    token = csrf_of((await client.get("/register")).text)
    r = await client.post(
        "/register", data={"csrf_token": token, "email": "bad", "username": "小芽", "password": PASSWORD}
    )
    assert field_error(r.text, "email") == "邮箱格式无效。"


async def test_the_reset_form_keeps_the_code_and_names_every_problem(h):
    client = h.new_client(**EN)
    token = csrf_of((await client.get("/forgot-password/confirm?email=a@example.com")).text)
    r = await client.post(
        "/forgot-password/confirm",
        data={"csrf_token": token, "email": "a@example.com", "code": "12ab", "new_password": "x"},
    )
    assert r.status_code == 422
    assert field_error(r.text, "code") == "6-digit code must be 6 digits."
    assert field_error(r.text, "new_password").startswith("New password must be at least")
    assert value_of(r.text, "code") == "12ab" and value_of(r.text, "email") == "a@example.com"


async def test_a_code_lasts_one_minute_not_one_minutes(h):
    r = await h.new_client(**EN).get("/register/verify", params={"email": "a@example.com"})
    assert "It is valid for 1 minute." in r.text
    body = {"email": "minute@example.com", "password": PASSWORD, "username": "minute"}
    assert (await h.new_client(**EN).post("/api/v1/auth/verifications", json=body)).status_code == 202
    [mail] = await h.mailbox("minute@example.com")
    assert "It is valid for 1 minute.\n" in mail["text"]


# -- pages ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "heading"), [(ZH, "页面不存在"), (EN, "Page not found")], ids=["zh-CN", "en"]
)
async def test_a_browser_gets_the_not_found_page_in_its_language(h, headers, heading):
    r = await h.new_client(**headers).get("/no/such/page", headers=HTML)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert f"<h1>{heading}</h1>" in r.text and "content-security-policy" in r.headers
    assert r.headers["content-language"] == headers["Accept-Language"]


async def test_a_forms_address_typed_into_the_address_bar_is_no_page_either(h):
    r = await h.new_client(**EN).get("/logout", headers=HTML)
    assert r.status_code == 405 and r.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in r.text and "POST" in r.headers["allow"]


@pytest.mark.parametrize(
    ("path", "accept"),
    [("/api/no-such", HTML), ("/api/v1/no-such", HTML), ("/no/such/page", {"Accept": "application/json"})],
)
async def test_api_paths_and_api_clients_keep_problem_json(h, path, accept):
    r = await h.new_client(**EN).get(path, headers=accept)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "route_not_found"


async def test_the_audit_log_reads_in_the_readers_language(h):
    user = await make_user(h)
    admin_token = {"X-Admin-Token": h.services.admin_guard.token}
    r = await h.client.put(f"/api/admin/users/{user['account']}", json={"level": 3}, headers=admin_token)
    assert r.status_code == 200, r.text
    admin = await make_user(h, role="admin")
    for headers, action, field in ((ZH, "修改用户", "等级 → 3"), (EN, "Changed a user", "level → 3")):
        client = await signed_in(h, admin, **headers)
        r = await client.get("/admin/audit")
        row = re.search(r'<tr data-action="user.update">(.*?)</tr>', r.text, re.S)
        assert row, r.text
        assert action in row.group(1) and field in row.group(1) and "user.update</" not in row.group(1)
        users = await client.get("/admin", params={"q": user["account"]})
        assert ("共 1 个用户" if headers is ZH else ">1 user<") in users.text


async def test_without_a_model_users_see_no_assistant_and_admins_see_how_to_add_one(h):
    user, admin = await make_user(h), await make_user(h, role="admin")
    client = await signed_in(h, user, **EN)
    account = await client.get("/account")
    assert 'href="/chat"' not in account.text
    r = await client.get("/chat")
    assert r.status_code == 200 and "The assistant is not available on this server." in r.text
    assert "chat.js" not in r.text and 'id="chat-input"' not in r.text
    assert "SPROUTGATE_AGENT_MODEL" not in r.text  # configuration is the operators' business

    client = await signed_in(h, admin, **EN)
    assert 'href="/chat"' in (await client.get("/account")).text
    r = await client.get("/chat")
    assert "no model is configured" in r.text and "SPROUTGATE_AGENT_MODEL" in r.text
    assert 'id="chat-input"' not in r.text


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_api_viewers_name_only_this_origin(h, path):
    r = await h.client.get(path)
    assert r.status_code == 200
    assert re.search(r'(src|href)="(https?:)?//', r.text) is None, r.text
    assert re.search(r"<script(?![^>]*\bsrc=)", r.text) is None, "inline script"
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    for asset in re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', r.text):
        served = await h.client.get(asset)
        assert served.status_code == 200 and len(served.content) > 10_000, asset
