"""Connected apps on the account page (issue 12): the apps a person let read their account,
with what each may read and since when; revoking one ends its consent, grants and refresh
tokens (OidcService.revoke_app), CSRF-checked like every account form, in both languages."""

from __future__ import annotations

import re

import pytest
from logout_support import page_csrf, register_app, sign_in_to_app
from oidc_support import make_person, sign_in

from support.harness import AppHarness

pytestmark = pytest.mark.both_engines


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(make_settings(admin_token="connected-apps-admin-token"))


def _listed(html: str) -> list[str]:
    return re.findall(r'data-client-id="([^"]+)"', html)


async def test_apps_are_listed_and_a_revoked_one_loses_its_tokens_and_consent(h):
    notes, notes_secret = await register_app(h, first_party=False, name="Orchard Notes")
    ours, ours_secret = await register_app(h, first_party=True, name="Family Board")
    person = await make_person(h)
    browser = h.new_client(**{"Accept-Language": "en"})
    notes_tokens = await sign_in_to_app(
        h, browser, notes, notes_secret, person, scope="openid profile offline_access"
    )
    assert notes_tokens["refresh_token"]
    await sign_in_to_app(h, browser, ours, ours_secret, person)

    page = await browser.get("/account")
    assert page.status_code == 200
    assert "Connected apps" in page.text and "Orchard Notes" in page.text and "Family Board" in page.text
    assert sorted(_listed(page.text)) == sorted([notes, ours])
    assert 'data-scope="profile"' in page.text

    # Without the page's CSRF token: refused, nothing ends.
    r = await browser.post(f"/account/apps/{notes}/revoke", data={})
    assert r.status_code == 403
    r = await h.client.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {notes_tokens['access_token']}"}
    )
    assert r.status_code == 200

    r = await browser.post(f"/account/apps/{notes}/revoke", data={"csrf_token": await page_csrf(browser)})
    assert r.status_code == 303 and r.headers["location"] == "/account?notice=app_revoked#apps"
    page = await browser.get(r.headers["location"])
    assert "That app&#39;s access was revoked." in page.text or "That app's access was revoked." in page.text
    assert _listed(page.text) == [ours]
    # Its access token and refresh token stopped working at once.
    r = await h.client.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {notes_tokens['access_token']}"}
    )
    assert r.status_code == 401
    r = await h.client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": notes_tokens["refresh_token"]},
        auth=(notes, notes_secret),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # Its consent is gone: the next sign-in through it asks again.
    r = await browser.get(
        "/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": notes,
            "redirect_uri": "https://app.example/callback",
            "scope": "openid profile",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        },
    )
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/oauth2/consent")
    # The person is still signed in here; revoking an app is not signing out.
    assert (await browser.get("/account")).status_code == 200


async def test_the_list_speaks_chinese_and_says_when_there_is_none(h):
    person = await make_person(h)
    browser = h.new_client(**{"Accept-Language": "zh-CN"})
    app, secret = await register_app(h, first_party=False, name="果园笔记")
    page = await browser.get("/login")
    assert page.status_code == 200
    await sign_in_to_app(h, browser, app, secret, person)
    page = await browser.get("/account")
    assert "已连接的应用" in page.text and "果园笔记" in page.text and "撤销" in page.text
    await browser.post(f"/account/apps/{app}/revoke", data={"csrf_token": await page_csrf(browser)})
    page = await browser.get("/account")
    assert "还没有应用连接到你的账号。" in page.text and _listed(page.text) == []


async def test_revoking_an_app_that_is_not_connected_changes_nothing(h):
    app, secret = await register_app(h, first_party=False)
    person, other = await make_person(h), await make_person(h)
    theirs = h.new_client()
    await sign_in_to_app(h, theirs, app, secret, other)
    browser = h.new_client()
    r = await sign_in(browser, "/login", person["account"])
    assert r.status_code == 303
    for client_id in (app, "no-such-app", "x" * 300):
        r = await browser.post(
            f"/account/apps/{client_id}/revoke", data={"csrf_token": await page_csrf(browser)}
        )
        assert r.status_code == 303
    # The other person's connection stands.
    assert _listed((await theirs.get("/account")).text) == [app]


async def test_revoking_needs_a_signed_in_person(h):
    r = await h.client.post("/account/apps/whatever/revoke", data={})
    assert r.status_code in (303, 403)
    assert (await h.client.get("/account")).status_code == 303
