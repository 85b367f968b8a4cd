"""A way into an account added with only a session (issue 11 item 2's class, for the OpenID
Connect provider): whoever holds a copy of the pages' session cookie could let an app (a
registered native app with a loopback redirect URI, on their own machine) take an
``offline_access`` grant, which outlives the owner's sign-out. A sign-in older than
``SPROUTGATE_RECENT_AUTH_SECONDS`` now signs in again first (tests/oidc/
test_oidc_lasting_grants.py); within that window it is still access the owner must learn of: the
first lasting grant of an app mails the owner an ``app_connected`` notice (in their language,
saying from where and linking to the account page's connected apps). docs/security.md,
"Security notices"."""

from __future__ import annotations

import pytest
from oidc_support import make_person, pkce_pair, query_of, register_client, sign_in

pytestmark = pytest.mark.both_engines

LOOPBACK = "http://127.0.0.1/callback"


@pytest.fixture
async def h(make_harness, make_settings):
    return await make_harness(make_settings(admin_token="oidc-app-notice-admin"))


async def grant(h, browser, client_id: str, scope: str) -> dict:
    """An authorization request answered through ``browser``'s sign-in, the code redeemed by
    the public client on a loopback port."""
    verifier, challenge = pkce_pair()
    redirect = "http://127.0.0.1:53117/callback"
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": scope,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    r = await browser.get("/oauth2/authorize", params=params)
    assert r.status_code == 303 and r.headers["location"].startswith(redirect), r.text
    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(r.headers["location"])["code"],
            "redirect_uri": redirect,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert r.status_code == 200, r.text
    return r.json()


def _request(client_id: str, scope: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": "http://127.0.0.1:53117/callback",
        "scope": scope,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


async def signed_in(h, person: dict):
    browser = h.new_client(**{"User-Agent": "OwnerBrowser/1.0"})
    r = await browser.get("/oauth2/authorize", params={"client_id": "x"})  # any page sets the CSRF nonce
    r = await sign_in(browser, "/login", person["account"])
    assert r.status_code == 303, r.text
    return browser


async def notices(h, person: dict) -> list[dict]:
    return [m for m in await h.mailbox(person["email"]) if m["kind"] == "app_connected"]


async def test_a_copied_cookie_giving_an_app_lasting_access_is_told_to_the_owner(h):
    client_id, _ = await register_client(
        h, name="Pocket Notes", public=True, first_party=True, redirect_uris=(LOOPBACK,)
    )
    person = await make_person(h)
    owner = await signed_in(h, person)
    h.clock.advance(3 * 3600)  # long after the sign-in: nothing recent about it
    thief = h.new_client(**{"User-Agent": "ThiefTool/2.0"})
    thief.cookies.set("sg_session", owner.cookies["sg_session"])
    # Lasting access from a sign-in that old asks for the password first (no code).
    r = await thief.get("/oauth2/authorize", params=_request(client_id, "openid offline_access"))
    assert r.status_code == 303 and r.headers["location"].startswith("/login?"), r.headers["location"]
    assert await notices(h, person) == []

    # A cookie copied within SPROUTGATE_RECENT_AUTH_SECONDS of the sign-in still gets one: told.
    owner = await signed_in(h, person)
    h.clock.advance(60)
    thief.cookies.set("sg_session", owner.cookies["sg_session"])
    issued = await grant(h, thief, client_id, "openid offline_access")
    assert issued["refresh_token"]

    found = await notices(h, person)
    assert len(found) == 1, await h.mailbox(person["email"])
    mail = found[0]
    assert "Pocket Notes" in mail["text"] and "/account#apps" in mail["text"]
    assert "长期访问" in mail["subject"]  # the person's language (zh-CN by default)
    assert "OwnerBrowser/1.0" in mail["text"]  # where: the browser sign-in it came through
    assert issued["refresh_token"] not in mail["text"] and issued["access_token"] not in mail["text"]


async def test_only_an_apps_first_lasting_grant_is_mailed(h):
    client_id, _ = await register_client(h, name="Diary", public=True, redirect_uris=(LOOPBACK,))
    person = await make_person(h)
    r = await h.client.post(
        "/api/v1/auth/sessions", json={"email": person["email"], "password": "Sprout#Orchard2026"}
    )
    r = await h.client.patch(
        "/api/v1/users/me",
        json={"locale": "en"},
        headers={"Authorization": f"Bearer {r.json()['access_token']}"},
    )
    assert r.status_code == 200, r.text
    browser = await signed_in(h, person)

    await grant(h, browser, client_id, "openid profile")  # ends with the sign-in: no notice
    assert await notices(h, person) == []
    await grant(h, browser, client_id, "openid offline_access")
    await grant(h, browser, client_id, "openid offline_access")  # a second device, say
    found = await notices(h, person)
    assert len(found) == 1 and "Diary" in found[0]["text"]
    assert found[0]["subject"].endswith("An app can now use your account")

    # Another app's lasting grant is news of its own.
    other, _ = await register_client(h, name="Other app", public=True, redirect_uris=(LOOPBACK,))
    await grant(h, browser, other, "openid offline_access")
    assert sorted("Other app" in m["text"] for m in await notices(h, person)) == [False, True]
