"""Faults found by attacking the OpenID Connect provider as an outsider would (each test failed
before its fix): an authorization parameter that crashed the endpoint, scopes that outlived
their client's registration, and an account name introspection told without the ``profile``
scope. docs/security.md, "OpenID Connect provider"."""

from __future__ import annotations

import pytest
from oidc_support import (
    CALLBACK,
    code_for,
    exchange_code,
    make_person,
    query_of,
    register_client,
)

pytestmark = pytest.mark.both_engines

ADMIN = "oidc-hardening-admin-token"


@pytest.fixture
async def h(make_harness, make_settings):
    return await make_harness(make_settings(admin_token=ADMIN))


async def tokens(h, client_id: str, secret: str, person: dict, scope: str, before_exchange=None) -> dict:
    """A code flow through the hosted sign-in page, then the code exchanged (client_secret_basic);
    ``before_exchange`` (a coroutine function) runs between the two."""
    code, verifier = await code_for(h, client_id, person, scope)
    if before_exchange is not None:
        await before_exchange()
    r = await exchange_code(h, client_id, secret, code, verifier)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("max_age", ["²", "٣", "１", "+5", " 5", "5 ", "-1", "1" * 11])
async def test_max_age_of_anything_but_ascii_digits_goes_back_as_invalid_request(h, max_age):
    # "²".isdigit() is True and int("²") raises: the endpoint answered 500 before.
    client_id, _ = await register_client(h)
    r = await h.new_client().get(
        "/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid",
            "state": "s1",
            "max_age": max_age,
        },
    )
    assert r.status_code == 303, r.text
    answer = query_of(r.headers["location"])
    assert r.headers["location"].startswith(CALLBACK)
    assert (
        answer["error"] == "invalid_request"
        and answer["state"] == "s1"
        and "max_age" in answer["error_description"]
    )


async def test_a_scope_taken_from_the_client_is_gone_from_its_refreshes_and_userinfo(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)
    token = await tokens(h, client_id, secret, person, "openid profile email offline_access sproutgate")
    assert set(token["scope"].split()) == {"openid", "profile", "email", "offline_access", "sproutgate"}
    before = await h.client.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert before.json()["email"] == person["email"] and "level" in before.json()

    r = await h.client.put(
        f"/api/admin/clients/{client_id}",
        json={"scopes": ["openid", "profile", "offline_access"]},
        headers={"X-Admin-Token": ADMIN},
    )
    assert r.status_code == 200, r.text

    # The access token issued before: userinfo releases only what the client may still have.
    seen = (
        await h.client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    ).json()
    assert seen["sub"] == person["id"] and seen["preferred_username"] == person["account"]
    assert "email" not in seen and "level" not in seen and "sprout_coins" not in seen
    # A refresh carries only the scopes still registered ...
    r = await h.client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(client_id, secret),
    )
    assert r.status_code == 200, r.text
    renewed = r.json()
    assert renewed["scope"] == "openid profile offline_access"
    seen = (
        await h.client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {renewed['access_token']}"})
    ).json()
    assert "email" not in seen and "level" not in seen
    # ... and asking for a removed one by name is refused (RFC 6749 §6: never wider).
    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": renewed["refresh_token"],
            "scope": "openid email",
        },
        auth=(client_id, secret),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


async def test_introspection_names_the_account_only_for_a_token_with_the_profile_scope(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)
    bare = await tokens(h, client_id, secret, person, "openid offline_access")
    full = await tokens(h, client_id, secret, person, "openid profile offline_access")
    for token in (bare["access_token"], bare["refresh_token"]):
        seen = (
            await h.client.post("/oauth2/introspect", data={"token": token}, auth=(client_id, secret))
        ).json()
        assert seen["active"] is True and seen["sub"] == person["id"]
        assert "username" not in seen, seen  # the account name is profile's (preferred_username)
    for token in (full["access_token"], full["refresh_token"]):
        seen = (
            await h.client.post("/oauth2/introspect", data={"token": token}, auth=(client_id, secret))
        ).json()
        assert seen["active"] is True and seen["username"] == person["account"]


async def test_a_refused_refresh_leaves_the_refresh_token_as_it_was(h):
    # RFC 6749 §5.2: an error answer consumes nothing. Before, the token was rotated before the
    # scope was checked, so the client's next use (past the grace window) counted as a reuse
    # and ended the grant.
    client_id, secret = await register_client(h)
    person = await make_person(h)
    token = await tokens(h, client_id, secret, person, "openid profile offline_access")
    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "scope": "openid email",
        },
        auth=(client_id, secret),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    h.clock.advance(h.services.settings.refresh_grace_seconds + 1)
    r = await h.client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(client_id, secret),
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "openid profile offline_access"
    seen = (
        await h.client.get(
            "/oauth2/userinfo", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
    ).json()
    assert seen["sub"] == person["id"]


@pytest.mark.engine_independent
@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"])
async def test_basic_credentials_with_non_ascii_bytes_are_invalid_client(h, path):
    # A header byte 0xE9 arrives as "é"; base64.b64decode refused it with a ValueError its
    # except clause did not name: a 500 before, RFC 6749 §5.2's invalid_client now.
    r = await h.client.post(
        path,
        content=b"grant_type=client_credentials&token=x",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic \u00e9\u00e9".encode("latin-1"),
        },
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")


async def test_another_clients_refresh_token_is_unknown_and_stays_good_for_its_own(h):
    # Held (no fault found): checked so it stays so. Client B presenting A's refresh token gets
    # invalid_grant, and nothing is rotated or revoked: A refreshes with it afterwards.
    a, a_secret = await register_client(h)
    b, b_secret = await register_client(h)
    person = await make_person(h)
    token = await tokens(h, a, a_secret, person, "openid offline_access")
    r = await h.client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(b, b_secret),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    h.clock.advance(h.services.settings.refresh_grace_seconds + 1)
    r = await h.client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(a, a_secret),
    )
    assert r.status_code == 200, r.text


async def test_a_code_issued_before_a_scope_was_taken_from_the_client_gives_it_no_more(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)

    async def narrow() -> None:
        r = await h.client.put(
            f"/api/admin/clients/{client_id}",
            json={"scopes": ["openid", "offline_access"]},
            headers={"X-Admin-Token": ADMIN},
        )
        assert r.status_code == 200, r.text

    token = await tokens(h, client_id, secret, person, "openid email offline_access", before_exchange=narrow)
    assert token["scope"] == "openid offline_access"
    seen = (
        await h.client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    ).json()
    assert seen == {"sub": person["id"]}
