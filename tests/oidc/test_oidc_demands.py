"""What an authorization request asks for holds on the server, not only in the links the pages
follow: a fresh sign-in asked for with ``prompt=login`` or ``max_age`` (OpenID Connect Core
§3.1.2.1) cannot be skipped by going to, or editing, the request the sign-in page returns to;
and a code issued before its app was disconnected can no longer be exchanged (RFC 6749 §4.1.2,
§10.5). Both engines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from logout_support import page_csrf, register_app, sign_in_to_app
from oidc_support import CALLBACK, auth_time_of, exchange_returned, make_person, pkce_pair, query_of, sign_in

from support.harness import AppHarness

pytestmark = pytest.mark.both_engines


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(make_settings(admin_token="oidc-demands-admin-token"))


def _request(client_id: str, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile",
        "state": "st-demand",
        "nonce": "n-demand",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def _return_path(login_location: str) -> str:
    """The authorization request the sign-in page would return to (its ``next``)."""
    return parse_qs(urlsplit(login_location).query)["next"][0]


@dataclass
class _SignedIn:
    """A first-party app, a person and a browser that signed in to it two minutes ago."""

    client_id: str
    secret: str
    person: dict[str, Any]
    browser: httpx.AsyncClient
    first: dict[str, Any]


async def _signed_in_a_while_ago(h: AppHarness, **headers: str) -> _SignedIn:
    client_id, secret = await register_app(h)
    person = await make_person(h)
    browser = h.new_client(**headers)
    first = await sign_in_to_app(h, browser, client_id, secret, person)
    h.clock.advance(120)
    return _SignedIn(client_id, secret, person, browser, first)


async def _sign_in_again(browser: httpx.AsyncClient, back: str, account: str) -> httpx.Response:
    """The sign-in page the authorization endpoint sent the browser to, filled in."""
    return await sign_in(browser, f"/login?{urlencode({'next': back, 'reauth': '1'})}", account)


@pytest.mark.parametrize("asked", [{"prompt": "login"}, {"max_age": "60"}, {"max_age": "0"}])
async def test_a_fresh_sign_in_cannot_be_skipped_by_following_or_editing_the_return_link(h, asked):
    app = await _signed_in_a_while_ago(h, **{"Accept-Language": "en"})
    client_id, secret, person, browser = app.client_id, app.secret, app.person, app.browser
    verifier, challenge = pkce_pair()

    r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge, **asked))
    assert r.status_code == 303 and r.headers["location"].startswith("/login?")
    back = _return_path(r.headers["location"])
    # The link back no longer names prompt=login / max_age (so a sign-in ends the loop) ...
    assert "prompt=" not in back and "max_age=" not in back
    # ... yet following it without signing in issues no code: the sign-in page again.
    r = await browser.get(back)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?"), r.headers["location"]
    # Nor does an edited request keeping the app's state, nonce and challenge (other scopes,
    # other parameters, prompt=none).
    for edit in ({"scope": "openid"}, {"login_hint": "x"}, {"prompt": "none"}):
        r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge, **edit))
        location = r.headers["location"]
        assert "code=" not in location, (edit, location)
        if edit.get("prompt") == "none":
            assert query_of(location)["error"] == "login_required"
    # A request that asks for less later cannot relax the demand either.
    r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge, max_age="100000"))
    assert "code=" not in r.headers["location"]
    r = await browser.get(back)
    assert r.headers["location"].startswith("/login?")

    # Signing in answers it, once: the code carries the new sign-in's time.
    r = await _sign_in_again(browser, back, person["account"])
    assert r.status_code == 303 and r.headers["location"] == back
    r = await browser.get(back)
    assert r.status_code == 303 and "code=" in r.headers["location"]
    token = await exchange_returned(h, client_id, secret, r.headers["location"], verifier)
    assert token.status_code == 200, token.text
    assert auth_time_of(h, token.json()) >= auth_time_of(h, app.first) + 120


async def test_another_request_of_the_same_app_is_not_held_back(h):
    app = await _signed_in_a_while_ago(h)
    client_id, browser = app.client_id, app.browser
    _, challenge = pkce_pair()
    r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge, prompt="login"))
    assert r.headers["location"].startswith("/login?")
    # A new request of the app (its own state, nonce and challenge) is single sign-on as before.
    _, other = pkce_pair()
    r = await browser.get(
        "/oauth2/authorize", params=_request(client_id, other, state="st-other", nonce="n-other")
    )
    assert r.status_code == 303 and "code=" in r.headers["location"]


async def test_an_unsigned_browser_leaves_no_demand(h):
    client_id, _ = await register_app(h)
    _, challenge = pkce_pair()
    r = await h.new_client().get("/oauth2/authorize", params=_request(client_id, challenge, prompt="login"))
    assert r.headers["location"].startswith("/login?")
    from sproutgate.domain.housekeeping.service import purge_once

    h.clock.advance(h.services.settings.web_session_ttl_seconds + 1)
    assert (await purge_once(h.services.db, h.clock))["oidc_sign_in_demands"] == 0


async def test_demands_are_purged_when_no_older_sign_in_can_be_alive(h):
    from sproutgate.domain.housekeeping.service import purge_once

    client_id, secret = await register_app(h)
    person = await make_person(h)
    browser = h.new_client()
    await sign_in_to_app(h, browser, client_id, secret, person)
    _, challenge = pkce_pair()
    await browser.get("/oauth2/authorize", params=_request(client_id, challenge, prompt="login"))
    assert (await purge_once(h.services.db, h.clock))["oidc_sign_in_demands"] == 0
    h.clock.advance(h.services.settings.web_session_ttl_seconds + 1)
    assert (await purge_once(h.services.db, h.clock))["oidc_sign_in_demands"] == 1


async def test_a_code_issued_before_the_app_was_disconnected_is_invalid_grant(h):
    client_id, secret = await register_app(h, first_party=False, name="Orchard Notes")
    person = await make_person(h)
    browser = h.new_client(**{"Accept-Language": "en"})
    await sign_in_to_app(h, browser, client_id, secret, person, scope="openid profile offline_access")
    # A code issued just now (well within its 60 seconds), not exchanged yet.
    verifier, challenge = pkce_pair()
    params = _request(client_id, challenge, scope="openid profile offline_access")
    r = await browser.get("/oauth2/authorize", params=params)
    assert r.status_code == 303 and "code=" in r.headers["location"], r.headers["location"]
    pending = r.headers["location"]
    # And one of another app, which the disconnect does not touch.
    other, other_secret = await register_app(h, name="Family Board")
    await sign_in_to_app(h, browser, other, other_secret, person)
    other_verifier, other_challenge = pkce_pair()
    r = await browser.get("/oauth2/authorize", params=_request(other, other_challenge))
    other_pending = r.headers["location"]

    r = await browser.post(f"/account/apps/{client_id}/revoke", data={"csrf_token": await page_csrf(browser)})
    assert r.status_code == 303

    h.clock.advance(5)
    r = await exchange_returned(h, client_id, secret, pending, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    # Nothing was granted: the app is not connected again.
    page = await browser.get("/account")
    assert f'data-client-id="{client_id}"' not in page.text
    r = await exchange_returned(h, other, other_secret, other_pending, other_verifier)
    assert r.status_code == 200, r.text


async def test_disconnecting_changes_nothing_of_another_persons_codes(h):
    client_id, secret = await register_app(h)
    alice, bob = await make_person(h), await make_person(h)
    alice_browser, bob_browser = h.new_client(), h.new_client()
    await sign_in_to_app(h, alice_browser, client_id, secret, alice)
    await sign_in_to_app(h, bob_browser, client_id, secret, bob)
    verifier, challenge = pkce_pair()
    r = await bob_browser.get("/oauth2/authorize", params=_request(client_id, challenge))
    bob_pending = r.headers["location"]
    r = await alice_browser.post(
        f"/account/apps/{client_id}/revoke", data={"csrf_token": await page_csrf(alice_browser)}
    )
    assert r.status_code == 303
    r = await exchange_returned(h, client_id, secret, bob_pending, verifier)
    assert r.status_code == 200, r.text


async def test_a_later_demand_with_the_same_binding_asks_again(h):
    app = await _signed_in_a_while_ago(h)
    client_id, secret, person, browser = app.client_id, app.secret, app.person, app.browser
    verifier, challenge = pkce_pair()
    r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge, prompt="login"))
    back = _return_path(r.headers["location"])
    r = await _sign_in_again(browser, back, person["account"])
    assert r.headers["location"] == back
    # The same request again later: signed in 120 s before it, which no longer counts.
    h.clock.advance(120)
    r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge, prompt="login"))
    assert r.headers["location"].startswith("/login?")
    r = await browser.get(back)
    assert r.headers["location"].startswith("/login?"), r.headers["location"]
    await _sign_in_again(browser, back, person["account"])
    r = await browser.get(back)
    assert "code=" in r.headers["location"]
    assert (await exchange_returned(h, client_id, secret, r.headers["location"], verifier)).status_code == 200


async def test_a_disconnected_code_stays_refused_on_a_clock_a_second_behind(h):
    # Another instance whose clock is behind, or a redemption that read the time just before
    # the disconnect committed: the code is refused by a mark, not by a time it compares.
    client_id, secret = await register_app(h)
    person = await make_person(h)
    browser = h.new_client()
    await sign_in_to_app(h, browser, client_id, secret, person)
    verifier, challenge = pkce_pair()
    r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge))
    pending = r.headers["location"]
    r = await browser.post(f"/account/apps/{client_id}/revoke", data={"csrf_token": await page_csrf(browser)})
    assert r.status_code == 303
    h.clock.advance(-1)
    r = await exchange_returned(h, client_id, secret, pending, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


async def test_a_redemption_racing_the_disconnect_leaves_no_live_grant(h):
    import asyncio

    client_id, secret = await register_app(h, first_party=False, name="Racing Notes")
    person = await make_person(h)
    browser = h.new_client()
    await sign_in_to_app(h, browser, client_id, secret, person, scope="openid profile offline_access")
    for _ in range(8):
        verifier, challenge = pkce_pair()
        r = await browser.get(
            "/oauth2/authorize", params=_request(client_id, challenge, scope="openid profile offline_access")
        )
        if "code=" not in r.headers["location"]:  # disconnected: consent again
            await sign_in_to_app(h, browser, client_id, secret, person, scope="openid profile offline_access")
            r = await browser.get(
                "/oauth2/authorize",
                params=_request(client_id, challenge, scope="openid profile offline_access"),
            )
        pending = r.headers["location"]
        csrf = await page_csrf(browser)
        exchanged, revoked = await asyncio.gather(
            exchange_returned(h, client_id, secret, pending, verifier),
            browser.post(f"/account/apps/{client_id}/revoke", data={"csrf_token": csrf}),
        )
        assert revoked.status_code == 303
        # Whichever came first, once both are done the app holds nothing that works.
        if exchanged.status_code == 200:
            tokens = exchanged.json()
            r = await h.client.get(
                "/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            )
            assert r.status_code == 401
            r = await h.client.post(
                "/oauth2/token",
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                auth=(client_id, secret),
            )
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        else:
            assert exchanged.json()["error"] == "invalid_grant", exchanged.text
        page = await browser.get("/account")
        assert f'data-client-id="{client_id}"' not in page.text
