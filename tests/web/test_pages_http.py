"""The pages' security rules at the HTTP level (in-process app, no browser): CSRF, origin checks,
cookie flags, the Content-Security-Policy, redirects, the cookie hook for same-origin API calls,
the admin console cookie and the dev mailbox page."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx
import pytest

from sproutgate.infra.admin_token import rotate
from sproutgate.web.rendering import render_markdown

PASSWORD = "Sprout#2026pw"
_accounts = itertools.count(1)
AppHarness = Any  # tests/conftest.py's harness
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = TOKEN_RE.search(html)
    assert found, html[:500]
    return found.group(1)


async def form_token(client: httpx.AsyncClient, path: str) -> str:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


async def make_user(h: AppHarness, role: str = "user", **fields) -> dict:
    account = f"page{next(_accounts)}"
    r = await h.client.post(
        "/api/admin/users",
        json={
            "account": account,
            "email": f"{account}@example.com",
            "password": PASSWORD,
            "role": role,
            **fields,
        },
        headers={"X-Admin-Token": h.services.admin_guard.token},
    )
    assert r.status_code == 201, r.text
    return r.json()["user"]


async def signed_in_client(h: AppHarness, user: dict) -> httpx.AsyncClient:
    client = h.new_client()
    token = await form_token(client, "/login")
    r = await client.post(
        "/login", data={"csrf_token": token, "identifier": user["account"], "password": PASSWORD}
    )
    assert r.status_code == 303 and r.headers["location"] == "/account", r.text
    return client


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(make_settings(admin_token="http-test-admin-token"))


async def test_pages_send_a_strict_csp_and_carry_no_inline_code(h):
    for path in ("/login", "/register", "/register/verify?email=a@example.com", "/forgot-password", "/admin"):
        r = await h.client.get(path)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe" not in csp
        assert r.headers["cache-control"] == "no-store"
        assert re.search(r"<script(?![^>]*\bsrc=)", r.text) is None, "inline script"
        assert re.search(r"<[^>]+\s(style|on[a-z]+)=", r.text) is None, "inline style or handler"
        assert re.search(r"<html lang=\"(zh-CN|en)\">", r.text)
        # every visible input has a label
        for field_id in re.findall(r'<input id="([^"]+)"', r.text):
            assert f'for="{field_id}"' in r.text, field_id


async def test_a_form_without_a_valid_csrf_token_is_refused(h):
    user = await make_user(h)
    client = h.new_client()
    await client.get("/login")
    r = await client.post("/login", data={"identifier": user["account"], "password": PASSWORD})
    assert r.status_code == 403 and "sg_session" not in r.headers.get("set-cookie", "")
    r = await client.post(
        "/login", data={"csrf_token": "forged", "identifier": user["account"], "password": PASSWORD}
    )
    assert r.status_code == 403

    # A token minted for another browser is useless with this browser's cookie.
    other = h.new_client()
    stolen = await form_token(other, "/login")
    r = await client.post(
        "/login", data={"csrf_token": stolen, "identifier": user["account"], "password": PASSWORD}
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}],
)
async def test_a_cross_site_post_is_refused_even_with_a_token(h, headers):
    user = await make_user(h)
    client = h.new_client()
    token = await form_token(client, "/login")
    r = await client.post(
        "/login",
        data={"csrf_token": token, "identifier": user["account"], "password": PASSWORD},
        headers=headers,
    )
    assert r.status_code == 403


async def test_the_session_cookie_is_httponly_lax_and_secure_over_https(
    make_harness, make_settings, tmp_path
):
    for public_url, secure in (("http://testserver", False), ("https://testserver", True)):
        h = await make_harness(
            make_settings(public_url=public_url, admin_token="t" * 20, data_dir=tmp_path / str(secure))
        )
        user = await make_user(h)
        transport = httpx.ASGITransport(app=h.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=public_url) as client:
            token = await form_token(client, "/login")
            r = await client.post(
                "/login", data={"csrf_token": token, "identifier": user["account"], "password": PASSWORD}
            )
        name = "__Host-sg_session" if secure else "sg_session"
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(f"{name}="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Domain" not in cookie
        assert ("Secure" in cookie) is secure


async def test_over_https_a_session_cookie_planted_by_another_host_signs_nobody_in(
    make_harness, make_settings, tmp_path
):
    """Cookie tossing: a page on a sibling host (app.example.com beside id.example.com) sets
    ``sg_session=<its own account's token>; Domain=example.com``. Were that name read, the
    victim's browser would be signed in to the attacker's account here, and single sign-on would
    carry it into every app. Over HTTPS only the ``__Host-`` name counts, which no other host
    can set (RFC 6265bis §4.1.3.2)."""
    h = await make_harness(make_settings(public_url="https://testserver", admin_token="t" * 20))
    attacker = await make_user(h)
    transport = httpx.ASGITransport(app=h.app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as own:
        token = await form_token(own, "/login")
        r = await own.post(
            "/login", data={"csrf_token": token, "identifier": attacker["account"], "password": PASSWORD}
        )
        assert r.status_code == 303, r.text
        planted = own.cookies.get("__Host-sg_session") or own.cookies.get("sg_session")
        assert planted
        assert (await own.get("/account")).status_code == 200  # the token itself is good
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as victim:
        victim.cookies.set("sg_session", planted)
        r = await victim.get("/account")
        assert r.status_code == 303 and r.headers["location"].endswith("/login?next=%2Faccount"), r.text
        r = await victim.get("/oauth2/authorize", params={"client_id": "x"})  # no SSO as the attacker
        assert attacker["account"] not in r.text
        r = await victim.get("/api/v1/agent-chats")  # nor the pages' cookie on the API
        assert r.status_code == 401


@pytest.mark.parametrize("lead", [b"\xa0", b"\x85"])
async def test_over_https_a_host_cookie_name_with_unicode_white_space_is_not_read(
    make_harness, make_settings, lead
):
    """Cookie tossing past the prefix: a sibling host sends ``Set-Cookie:
    \\xa0__Host-sg_session=<its account's token>; Domain=example.com``. Browsers see no
    ``__Host-`` prefix in that name and keep it; Starlette read the header as Latin-1 and
    trimmed names with ``str.strip()``, which drops U+00A0 and U+0085, so it was read as the
    session cookie (and the console's likewise). Only the exact name counts."""
    h = await make_harness(make_settings(public_url="https://testserver", admin_token="t" * 20))
    attacker = await make_user(h)
    transport = httpx.ASGITransport(app=h.app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as own:
        token = await form_token(own, "/login")
        r = await own.post(
            "/login", data={"csrf_token": token, "identifier": attacker["account"], "password": PASSWORD}
        )
        assert r.status_code == 303, r.text
        planted = own.cookies.get("__Host-sg_session")
        assert planted
        r = await own.post(
            "/admin/login", data={"csrf_token": await form_token(own, "/admin"), "token": "t" * 20}
        )
        assert r.status_code == 303, r.text
        console = own.cookies.get("__Host-sg_console")
        assert console
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as victim:
        tossed = lead + b"__Host-sg_session=" + planted.encode()
        r = await victim.get("/account", headers={"cookie": tossed})
        assert r.status_code == 303 and r.headers["location"].endswith("/login?next=%2Faccount"), r.text
        r = await victim.get("/api/v1/agent-chats", headers={"cookie": tossed})
        assert r.status_code == 401
        r = await victim.get("/admin", headers={"cookie": lead + b"__Host-sg_console=" + console.encode()})
        assert 'action="/admin/logout"' not in r.text and 'name="token"' in r.text  # sign-in form
        # The exact names still work, also after other cookies and with the header's own spaces.
        r = await victim.get("/account", headers={"cookie": f"a=b;  __Host-sg_session={planted}"})
        assert r.status_code == 200, r.text


async def test_signing_in_returns_only_to_allowed_urls_and_csp_lets_the_form_go_there(
    make_harness, make_settings
):
    h = await make_harness(
        make_settings(allowed_redirects=["https://app.example.com/*"], admin_token="t" * 20)
    )
    user = await make_user(h)
    cases = {
        "https://app.example.com/after?x=1": "https://app.example.com/after?x=1",
        "https://evil.example/after": "/account",
        "//evil.example/": "/account",
    }
    for redirect_to, expected in cases.items():
        client = h.new_client()
        r = await client.get("/login", params={"redirect_to": redirect_to})
        assert "form-action 'self' https://app.example.com" in r.headers["content-security-policy"]
        r = await client.post(
            "/login",
            data={
                "csrf_token": csrf_of(r.text),
                "identifier": user["account"],
                "password": PASSWORD,
                "redirect_to": redirect_to,
                "next": redirect_to,
            },
        )
        assert r.status_code == 303 and r.headers["location"] == expected


async def test_signed_in_login_never_redirects_off_site_through_a_prefix_entry(make_harness, make_settings):
    """Issue 11 item 6: ``https://app.example.com*`` used to let look-alike hosts and userinfo
    through, because the entry was compared as a string prefix."""
    h = await make_harness(
        make_settings(allowed_redirects=["https://app.example.com*"], admin_token="t" * 20)
    )
    user = await make_user(h)
    client = h.new_client()
    token = await form_token(client, "/login")
    r = await client.post(
        "/login", data={"csrf_token": token, "identifier": user["account"], "password": PASSWORD}
    )
    assert r.status_code == 303
    cases = {
        "https://app.example.com.evil.example/x": "/account",
        "https://app.example.com@evil.example/": "/account",
        "https://app.example.com:444/": "/account",
        "https://app.example.com/back?x=1": "https://app.example.com/back?x=1",
    }
    for redirect_to, expected in cases.items():
        r = await client.get("/login", params={"redirect_to": redirect_to})
        assert r.status_code == 303 and r.headers["location"] == expected, redirect_to


async def test_pages_for_signed_in_users_send_others_to_login_and_back(h):
    r = await h.client.get("/account")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Faccount"
    r = await h.client.get("/lang/en", params={"next": "//evil.example"})
    assert r.headers["location"] == "/" and "sg_lang=en" in r.headers["set-cookie"]


async def test_the_api_accepts_the_session_cookie_only_from_our_pages(h):
    user = await make_user(h)
    client = await signed_in_client(h, user)
    csrf = csrf_of((await client.get("/chat")).text)

    r = await client.get("/api/v1/agent-chats")
    assert r.status_code == 200 and r.json() == []
    r = await client.get("/api/v1/agent-chats", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 401
    r = await client.get("/api/v1/agent-chats", headers={"Origin": "https://evil.example"})
    assert r.status_code == 401

    r = await client.post("/api/v1/agent-chats", json={"message": "hi"})
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    r = await client.post("/api/v1/agent-chats", json={"message": "hi"}, headers={"X-CSRF-Token": "x" + csrf})
    assert r.status_code == 403
    # With the page's token the caller is authenticated; no model is configured in this app.
    r = await client.post("/api/v1/agent-chats", json={"message": "hi"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 503 and r.json()["code"] == "agent_not_configured"

    # Signing out ends the cookie's session for the API too.
    await client.post("/logout", data={"csrf_token": csrf})
    r = await client.get("/api/v1/agent-chats")
    assert r.status_code == 401


async def test_admin_console_pages_search_and_token_rotation(make_harness, make_settings):
    h = await make_harness(make_settings())  # admin token generated into data/config/admin.json
    for _ in range(23):
        await make_user(h)
    client = h.new_client(**{"Accept-Language": "en"})
    token = await form_token(client, "/admin")
    r = await client.post("/admin/login", data={"csrf_token": token, "token": "wrong"})
    assert r.status_code == 401 and "sg_console" not in r.headers.get("set-cookie", "")
    r = await client.post("/admin/login", data={"csrf_token": token, "token": h.services.admin_guard.token})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("sg_console=") and "Path=/;" in cookie and "HttpOnly" in cookie
    assert h.services.admin_guard.token not in cookie

    first = await client.get("/admin")
    assert first.text.count("<tr data-account=") == 20 and "Page 1 of 2" in first.text
    second = await client.get("/admin", params={"page": 2})
    assert second.text.count("<tr data-account=") == 3
    one = re.search(r'data-account="([^"]+)"', second.text).group(1)
    found = await client.get("/admin", params={"q": one})
    assert found.text.count("<tr data-account=") == 1

    rotate(h.services.settings)
    r = await client.get("/admin")
    assert 'name="token"' in r.text and "<tr data-account=" not in r.text


async def test_dev_mailbox_page_is_html_for_local_browsers_only(h):
    r = await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "mb@example.com", "password": PASSWORD, "username": "mailbox"},
    )
    assert r.status_code == 202, r.text
    local = h.new_client(ip="127.0.0.1", Host="localhost")
    r = await local.get("/dev/mailbox", headers={"Accept": "text/html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "mb@example.com" in r.text and "content-security-policy" in r.headers
    r = await local.get("/dev/mailbox", headers={"Accept": "application/json"})
    assert r.headers["content-type"].startswith("application/json")
    r = await h.new_client().get("/dev/mailbox", headers={"Accept": "text/html"})
    assert r.status_code == 404


@pytest.mark.both_engines
async def test_dev_mailbox_page_is_a_404_page_under_a_forged_host_name(h):
    r = await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "rebind@example.com", "password": PASSWORD, "username": "rebind"},
    )
    assert r.status_code == 202, r.text
    local = h.new_client(ip="127.0.0.1", Host="rebind.attacker.example:8080")
    r = await local.get("/dev/mailbox", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "rebind@example.com" not in r.text and "<h1" in r.text
    r = await local.get("/dev/mailbox", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    # Remote clients meet the same page.
    r = await h.new_client().get("/dev/mailbox", headers={"Accept": "text/html", "Host": "localhost"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


async def test_dev_mailbox_page_is_off_when_smtp_is_configured(make_harness, make_settings):
    h = await make_harness(make_settings(smtp_host="127.0.0.1", smtp_port=9, admin_token="t" * 20))
    r = await h.new_client(ip="127.0.0.1", Host="localhost").get(
        "/dev/mailbox", headers={"Accept": "text/html"}
    )
    assert r.status_code == 404


@pytest.mark.parametrize(
    "bio",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "![x](https://tracker.example/p.gif)",
        '<a href="https://e.example" onclick="alert(1)">x</a>',
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    ],
)
def test_markdown_bios_are_sanitised(bio):
    html = str(render_markdown(bio))
    assert "<script" not in html and "<img" not in html
    assert re.search(r"<[^>]*\son\w+=", html) is None, html
    assert not re.search(r'href="(?i:javascript|data):', html)


def test_markdown_bios_keep_formatting_and_safe_links():
    html = str(render_markdown("**bold** _it_ [docs](https://example.com/d)\n\n- a\n- b"))
    assert "<strong>bold</strong>" in html and "<em>it</em>" in html and "<li>a</li>" in html
    assert 'href="https://example.com/d"' in html and 'rel="noopener noreferrer nofollow ugc"' in html
