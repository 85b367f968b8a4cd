"""In headless Chromium against a real server: what an app asks for at /oauth2/authorize holds
on the server. A fresh sign-in asked for with ``prompt=login`` is not skipped by going straight
to the request the sign-in page returns to (OpenID Connect Core §3.1.2.1), and a code the app
got just before the person disconnected it on the account page is refused (RFC 6749 §10.5)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from playwright.sync_api import expect
from web_support import ADMIN_TOKEN, PASSWORD, sign_in

from support.servers import free_port

pytestmark = pytest.mark.browser


def _app_and_person(site, new_page, lang: str, first_party: bool):
    """A registered app whose callback answers from the browser (the app is not running), a
    person, and a page signed in as them: (page, person, client id, secret, callback)."""
    callback = f"http://127.0.0.1:{free_port()}/callback"
    body = {
        "name": f"Orchard Notes {secrets.token_hex(2)}",
        "redirectUris": [callback],
        "scopes": ["openid", "profile"],
        "grantTypes": ["authorization_code"],
        "firstParty": first_party,
    }
    r = site.http.post("/api/admin/clients", json=body, headers={"X-Admin-Token": ADMIN_TOKEN})
    assert r.status_code == 201, r.text
    user = site.create_user()
    page = new_page(lang=lang)
    page.route(re.compile(re.escape(callback) + r".*"), lambda route: route.fulfill(body="back at the app"))
    sign_in(page, user["account"])
    return page, user, r.json()["client"]["clientId"], r.json()["clientSecret"], callback


def _request(client_id: str, callback: str, challenge: str, **extra: str) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": callback,
        "scope": "openid profile",
        "state": "s-fresh",
        "nonce": "n-fresh",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return "/oauth2/authorize?" + urlencode(query)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"="
    ).decode()


def _exchange(site, client_id: str, secret: str, callback: str, returned: str, verifier: str):
    code = parse_qs(urlsplit(returned).query)["code"][0]
    return site.http.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    )


def test_prompt_login_cannot_be_skipped_by_going_straight_back(site, new_page):
    page, user, client_id, secret, callback = _app_and_person(site, new_page, "en-US", first_party=True)
    expect(page).to_have_url(re.compile(r"/account$"))
    signed_in_at = time.time()
    time.sleep(1.1)  # auth_time is in whole seconds: the fresh sign-in is visibly later

    verifier, challenge = _pkce()
    page.goto(_request(client_id, callback, challenge, prompt="login"))
    expect(page).to_have_url(re.compile(r"/login\?"))
    back = parse_qs(urlsplit(page.url).query)["next"][0]
    assert "prompt=" not in back
    # Straight to the link back, or to the request without prompt=login: the sign-in page again.
    for shortcut in (back, _request(client_id, callback, challenge)):
        page.goto(shortcut)
        expect(page).to_have_url(re.compile(r"/login\?"))
        expect(page.locator("#f-password")).to_be_visible()

    page.locator("#f-password").fill(PASSWORD)
    page.get_by_label("Account or email").fill(user["account"])
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(callback) + r"\?code=.+&state=s-fresh"))
    r = _exchange(site, client_id, secret, callback, page.url, verifier)
    assert r.status_code == 200, r.text
    claims = jwt.decode(r.json()["id_token"], options={"verify_signature": False})
    assert claims["auth_time"] > signed_in_at


def test_a_code_from_before_the_app_was_disconnected_is_refused(site, new_page):
    page, _, client_id, secret, callback = _app_and_person(site, new_page, "zh-CN", first_party=False)
    verifier, challenge = _pkce()
    page.goto(_request(client_id, callback, challenge))
    page.locator("button[value=allow]").click()
    expect(page).to_have_url(re.compile(re.escape(callback) + r"\?code=.+&state=s-fresh"))
    returned = page.url  # the app has not exchanged it yet

    page.goto("/account")
    page.locator(f"#apps [data-client-id='{client_id}']").get_by_role(
        "button", name=re.compile("撤销")
    ).click()
    expect(page.locator("#apps [data-client-id]")).to_have_count(0)

    r = _exchange(site, client_id, secret, callback, returned, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
