"""A single-page app built on oidc-client-ts (npm, the browser library the OpenID Foundation
lists for JavaScript) as a public client of SproutGate, in headless Chromium: sign-in with the
authorization code and PKCE, silent renewal with the refresh token (offline_access), sign-out
through the end-session endpoint. The app's code is tests/rp/spa/app.js, quoted in docs/oidc.md."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext
from rp_support import Provider, SpaSite, renewed_tokens, sign_in_at_sproutgate, tokens, wait_state

pytestmark = pytest.mark.browser
SPA_SCOPES = ("--scope", "openid", "--scope", "profile", "--scope", "email", "--scope", "offline_access")


@pytest.fixture(scope="module")
def unregistered_spa(provider: Provider, spa: SpaSite) -> Iterator[SpaSite]:
    """The app with a client whose only registered redirect URI is another path than the one the
    app sends (its origin + "/")."""
    app = SpaSite(issuer=provider.issuer, bundle=spa.bundle)
    created = provider.create_client(
        "Misconfigured app", [f"{app.origin}/elsewhere"], "--public", "--first-party"
    )
    app.client_id = created["client_id"]
    app.start()
    yield app
    app.close()


def test_spa_signs_in_with_pkce_renews_with_the_refresh_token_and_signs_out(
    provider: Provider, spa: SpaSite, context: BrowserContext
) -> None:
    user = provider.create_user()
    sent: list[str] = []
    context.on("request", lambda r: sent.append(r.url) if r.url.startswith(provider.issuer) else None)
    page = context.new_page()
    page.goto(f"{spa.origin}/")
    wait_state(page, "signed-out")

    page.click("#sign-in")
    page.wait_for_url(f"{provider.issuer}/login*")
    sign_in_at_sproutgate(page, user["account"])
    page.wait_for_url(f"{spa.origin}/")
    wait_state(page, "signed-in")
    assert page.locator("#status").inner_text() == f"Signed in as {user['account']}"

    authorize = [parse_qs(urlsplit(u).query) for u in sent if urlsplit(u).path == "/oauth2/authorize"]
    assert authorize and authorize[0]["code_challenge_method"] == ["S256"], sent
    assert len(authorize[0]["code_challenge"][0]) == 43 and "client_secret" not in authorize[0]
    first = tokens(page)
    assert first["profile"]["preferred_username"] == user["account"]
    assert first["profile"]["email"] == user["email"]
    assert first["profile"]["aud"] == spa.client_id and first["profile"]["iss"] == provider.issuer
    assert first["refresh_token"], "offline_access gave no refresh token"
    assert set(first["scope"].split()) == {"openid", "profile", "email", "offline_access"}

    # Silent renewal: the refresh_token grant from the page (no navigation), rotating the token.
    page.click("#renew")
    renewed = renewed_tokens(page, first)
    wait_state(page, "signed-in")
    assert renewed["refresh_token"] and renewed["refresh_token"] != first["refresh_token"]
    assert renewed["profile"]["sub"] == first["profile"]["sub"]
    r = provider.http.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {renewed['access_token']}"})
    assert r.status_code == 200 and r.json()["sub"] == first["profile"]["sub"], r.text
    # An app's token is for that app: SproutGate's own API check does not take it.
    r = provider.http.post("/api/auth/verify", json={"token": renewed["access_token"]})
    assert r.status_code == 200 and r.json() == {"valid": False}, r.text

    # Sign-out: end-session with id_token_hint, back to the app with the state it sent.
    sent.clear()
    page.click("#sign-out")
    page.wait_for_url(f"{spa.origin}/")
    wait_state(page, "signed-out")
    logout = [parse_qs(urlsplit(u).query) for u in sent if urlsplit(u).path == "/oauth2/logout"]
    assert logout and logout[0]["id_token_hint"] and logout[0]["post_logout_redirect_uri"], sent

    # What the app held is dead: the access token at userinfo, the refresh token at the token
    # endpoint (the app revoked it on sign-out, revokeTokensOnSignout, which ends its grant).
    r = provider.http.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {renewed['access_token']}"})
    assert r.status_code == 401, r.text
    r = provider.http.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": renewed["refresh_token"],
            "client_id": spa.client_id,
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text

    # The single sign-on session ended too: signing in again asks for the password.
    page.click("#sign-in")
    page.wait_for_url(f"{provider.issuer}/login*")
    assert page.locator("#f-password").is_visible()


def test_a_refresh_token_is_bound_to_the_app_that_received_it(
    provider: Provider, spa: SpaSite, context: BrowserContext
) -> None:
    user = provider.create_user()
    page = context.new_page()
    page.goto(f"{spa.origin}/")
    page.click("#sign-in")
    sign_in_at_sproutgate(page, user["account"])
    page.wait_for_url(f"{spa.origin}/")
    wait_state(page, "signed-in")
    held = tokens(page)
    other = provider.create_client("Other app", ["http://127.0.0.1/callback"], "--public")
    r = provider.http.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": held["refresh_token"],
            "client_id": other["client_id"],
        },
    )
    assert r.status_code in (400, 401) and r.json()["error"] in ("invalid_grant", "invalid_client"), r.text
    # The app itself still renews.
    page.click("#renew")
    assert renewed_tokens(page, held)["refresh_token"] != held["refresh_token"]
    wait_state(page, "signed-in")


def test_an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(
    provider: Provider, unregistered_spa: SpaSite, context: BrowserContext
) -> None:
    page = context.new_page()
    page.goto(f"{unregistered_spa.origin}/")
    wait_state(page, "signed-out")
    answers: list[int] = []
    page.on(
        "response",
        lambda r: answers.append(r.status) if urlsplit(r.url).path == "/oauth2/authorize" else None,
    )
    page.click("#sign-in")
    page.wait_for_url(f"{provider.issuer}/oauth2/authorize*")
    page.wait_for_load_state()
    assert answers == [400], answers
    assert page.url.startswith(f"{provider.issuer}/oauth2/authorize")  # stayed: no redirect
    assert not page.locator("#f-password").count()
    with httpx.Client() as plain:
        assert plain.get(f"{unregistered_spa.origin}/").status_code == 200  # the app itself is up


@pytest.fixture(scope="module")
def third_party_spa(provider: Provider, spa: SpaSite) -> Iterator[SpaSite]:
    """The same app registered as a third-party client (not one of the family's): it asks."""
    app = SpaSite(issuer=provider.issuer, bundle=spa.bundle)
    created = provider.create_client("照片冲印", [app.redirect_uri], "--public", *SPA_SCOPES)
    app.client_id = created["client_id"]
    app.start()
    yield app
    app.close()


def test_a_third_party_app_asks_in_the_persons_language_a_denial_reaches_it_and_consent_is_kept(
    provider: Provider, third_party_spa: SpaSite, browser: Browser
) -> None:
    user = provider.create_user()
    context = browser.new_context(locale="zh-CN")
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto(f"{third_party_spa.origin}/")
        page.click("#sign-in")
        page.wait_for_url(f"{provider.issuer}/login*")
        assert page.locator("h1").inner_text() == "登录"
        sign_in_at_sproutgate(page, user["account"])
        page.wait_for_url(f"{provider.issuer}/oauth2/consent*")
        assert page.locator("h1").inner_text() == "照片冲印 想访问你的账号"
        listed = page.locator("li[data-scope]").evaluate_all("els => els.map(e => e.dataset.scope)")
        assert listed == ["openid", "profile", "email", "offline_access"]

        # Deny: the app hears access_denied (oidc-client-ts raises it) and holds no user.
        page.locator("button[value=deny]").click()
        page.wait_for_selector("body[data-state=error]")
        assert "did not allow" in page.locator("#error").inner_text()
        assert page.evaluate("window.spa.userManager.getUser()") is None

        # Allow, then the next sign-in goes straight through: the consent is remembered.
        page.goto(f"{third_party_spa.origin}/")
        page.click("#sign-in")
        page.wait_for_url(f"{provider.issuer}/oauth2/consent*")
        page.locator("button[value=allow]").click()
        page.wait_for_url(f"{third_party_spa.origin}/")
        wait_state(page, "signed-in")
        held = tokens(page)
        assert set(held["scope"].split()) == set(listed) and held["profile"]["email"] == user["email"]
        page.evaluate("window.spa.userManager.removeUser()")
        page.goto(f"{third_party_spa.origin}/")
        wait_state(page, "signed-out")
        seen: list[str] = []
        page.on(
            "request",
            lambda r: seen.append(urlsplit(r.url).path) if r.url.startswith(provider.issuer) else None,
        )
        page.click("#sign-in")
        wait_state(page, "signed-in")
        assert "/oauth2/authorize" in seen and "/oauth2/consent" not in seen, seen
    finally:
        context.close()
