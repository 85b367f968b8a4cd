"""Grants of the OpenID Connect provider that outlived the registration or the credential they
were issued under (issue 11 item 3's class, found by attacking the provider from outside; each
test failed before its fix):

- an authorization code issued to a redirect URI the administrator has since removed from the
  client (say, a callback on a domain that was lost) was still exchanged for tokens;
- a client-credentials access token obtained before the client's secret was rotated (the usual
  answer to a leaked secret) was still ``active`` at introspection until it expired;
- introspection of an access token issued before a scope was taken from its client still
  named that scope, where userinfo and refreshes had stopped releasing it;
- and the other way round, a grant that ended too easily: anyone who saw a used code's URL
  could replay it for a public client (client_id alone) within the day it is kept and so
  revoke the person's grant, without the PKCE verifier.

docs/security.md, "The OpenID Connect provider"."""

from __future__ import annotations

import pytest
from oidc_support import (
    CALLBACK,
    code_for,
    make_person,
    pkce_pair,
    query_of,
    register_client,
    sign_in,
)
from oidc_support import exchange_code as exchange

pytestmark = pytest.mark.both_engines

ADMIN = "oidc-outlived-admin-token"
OTHER = "https://app.example/other-callback"


@pytest.fixture
async def h(make_harness, make_settings):
    return await make_harness(make_settings(admin_token=ADMIN))


def admin() -> dict[str, str]:
    return {"X-Admin-Token": ADMIN}


async def set_redirect_uris(h, client_id: str, uris: list[str]) -> None:
    r = await h.client.put(f"/api/admin/clients/{client_id}", json={"redirectUris": uris}, headers=admin())
    assert r.status_code == 200, r.text


async def introspect(h, client_id: str, secret: str, token: str) -> dict:
    r = await h.client.post("/oauth2/introspect", data={"token": token}, auth=(client_id, secret))
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_code_sent_to_a_redirect_uri_removed_since_gives_no_tokens(h):
    client_id, secret = await register_client(h, redirect_uris=(CALLBACK, OTHER))
    person = await make_person(h)
    code, verifier = await code_for(h, client_id, person)
    await set_redirect_uris(h, client_id, [OTHER])  # the administrator drops the callback

    r = await exchange(h, client_id, secret, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert "access_token" not in r.json()


async def test_a_code_stays_good_while_its_redirect_uri_is_registered(h):
    # Other registration changes (another URI added) leave an outstanding code alone.
    client_id, secret = await register_client(h)
    person = await make_person(h)
    code, verifier = await code_for(h, client_id, person)
    await set_redirect_uris(h, client_id, [CALLBACK, OTHER])
    r = await exchange(h, client_id, secret, code, verifier)
    assert r.status_code == 200, r.text


async def test_a_loopback_code_stays_good_on_another_port_of_the_registered_uri(h):
    # RFC 8252 §7.3: the port of a loopback URI may vary; the check after the fact agrees.
    registered = "http://127.0.0.1/cb"
    client_id, _ = await register_client(h, public=True, redirect_uris=(registered,))
    person = await make_person(h)
    browser = h.new_client()
    verifier, challenge = pkce_pair()
    used = "http://127.0.0.1:51004/cb"
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": used,
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    r = await browser.get("/oauth2/authorize", params=params)
    r = await sign_in(browser, r.headers["location"], person["account"])
    r = await browser.get(r.headers["location"])
    assert r.headers["location"].startswith(used), r.text
    code = query_of(r.headers["location"])["code"]
    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": used,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert r.status_code == 200, r.text


async def client_credentials_token(h, client_id: str, secret: str) -> str:
    r = await h.client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "profile"},
        auth=(client_id, secret),
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


async def test_client_credentials_tokens_from_before_a_secret_rotation_are_inactive(h):
    client_id, secret = await register_client(
        h, grant_types=("authorization_code", "refresh_token", "client_credentials")
    )
    stolen = await client_credentials_token(h, client_id, secret)  # taken with the leaked secret
    assert (await introspect(h, client_id, secret, stolen))["active"] is True

    h.clock.advance(2)  # token times are whole seconds
    r = await h.client.post(f"/api/admin/clients/{client_id}/secret", headers=admin())
    assert r.status_code == 200, r.text
    new_secret = r.json()["clientSecret"]

    assert await introspect(h, client_id, new_secret, stolen) == {"active": False}
    fresh = await client_credentials_token(h, client_id, new_secret)
    assert (await introspect(h, client_id, new_secret, fresh))["active"] is True


async def test_client_credentials_tokens_end_when_the_client_may_no_longer_use_the_grant(h):
    client_id, secret = await register_client(
        h, grant_types=("authorization_code", "refresh_token", "client_credentials")
    )
    token = await client_credentials_token(h, client_id, secret)
    r = await h.client.put(
        f"/api/admin/clients/{client_id}",
        json={"grantTypes": ["authorization_code", "refresh_token"]},
        headers=admin(),
    )
    assert r.status_code == 200, r.text
    assert await introspect(h, client_id, secret, token) == {"active": False}


async def test_introspection_names_only_the_scopes_the_client_still_has(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)
    code, verifier = await code_for(h, client_id, person, "openid profile email offline_access")
    issued = (await exchange(h, client_id, secret, code, verifier)).json()
    r = await h.client.put(
        f"/api/admin/clients/{client_id}",
        json={"scopes": ["openid", "offline_access"]},
        headers=admin(),
    )
    assert r.status_code == 200, r.text

    for token in (issued["access_token"], issued["refresh_token"]):
        seen = await introspect(h, client_id, secret, token)
        assert seen["active"] is True
        assert seen["scope"] == "openid offline_access", seen
        assert "username" not in seen  # profile was taken away, and with it the name


async def test_a_replayed_code_without_its_verifier_revokes_nothing(h):
    # A used code lingers in browser history, proxy logs and Referer headers, and is kept a day
    # so that a replay can still revoke what it gave (RFC 6749 §4.1.2). A public client
    # authenticates with its client_id alone, so anyone who saw the URL could replay the code
    # and end the person's grant (offline ones included). Only a replay that proves what a
    # redemption proves (the redirect URI and the PKCE verifier) revokes.
    client_id, _ = await register_client(h, public=True, redirect_uris=(CALLBACK,))
    person = await make_person(h)
    code, verifier = await code_for(h, client_id, person, "openid offline_access")
    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert r.status_code == 200, r.text
    issued = r.json()

    h.clock.advance(3600)  # hours later, from a log line
    async with h.new_client() as stranger:
        for data in (
            {"code_verifier": "x" * 43, "redirect_uri": CALLBACK},
            {"redirect_uri": CALLBACK},
            {"code_verifier": verifier, "redirect_uri": CALLBACK + "/other"},
        ):
            r = await stranger.post(
                "/oauth2/token",
                data={"grant_type": "authorization_code", "code": code, "client_id": client_id, **data},
            )
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text

    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": issued["refresh_token"],
            "client_id": client_id,
        },
    )
    assert r.status_code == 200, r.text
    renewed = r.json()

    # The same code with its verifier is a replay by whoever redeemed it: the grant ends.
    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": renewed["refresh_token"],
            "client_id": client_id,
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
