"""Connected apps on the account page in headless Chromium against a real server, in both
languages: a person lets a third-party app read their account (sign-in, consent), finds it on
the account page with what it may read, and revokes it there."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect
from web_support import ADMIN_TOKEN, shot, sign_in

from support.servers import free_port

pytestmark = pytest.mark.browser

TEXT = {
    "en-US": {
        "apps": "Connected apps",
        "revoke": "Revoke",
        "done": "That app's access was revoked.",
        "none": "No apps are connected to your account.",
        "reads": "Your email address",
    },
    "zh-CN": {
        "apps": "已连接的应用",
        "revoke": "撤销",
        "done": "该应用的访问已撤销。",
        "none": "还没有应用连接到你的账号。",
        "reads": "你的邮箱地址",
    },
}


def _register_app(site, name: str, callback: str) -> str:
    body = {
        "name": name,
        "redirectUris": [callback],
        "scopes": ["openid", "profile", "email"],
        "grantTypes": ["authorization_code"],
        "public": False,
        "firstParty": False,
    }
    r = site.http.post("/api/admin/clients", json=body, headers={"X-Admin-Token": ADMIN_TOKEN})
    assert r.status_code == 201, r.text
    return r.json()["client"]["clientId"]


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_a_connected_app_is_listed_and_revoked_on_the_account_page(site, new_page, lang):
    text = TEXT[lang]
    callback = f"http://127.0.0.1:{free_port()}/callback"
    name = f"Orchard Notes {secrets.token_hex(2)}"
    client_id = _register_app(site, name, callback)
    user = site.create_user()
    page = new_page(lang=lang)
    # The app itself is not running: its callback answers from here.
    page.route(re.compile(re.escape(callback) + r".*"), lambda route: route.fulfill(body="back at the app"))
    sign_in(page, user["account"])
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": callback,
        "scope": "openid profile email",
        "state": "s-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page.goto("/oauth2/authorize?" + urlencode(query))
    page.locator("button[value=allow]").click()
    expect(page).to_have_url(re.compile(re.escape(callback) + r"\?code=.+&state=s-1"))

    page.goto("/account")
    apps = page.locator("#apps")
    expect(apps.get_by_role("heading", name=text["apps"])).to_be_visible()
    row = apps.locator(f"[data-client-id='{client_id}']")
    expect(row).to_contain_text(name)
    expect(row).to_contain_text(text["reads"])
    apps.scroll_into_view_if_needed()
    shot(page, "account_apps" if lang == "en-US" else "account_apps_zh")
    row.get_by_role("button", name=re.compile(text["revoke"])).click()
    expect(page.locator(".notice")).to_have_text(text["done"])
    expect(page.locator("#apps [data-client-id]")).to_have_count(0)
    expect(page.locator("#apps")).to_contain_text(text["none"])
    # Still signed in here: revoking an app is not signing out.
    expect(page).to_have_url(re.compile(r"/account"))


END_TEXT = {
    "en-US": {"title": "Sign out?", "lead": "asks to sign you out of SproutGate", "submit": "Sign out"},
    "zh-CN": {"title": "退出登录?", "lead": "请求让你退出 SproutGate", "submit": "退出登录"},
}


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_an_app_signs_the_person_out_after_they_confirm(site, new_page, lang):
    """RP-initiated logout without an ID token hint: the page asks, and after the click the
    browser lands on the app's registered address with its state (the page's form-action lets
    the redirect through; a CSP refusal would fail the test)."""
    text = END_TEXT[lang]
    back = f"http://127.0.0.1:{free_port()}/signed-out"
    name = f"Family Board {secrets.token_hex(2)}"
    body = {
        "name": name,
        "redirectUris": [f"http://127.0.0.1:{free_port()}/callback"],
        "postLogoutRedirectUris": [back],
        "scopes": ["openid"],
        "grantTypes": ["authorization_code"],
        "firstParty": True,
    }
    r = site.http.post("/api/admin/clients", json=body, headers={"X-Admin-Token": ADMIN_TOKEN})
    assert r.status_code == 201, r.text
    client_id = r.json()["client"]["clientId"]
    user = site.create_user()
    page = new_page(lang=lang)
    page.route(re.compile(re.escape(back) + r".*"), lambda route: route.fulfill(body="signed out of the app"))
    sign_in(page, user["account"])
    expect(page).to_have_url(re.compile(r"/account$"))
    query = {"client_id": client_id, "post_logout_redirect_uri": back, "state": "z-9"}
    page.goto("/oauth2/logout?" + urlencode(query))
    expect(page.get_by_role("heading", name=text["title"])).to_be_visible()
    expect(page.locator("#end-session")).to_contain_text(
        f"{name} {text['lead']}" if lang == "en-US" else name
    )
    shot(page, "end_session" if lang == "en-US" else "end_session_zh")
    page.locator("#end-session").get_by_role("button", name=text["submit"], exact=True).click()
    expect(page).to_have_url(back + "?state=z-9")
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login"))
