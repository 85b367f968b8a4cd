"""Every page on a phone (issue 15): at 390×844 and 360×740, in Chinese and English, signed in
and out, no page scrolls sideways and every visible control is on screen; the top bar folds
into a menu whose items keep to one line; the admin tables become stacked rows; the chat keeps
its buttons on screen. The Browsing helper (web_support.py) also fails a test on any request a
page makes to another origin and on any CSP refusal."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect
from web_support import ADMIN_TOKEN, lines_of, outside_viewport, shot, sign_in

pytestmark = pytest.mark.browser

PHONES = [(390, 844), (360, 740)]
# Each language once, on a different phone: English (the longer words) on the narrowest screen,
# Chinese on the common one. Every page is walked in both, signed in and out.
PHONE_CASES = [((360, 740), "en-US"), ((390, 844), "zh-CN")]
SIGNED_OUT = [
    "/login",
    "/register",
    "/register/verify?email=phone@example.com",
    "/forgot-password",
    "/forgot-password/confirm?email=phone@example.com",
    "/admin",
    "/dev/mailbox",
    "/no/such/page",
]


def check_page(page: Page, path: str) -> list[str]:
    """Open ``path``; what sticks out of the window, with the menu folded and unfolded."""
    response = page.goto(path)
    assert response is not None and response.status in (200, 404), (path, response and response.status)
    page.wait_for_load_state("load")
    if path == "/chat":
        expect(page.locator("#chat-sessions li").first).to_be_visible()
    found = [f"{path}: {what}" for what in outside_viewport(page)]
    toggle = page.locator(".menu-toggle")
    expect(toggle).to_be_visible()  # phones get the folded menu
    expect(page.locator(".topnav")).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".topnav")).to_be_visible()
    expect(page.locator(".lang-switch")).to_be_visible()
    found += [f"{path} (menu open): {what}" for what in outside_viewport(page)]
    wrapped = {
        item: n for item, n in lines_of(page, ".topnav a, .topnav button, .lang-switch a").items() if n != 1
    }
    assert not wrapped, f"{path}: menu items over several lines: {wrapped}"
    page.keyboard.press("Escape")
    expect(page.locator(".topnav")).to_be_hidden()
    return found


@pytest.mark.parametrize(
    ("size", "lang"), PHONE_CASES, ids=[f"{w}x{h}-{lang}" for (w, h), lang in PHONE_CASES]
)
def test_every_page_fits_a_phone_signed_in_and_out(site, new_page, size, lang):
    zh = lang == "zh-CN"
    found: list[str] = []

    # Signed out, on this machine (the dev mailbox opens to local browsers only).
    page = new_page(lang=lang, remote=False, viewport=size)
    for path in SIGNED_OUT:
        found += check_page(page, path)
    if size == PHONES[0]:
        page.goto("/login")
        shot(page, f"phone_login{'_zh' if zh else ''}", full_page=False)
        page.locator(".menu-toggle").click()
        shot(page, f"phone_menu{'_zh' if zh else ''}", full_page=False)

    # Signed in as an administrator: the widest menu, the console, the account and the chat.
    admin = site.create_user(role="admin", username="小芽管理员" if zh else "Sprout Admin")
    other = site.create_user(bio="Grows **sprouts**.")
    # An app with long redirect URIs (issue 12), for the console's apps pages.
    r = site.http.post(
        "/api/admin/clients",
        json={
            "name": "小芽网页版" if zh else "Sprout Web",
            "redirectUris": ["https://web.example.com/oidc/callback/with/a/rather/long/path?tenant=sprouts"],
            "backchannelLogoutUri": "https://web.example.com/oidc/backchannel-logout",
        },
        headers={"X-Admin-Token": ADMIN_TOKEN},
    )
    assert r.status_code == 201, r.text
    app_id = r.json()["client"]["clientId"]
    page = new_page(lang=lang, viewport=size)
    sign_in(page, admin["account"])
    expect(page).to_have_url(re.compile("/account"))
    for path in (
        "/admin/clients",
        f"/admin/clients/{app_id}",
        f"/admin/clients/{app_id}/delete",
        "/account",
        "/account/delete",
        "/chat",
        "/admin",
        f"/admin?q={other['account']}",
        "/admin/audit",
        f"/admin/users/{other['account']}",
        f"/admin/users/{other['account']}/delete",
        "/no/such/page",
    ):
        found += check_page(page, path)
    # Two-step verification: the enrolment page, its QR code and typed key, fits too.
    page.goto("/account")
    page.locator("form[action='/account/mfa/totp'] button[type=submit]").click()
    expect(page).to_have_url(re.compile("/account/mfa/totp$"))
    found += check_page(page, "/account/mfa/totp")
    assert not found, "\n".join(found)

    # The users table is stacked rows: each row's actions are on screen and reachable.
    page.goto(f"/admin?q={other['account']}")
    row = page.locator(f"tr[data-account='{other['account']}']")
    for action in ("Edit|编辑", "Delete|删除"):
        link = row.get_by_role("link", name=re.compile(f"^({action})"))
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= size[0], (action, box)
    row.get_by_role("link", name=re.compile("^(Edit|编辑)")).click()
    expect(page).to_have_url(re.compile(f"/admin/users/{other['account']}$"))

    # The chat's buttons are on screen: new conversation, send, and no delete without a conversation.
    page.goto("/chat")
    expect(page.locator("#chat-sessions li").first).to_be_visible()
    for control in ("#chat-new", "#chat-send", "#chat-input"):
        box = page.locator(control).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= size[0], (control, box)
        assert box["y"] + box["height"] <= page.evaluate("document.documentElement.scrollHeight")
    expect(page.locator("#chat-delete")).to_be_hidden()

    if size == PHONES[0]:
        for path, name in (("/account", "account"), ("/admin", "admin_users"), ("/chat", "chat")):
            page.goto(path)
            page.wait_for_load_state("load")
            shot(page, f"phone_{name}{'_zh' if zh else ''}", full_page=path != "/chat")


def test_without_scripts_the_menu_wraps_and_nothing_scrolls_sideways(site, new_page):
    admin = site.create_user(role="admin")
    page = new_page(lang="zh-CN", javascript=False, viewport=PHONES[1])
    page.goto("/login")
    assert outside_viewport(page) == []
    sign_in(page, admin["account"])
    for path in ("/account", "/admin", "/admin/audit", "/admin/clients"):
        page.goto(path)
        expect(page.locator(".topnav")).to_be_visible()  # no menu button to open it: always shown
        assert outside_viewport(page) == [], path
        wrapped = {
            k: n for k, n in lines_of(page, ".topnav a, .topnav button, .lang-switch a").items() if n != 1
        }
        assert not wrapped, wrapped


def test_the_menu_on_a_wide_screen_is_the_plain_bar(site, new_page):
    page = new_page(lang="zh-CN")
    page.goto("/login")
    expect(page.locator(".menu-toggle")).to_be_hidden()
    expect(page.locator(".topnav")).to_be_visible()
    assert set(lines_of(page, ".topnav a, .lang-switch a").values()) == {1}


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_load_from_this_origin_only(site, new_page, path):
    # Redoc's bundle writes two stylesheets while it loads, before it can be given the page's
    # nonce, and shows its vendor's logo from a CDN: the CSP refuses those (nothing is fetched,
    # the page works). docs/decisions/offline-api-docs.md.
    refused = ("Applying inline style violates", "cdn.redoc.ly") if path == "/redoc" else ()
    page = new_page(viewport=PHONES[0], allowed_refusals=refused)
    response = page.goto(path)
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp and "img-src 'self' data:;" in csp
    if path == "/docs":
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("SproutGate")
        expect(page.locator(".opblock").first).to_be_visible()
    else:
        expect(page.locator("h1")).to_contain_text("SproutGate")
        expect(page.get_by_text("Get Me").first).to_be_attached()
    page.wait_for_load_state("networkidle")
    scripts = page.evaluate("[...document.scripts].map(s => s.src)")
    assert scripts and all(src.startswith(site.url) for src in scripts), scripts


def test_a_broken_avatar_shows_initials(site, new_page):
    user = site.create_user(username="Willow", avatarUrl=f"{site.url}/static/no-such-avatar.png")
    page = new_page(viewport=PHONES[0])
    sign_in(page, user["account"])
    expect(page.locator(".avatar-initial")).to_be_visible()
    expect(page.locator(".avatar-initial")).to_have_text("W")
    expect(page.locator("img.avatar")).to_be_hidden()

    good = site.create_user(avatarUrl=f"{site.url}/static/favicon.svg")
    page = new_page(viewport=PHONES[0])
    sign_in(page, good["account"])
    expect(page.locator("img.avatar")).to_be_visible()


def test_a_mistyped_address_gets_the_page_in_its_language(site, new_page):
    page = new_page(lang="zh-CN")
    response = page.goto(f"/no-such-page-{uuid.uuid4().hex[:6]}")
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", level=1)).to_have_text("页面不存在")
    expect(page.get_by_role("link", name="返回")).to_have_attribute("href", "/")
    response = page.goto("/api/no-such-endpoint")
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("application/problem+json")
