"""Apache httpd with mod_auth_openidc (an OpenID-certified relying party, Debian's packages)
protects /app on loopback as a confidential first-party client of SproutGate; headless Chromium
signs in through SproutGate's hosted pages and reaches the page behind it, which lists the
claims Apache passes on. Apache's own logout ends SproutGate's single sign-on session too."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Request
from rp_support import APACHE_SCOPES, ApacheRp, Provider, claims_on, sign_in_at_sproutgate

pytestmark = pytest.mark.browser


def _authorize_requests(context: BrowserContext, provider: Provider) -> list[dict[str, list[str]]]:
    """The query of every request the browser makes to SproutGate's authorization endpoint."""
    seen: list[dict[str, list[str]]] = []

    def record(request: Request) -> None:
        url = urlsplit(request.url)
        if request.url.startswith(provider.issuer) and url.path == "/oauth2/authorize":
            seen.append(parse_qs(url.query))

    context.on("request", record)
    return seen


def test_apache_signs_in_through_sproutgate_and_shows_the_claims(
    provider: Provider, apache: ApacheRp, context: BrowserContext
) -> None:
    user = provider.create_user()
    authorize = _authorize_requests(context, provider)
    page = context.new_page()
    page.goto(f"{apache.origin}/app/claims")
    # mod_auth_openidc sent the browser to SproutGate, which shows its own sign-in page.
    assert page.url.startswith(f"{provider.issuer}/login"), (page.url, apache.error_log())
    assert len(authorize) == 1, authorize
    sent = authorize[0]
    assert sent["client_id"] == [apache.client_id] and sent["redirect_uri"] == [apache.redirect_uri]
    assert sent["response_type"] == ["code"] and sent["code_challenge_method"] == ["S256"]
    assert sent["state"] and sent["nonce"]

    sign_in_at_sproutgate(page, user["account"])
    page.wait_for_url(f"{apache.origin}/app/claims")
    claims = claims_on(page)
    assert claims, (page.inner_text("body"), apache.error_log())
    assert claims["iss"] == provider.issuer
    assert claims["aud"] == apache.client_id
    assert claims["preferred_username"] == user["account"] == claims["REMOTE_USER"]
    assert claims["name"] == user["username"]
    assert claims["email"] == user["email"]
    assert claims["level"] == str(user["level"])
    assert claims["sub"] and claims["sub"] != user["account"]
    # The user's password never reached the app: nothing Apache passes on contains it.
    assert user["password"] not in page.inner_text("body")


def test_a_person_signed_in_at_sproutgate_reaches_the_app_without_typing_a_password(
    provider: Provider, apache: ApacheRp, context: BrowserContext
) -> None:
    user = provider.create_user()
    page = context.new_page()
    page.goto(f"{provider.issuer}/login")
    sign_in_at_sproutgate(page, user["account"])
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/account", page.url

    typed: list[str] = []
    context.on("request", lambda r: typed.append(r.url) if r.method == "POST" else None)
    page.goto(f"{apache.origin}/app/claims")
    page.wait_for_url(f"{apache.origin}/app/claims")
    assert claims_on(page)["preferred_username"] == user["account"], apache.error_log()
    assert not [url for url in typed if url.startswith(provider.issuer)], typed


def test_apache_logout_ends_the_single_sign_on_session(
    provider: Provider, apache: ApacheRp, context: BrowserContext
) -> None:
    user = provider.create_user()
    page = context.new_page()
    page.goto(f"{apache.origin}/app/claims")
    sign_in_at_sproutgate(page, user["account"])
    page.wait_for_url(f"{apache.origin}/app/claims")

    # mod_auth_openidc's logout: its session ends, then SproutGate's end-session endpoint (with
    # id_token_hint and the registered post_logout_redirect_uri) ends the SSO session.
    ended: list[str] = []
    context.on("request", lambda r: ended.append(r.url) if urlsplit(r.url).path == "/oauth2/logout" else None)
    page.goto(f"{apache.redirect_uri}?logout={quote(apache.logged_out_url, safe='')}")
    page.wait_for_url(apache.logged_out_url)
    assert page.locator("h1").inner_text() == "Signed out of the app"
    assert ended and ended[0].startswith(f"{provider.issuer}/oauth2/logout"), ended
    hint = parse_qs(urlsplit(ended[0]).query)
    assert hint["id_token_hint"] and hint["post_logout_redirect_uri"] == [apache.logged_out_url]

    # Signed out at SproutGate as well: its account page and the app both ask for the password.
    page.goto(f"{provider.issuer}/account")
    assert urlsplit(page.url).path == "/login", page.url
    page.goto(f"{apache.origin}/app/claims")
    assert page.url.startswith(f"{provider.issuer}/login"), page.url
    assert page.locator("#f-password").is_visible()


def test_a_tampered_return_to_apache_is_refused_and_signs_nobody_in(
    provider: Provider, apache: ApacheRp, context: BrowserContext
) -> None:
    page = context.new_page()
    page.goto(f"{apache.origin}/app/claims")
    assert page.url.startswith(f"{provider.issuer}/login")
    # A code and state made up by someone else, sent to the app's redirect URI.
    response = page.goto(f"{apache.redirect_uri}?code=forged-code&state=forged-state")
    assert response is not None and response.status >= 400
    page.goto(f"{apache.origin}/app/claims")
    assert page.url.startswith(f"{provider.issuer}/login"), page.url


@pytest.fixture(scope="module")
def apache_with_a_wrong_secret(provider: Provider) -> Iterator[ApacheRp]:
    """Another Apache, registered as a client of its own but configured with a wrong secret."""
    rp = ApacheRp(issuer=provider.issuer)
    created = provider.create_client("Apache with a typo", [rp.redirect_uri], "--first-party", *APACHE_SCOPES)
    rp.client_id, rp.client_secret = created["client_id"], "wrong-" + created["client_secret"]
    try:
        rp.start()
    except Exception:
        rp.close()
        raise
    yield rp
    rp.close()


def test_apache_with_a_wrong_client_secret_signs_nobody_in(
    provider: Provider, apache_with_a_wrong_secret: ApacheRp, context: BrowserContext
) -> None:
    rp = apache_with_a_wrong_secret
    user = provider.create_user()
    page = context.new_page()
    page.goto(f"{rp.origin}/app/claims")
    assert page.url.startswith(f"{provider.issuer}/login"), (page.url, page.content()[:500], rp.error_log())
    sign_in_at_sproutgate(page, user["account"])
    page.wait_for_url(f"{rp.origin}/app/redirect_uri*")
    assert not claims_on(page)
    # SproutGate refused the code exchange as RFC 6749 §5.2 says; the module logged the answer.
    assert "invalid_client" in rp.error_log(), rp.error_log()
    # Again: signed in at SproutGate, so straight back with a new code, refused the same way.
    page.goto(f"{rp.origin}/app/claims")
    assert urlsplit(page.url).path == "/app/redirect_uri" and not claims_on(page), page.url
