"""The Python snippets of docs/oidc.md, run as written: a native app (RFC 8252: system browser,
loopback redirect on a port of the OS's choosing, PKCE) with Authlib, Chromium playing the
system browser; a backend service with the client credentials grant, and the app receiving its
token checking it with the JWKS and by introspection."""

from __future__ import annotations

import queue
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from native_app import renew, sign_in
from playwright.sync_api import BrowserContext
from rp_support import Provider, sign_in_at_sproutgate
from service_client import check_access_token, introspect, service_token

pytestmark = pytest.mark.browser


def test_a_native_app_signs_in_with_a_loopback_redirect_and_pkce(
    provider: Provider, context: BrowserContext
) -> None:
    user = provider.create_user()
    # Registered without a port: the app listens wherever the OS lets it (RFC 8252 §7.3).
    app = provider.create_client(
        "Desktop app",
        ["http://127.0.0.1/callback"],
        "--public",
        "--first-party",
        "--scope",
        "openid",
        "--scope",
        "profile",
        "--scope",
        "offline_access",
    )
    urls: queue.Queue[str] = queue.Queue()
    outcome: dict[str, Any] = {}

    def run_app() -> None:
        try:
            outcome["signed_in"] = sign_in(provider.issuer, app["client_id"], open_browser=urls.put)
        except Exception as exc:  # reported by the test below
            outcome["error"] = exc

    worker = threading.Thread(target=run_app, daemon=True)
    worker.start()
    url = urls.get(timeout=30)
    sent = parse_qs(urlsplit(url).query)
    assert sent["code_challenge_method"] == ["S256"] and sent["nonce"] and sent["state"]
    assert urlsplit(sent["redirect_uri"][0]).port not in (None, 80)
    page = context.new_page()
    page.goto(url)
    sign_in_at_sproutgate(page, user["account"])
    page.wait_for_url("http://127.0.0.1:*/callback?*")
    assert "go back to the app" in page.inner_text("body")
    worker.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    signed_in = outcome["signed_in"]
    assert signed_in["claims"]["preferred_username"] == user["account"]
    assert signed_in["claims"]["aud"] == app["client_id"]
    assert "email" not in signed_in["claims"]  # not asked for, not given

    renewed = renew(provider.issuer, app["client_id"], signed_in["refresh_token"])
    assert renewed["access_token"] != signed_in["access_token"]
    assert renewed["refresh_token"] != signed_in["refresh_token"]
    r = provider.http.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {renewed['access_token']}"})
    assert r.status_code == 200 and r.json()["sub"] == signed_in["claims"]["sub"], r.text


def test_a_service_token_is_checked_with_the_jwks_and_by_introspection(provider: Provider) -> None:
    caller = provider.create_client(
        "Billing service", [], "--grant-type", "client_credentials", "--scope", "sproutgate"
    )
    api = provider.create_client("Coins API", [], "--grant-type", "client_credentials")
    token = service_token(provider.issuer, caller["client_id"], caller["client_secret"], "sproutgate")
    assert token["token_type"].lower() == "bearer" and "refresh_token" not in token

    claims = check_access_token(provider.issuer, token["access_token"], callers=[caller["client_id"]])
    assert claims["sub"] == caller["client_id"] == claims["client_id"] == claims["aud"]
    assert claims["scope"] == "sproutgate"
    with pytest.raises(jwt.InvalidAudienceError):  # a caller this app does not take calls from
        check_access_token(provider.issuer, token["access_token"], callers=[api["client_id"]])
    seen = introspect(provider.issuer, api["client_id"], api["client_secret"], token["access_token"])
    assert seen["active"] is True and seen["client_id"] == caller["client_id"]

    # Bad input: a wrong secret is refused (RFC 6749 §5.2), an ID-token-shaped JWT is not an
    # access token, a token that is not SproutGate's is inactive.
    with pytest.raises(Exception) as refused:
        service_token(provider.issuer, caller["client_id"], "not-the-secret", "sproutgate")
    assert "invalid_client" in str(refused.value)
    forged = jwt.encode(
        {"iss": provider.issuer, "sub": "x"}, "k" * 32, algorithm="HS256", headers={"typ": "at+jwt"}
    )
    with pytest.raises(jwt.PyJWTError):  # no key of SproutGate's signed it
        check_access_token(provider.issuer, forged, callers=["x"])
    assert introspect(provider.issuer, api["client_id"], api["client_secret"], forged) == {"active": False}
