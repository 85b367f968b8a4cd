"""Single sign-on across two registered clients that nobody on this team wrote: Apache with
mod_auth_openidc (confidential) and the oidc-client-ts single-page app (public). After the
person signs in through one, the other gets a code without any password being typed; signing
out through one ends the SSO session for both."""

from __future__ import annotations

import time
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import BrowserContext
from rp_support import ApacheRp, Provider, SpaSite, claims_on, sign_in_at_sproutgate, tokens, wait_state

pytestmark = pytest.mark.browser


def _sproutgate_pages(context: BrowserContext, provider: Provider) -> list[str]:
    """Every request the browser makes to SproutGate: "METHOD path"."""
    seen: list[str] = []
    context.on(
        "request",
        lambda r: (
            seen.append(f"{r.method} {urlsplit(r.url).path}") if r.url.startswith(provider.issuer) else None
        ),
    )
    return seen


def test_signed_in_through_apache_the_spa_gets_a_code_without_a_password(
    provider: Provider, apache: ApacheRp, spa: SpaSite, context: BrowserContext
) -> None:
    user = provider.create_user()
    seen = _sproutgate_pages(context, provider)
    page = context.new_page()
    page.goto(f"{apache.origin}/app/claims")
    sign_in_at_sproutgate(page, user["account"])
    page.wait_for_url(f"{apache.origin}/app/claims")
    at_apache = claims_on(page)
    assert "POST /login" in seen

    seen.clear()
    page.goto(f"{spa.origin}/")
    page.click("#sign-in")
    page.wait_for_url(f"{spa.origin}/")
    wait_state(page, "signed-in")
    # Straight back with a code: no sign-in page was shown, no password posted.
    assert "GET /oauth2/authorize" in seen, seen
    assert not [s for s in seen if s.endswith("/login") or s.startswith("POST /login")], seen
    at_spa = tokens(page)["profile"]
    assert at_spa["sub"] == at_apache["sub"] and at_spa["aud"] != at_apache["aud"]
    assert at_spa["sid"] == at_apache["sid"]  # one SSO session, two clients


def test_signed_in_through_the_spa_apache_gets_a_code_without_a_password(
    provider: Provider, apache: ApacheRp, spa: SpaSite, context: BrowserContext
) -> None:
    user = provider.create_user()
    seen = _sproutgate_pages(context, provider)
    page = context.new_page()
    page.goto(f"{spa.origin}/")
    page.click("#sign-in")
    sign_in_at_sproutgate(page, user["account"])
    page.wait_for_url(f"{spa.origin}/")
    wait_state(page, "signed-in")
    sub = tokens(page)["profile"]["sub"]

    seen.clear()
    page.goto(f"{apache.origin}/app/claims")
    page.wait_for_url(f"{apache.origin}/app/claims")
    assert claims_on(page)["sub"] == sub
    assert not [s for s in seen if "/login" in s], seen


def test_signing_out_through_apache_ends_single_sign_on_for_the_spa(
    provider: Provider, apache: ApacheRp, spa: SpaSite, context: BrowserContext
) -> None:
    user = provider.create_user()
    page = context.new_page()
    page.goto(f"{apache.origin}/app/claims")
    sign_in_at_sproutgate(page, user["account"])
    page.wait_for_url(f"{apache.origin}/app/claims")
    page.goto(f"{apache.redirect_uri}?logout={quote(apache.logged_out_url, safe='')}")
    page.wait_for_url(apache.logged_out_url)

    page.goto(f"{spa.origin}/")
    page.click("#sign-in")
    page.wait_for_url(f"{provider.issuer}/login*")
    assert page.locator("#f-password").is_visible()


def test_signing_out_through_the_spa_ends_the_apache_session_by_back_channel(
    provider: Provider, apache: ApacheRp, spa: SpaSite, context: BrowserContext
) -> None:
    user = provider.create_user()
    page = context.new_page()
    page.goto(f"{apache.origin}/app/claims")
    sign_in_at_sproutgate(page, user["account"])
    page.wait_for_url(f"{apache.origin}/app/claims")
    page.goto(f"{spa.origin}/")
    page.click("#sign-in")
    page.wait_for_url(f"{spa.origin}/")
    wait_state(page, "signed-in")

    # The SPA signs out at SproutGate; the browser never goes back to Apache, yet Apache's own
    # session ends: SproutGate posted a logout token to it, which mod_auth_openidc checked.
    page.click("#sign-out")
    page.wait_for_url(f"{spa.origin}/")
    wait_state(page, "signed-out")
    deadline = time.monotonic() + 20
    while True:
        page.goto(f"{apache.origin}/app/claims")
        if page.url.startswith(provider.issuer):
            break
        assert time.monotonic() < deadline, f"Apache still signed in: {apache.error_log()}"
        time.sleep(0.3)
    assert page.url.startswith(f"{provider.issuer}/login"), page.url
    posted = [line for line in apache.access_log().splitlines() if "logout=backchannel" in line]
    assert posted and posted[-1].endswith('"POST /app/redirect_uri?logout=backchannel HTTP/1.1" 200'), posted
