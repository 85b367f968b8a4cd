"""The OpenID Connect provider in-process, on both engines: Authlib's OAuth 2.0 client (over
the app's ASGI transport) against the authorization, token, userinfo, revocation and
introspection endpoints, with a browser (an httpx client with a cookie jar) signing in through
the hosted pages' forms. The same library against a real server: test_oidc_real_server.py."""

from __future__ import annotations

import html
import re
import secrets

import httpx
import httpx2
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet
from oidc_support import CALLBACK, csrf_of, make_person, pkce_pair, query_of, register_client, sign_in

pytestmark = pytest.mark.both_engines

ISSUER = "http://testserver"


@pytest.fixture
async def h(make_harness, make_settings):
    return await make_harness(make_settings(admin_token="oidc-flows-admin-token", refresh_grace_seconds=5))


def rp(h, client_id: str, secret: str | None, **kw) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=client_id,
        client_secret=secret,
        scope=kw.pop("scope", "openid profile email sproutgate offline_access"),
        redirect_uri=kw.pop("redirect_uri", CALLBACK),
        code_challenge_method="S256",
        token_endpoint_auth_method=kw.pop("auth", "client_secret_basic" if secret else "none"),
        # Authlib's httpx integration runs on httpx2 when it is installed (as here).
        transport=httpx2.ASGITransport(app=h.app, client=("127.0.0.1", 50000)),
        base_url=ISSUER,
        **kw,
    )


async def authorize(h, browser: httpx.AsyncClient, oauth: AsyncOAuth2Client, person: dict, **extra):
    """Run the browser through /oauth2/authorize (signing in when asked); the callback URL."""
    verifier, _ = pkce_pair()
    url, state = oauth.create_authorization_url(f"{ISSUER}/oauth2/authorize", code_verifier=verifier, **extra)
    r = await browser.get(url)
    if r.headers["location"].startswith("/login"):
        r = await sign_in(browser, r.headers["location"], person["account"])
        assert r.status_code == 303, r.text
        r = await browser.get(r.headers["location"])
    assert r.status_code == 303, r.text
    return r.headers["location"], state, verifier


async def id_token_claims(h, id_token: str, client_id: str, nonce: str | None = None) -> dict:
    """The ID token checked as a relying party must (OpenID Connect Core §3.1.3.7) with joserfc:
    ES256 signature against the provider's JWKS, iss, aud, exp/iat at the provider's clock, and
    the nonce sent."""
    jwks = KeySet.import_key_set((await h.client.get("/.well-known/jwks.json")).json())
    token = jwt.decode(id_token, jwks, algorithms=["ES256"])
    assert token.header["alg"] == "ES256" and token.header["kid"]
    registry = jwt.JWTClaimsRegistry(
        now=int(h.clock.now().timestamp()),
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        auth_time={"essential": True},
        nonce={"essential": True, "value": nonce} if nonce else {"essential": False},
    )
    registry.validate(token.claims)
    if nonce is None:
        assert "nonce" not in token.claims
    return token.claims


async def test_code_flow_with_pkce_gives_tokens_a_stock_client_validates(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)
    browser = h.new_client()
    async with rp(h, client_id, secret) as oauth:
        callback, state, verifier = await authorize(h, browser, oauth, person, nonce="n-0S6_WzA2Mj")
        answer = query_of(callback)
        assert callback.startswith(CALLBACK) and answer["state"] == state and answer["iss"] == ISSUER
        token = await oauth.fetch_token(
            f"{ISSUER}/oauth2/token", authorization_response=callback, code_verifier=verifier
        )
        assert token["token_type"] == "Bearer" and token["refresh_token"] and token["id_token"]
        claims = await id_token_claims(h, token["id_token"], client_id, nonce="n-0S6_WzA2Mj")
        assert claims["sub"] == person["id"] and claims["aud"] == client_id
        assert claims["amr"] == ["pwd"] and claims["sid"] and claims["auth_time"]
        assert claims["preferred_username"] == person["account"] and claims["email"] == person["email"]
        info = (await oauth.get(f"{ISSUER}/oauth2/userinfo")).json()
        assert info["sub"] == person["id"] and info["preferred_username"] == person["account"]
        assert info["level"] == 0 and info["sprout_coins"] == 0 and info["email_verified"] is True


def token_url() -> str:
    return f"{ISSUER}/oauth2/token"


async def tokens_for(h, client_id, secret, person, browser=None, **extra) -> tuple[dict, httpx.AsyncClient]:
    browser = browser or h.new_client()
    async with rp(h, client_id, secret, **{k: extra.pop(k) for k in ("scope",) if k in extra}) as oauth:
        callback, _, verifier = await authorize(h, browser, oauth, person, **extra)
        token = await oauth.fetch_token(token_url(), authorization_response=callback, code_verifier=verifier)
    return dict(token), browser


async def userinfo_status(h, access_token: str) -> int:
    r = await h.client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    return r.status_code


async def test_discovery_names_the_issuer_and_endpoints_stock_clients_need(h):
    meta = (await h.client.get("/.well-known/openid-configuration")).json()
    assert meta["issuer"] == ISSUER and meta["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert meta["token_endpoint"] == token_url() and meta["code_challenge_methods_supported"] == ["S256"]
    jwks = await h.client.get(
        meta["jwks_uri"].removeprefix(ISSUER), headers={"Origin": "https://spa.example"}
    )
    assert jwks.json()["keys"][0]["alg"] == "ES256" and jwks.headers["access-control-allow-origin"] == "*"
    # A single-page app on another origin may call the cookie-less endpoints.
    pre = await h.client.options(
        "/oauth2/userinfo",
        headers={"Origin": "https://spa.example", "Access-Control-Request-Headers": "authorization"},
    )
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in pre.headers["access-control-allow-headers"]
    r = await h.client.get("/oauth2/userinfo", headers={"Origin": "https://spa.example"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="sproutgate"'
    assert (
        r.headers["access-control-allow-origin"] == "*"
        and "access-control-allow-credentials" not in r.headers
    )
    r = await h.client.get("/oauth2/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_single_sign_on_a_second_app_gets_a_code_without_a_password(h):
    first, first_secret = await register_client(h)
    second, second_secret = await register_client(h, redirect_uris=["https://two.example/cb"])
    person = await make_person(h)
    token, browser = await tokens_for(h, first, first_secret, person)
    async with rp(h, second, second_secret, redirect_uri="https://two.example/cb") as oauth:
        verifier, _ = pkce_pair()
        url, _ = oauth.create_authorization_url(f"{ISSUER}/oauth2/authorize", code_verifier=verifier)
        r = await browser.get(url)  # no sign-in page: straight back with a code
        assert r.status_code == 303 and r.headers["location"].startswith("https://two.example/cb?code=")
        second_token = await oauth.fetch_token(
            token_url(), authorization_response=r.headers["location"], code_verifier=verifier
        )
    ids = [await id_token_claims(h, t["id_token"], c) for t, c in ((token, first), (second_token, second))]
    assert ids[0]["sid"] == ids[1]["sid"] and ids[0]["sub"] == ids[1]["sub"] == person["id"]
    apps = await h.services.oidc.clients_of_session(ids[0]["sid"])
    assert [a.client_id for a in apps] == [first, second]


@pytest.mark.parametrize("fault", ["unknown_client", "unregistered_redirect", "no_redirect"])
async def test_an_unknown_client_or_redirect_uri_shows_an_error_page_never_a_redirect(h, fault):
    client_id, _ = await register_client(h)
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "scope": "openid"}
    if fault == "unknown_client":
        query["client_id"] = "no-such-client"
    elif fault == "unregistered_redirect":
        query["redirect_uri"] = "https://evil.example/callback"
    else:
        del query["redirect_uri"]
    r = await h.client.get("/oauth2/authorize", params=query, headers={"Accept-Language": "en"})
    assert r.status_code == 400 and "location" not in r.headers
    assert "Cannot sign in to this app" in r.text and "evil.example" not in r.headers.get("location", "")


async def test_plain_pkce_and_public_clients_without_pkce_are_sent_back_an_error(h):
    public, _ = await register_client(h, public=True)
    person = await make_person(h)
    browser = h.new_client()
    async with rp(h, public, None) as oauth:
        url, state = oauth.create_authorization_url(f"{ISSUER}/oauth2/authorize")  # no PKCE at all
        r = await browser.get(url)
        answer = query_of(r.headers["location"])
        assert answer["error"] == "invalid_request" and answer["state"] == state and answer["iss"] == ISSUER
        verifier, _ = pkce_pair()
        url, state = oauth.create_authorization_url(f"{ISSUER}/oauth2/authorize", code_verifier=verifier)
        r = await browser.get(url.replace("code_challenge_method=S256", "code_challenge_method=plain"))
        assert query_of(r.headers["location"])["error"] == "invalid_request"
        assert "plain" in query_of(r.headers["location"])["error_description"]
        # With S256 the public client signs in and gets tokens, authenticating by PKCE alone.
        token, _ = await tokens_for(h, public, None, person)
        assert token["access_token"] and token["id_token"]


async def test_prompt_none_answers_login_required_and_consent_required(h):
    third, secret = await register_client(h, first_party=False, scopes=["openid", "email"])
    person = await make_person(h)
    browser = h.new_client()
    async with rp(h, third, secret, scope="openid email") as oauth:
        url, state = oauth.create_authorization_url(f"{ISSUER}/oauth2/authorize", prompt="none")
        r = await browser.get(url)
        assert query_of(r.headers["location"]) == {
            "error": "login_required",
            "state": state,
            "iss": ISSUER,
        } | {"error_description": query_of(r.headers["location"])["error_description"]}
        r = await browser.get(url.replace("prompt=none", ""))
        r = await sign_in(browser, r.headers["location"], person["account"])
        r = await browser.get(url)  # signed in now, never consented
        assert query_of(r.headers["location"])["error"] == "consent_required"


async def test_a_third_party_app_asks_consent_once_naming_the_app_and_what_it_reads(h):
    third, secret = await register_client(
        h, name="Garden Planner", first_party=False, scopes=["openid", "email"]
    )
    person = await make_person(h)
    browser = h.new_client(**{"Accept-Language": "en"})
    async with rp(h, third, secret, scope="openid email") as oauth:
        verifier, _ = pkce_pair()
        url, state = oauth.create_authorization_url(f"{ISSUER}/oauth2/authorize", code_verifier=verifier)
        r = await browser.get(url)
        r = await sign_in(browser, r.headers["location"], person["account"])
        r = await browser.get(r.headers["location"])
        assert r.status_code == 303 and r.headers["location"].startswith("/oauth2/consent?")
        page = await browser.get(r.headers["location"])
        assert "Garden Planner wants to access your account" in page.text
        assert 'data-scope="email"' in page.text and 'data-scope="profile"' not in page.text
        assert "form-action 'self' https://app.example" in page.headers["content-security-policy"]
        form = {k: v for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)}
        r = await browser.post(
            "/oauth2/consent", data={**{k: html.unescape(v) for k, v in form.items()}, "decision": "deny"}
        )
        assert query_of(r.headers["location"])["error"] == "access_denied"
        r = await browser.post(
            "/oauth2/consent", data={**{k: html.unescape(v) for k, v in form.items()}, "decision": "allow"}
        )
        r = await browser.get(r.headers["location"])
        assert (
            r.headers["location"].startswith(CALLBACK) and query_of(r.headers["location"])["state"] == state
        )
        # Remembered: the next request goes straight back, even with prompt=none.
        url, _ = oauth.create_authorization_url(
            f"{ISSUER}/oauth2/authorize", code_verifier=verifier, prompt="none"
        )
        r = await browser.get(url)
        assert "code" in query_of(r.headers["location"])
        # Asking for more than was allowed asks again.
        url, _ = oauth.create_authorization_url(
            f"{ISSUER}/oauth2/authorize", code_verifier=verifier, scope="openid email", prompt="consent"
        )
        assert (await browser.get(url)).headers["location"].startswith("/oauth2/consent?")
    apps = await h.services.oidc.connected_apps(person["id"])
    assert [(a.client.name, a.scopes) for a in apps] == [("Garden Planner", ("openid", "email"))]
    await h.services.oidc.revoke_app(person["id"], third)
    assert await h.services.oidc.connected_apps(person["id"]) == []
    assert (
        (await browser.get(url.replace("prompt=consent", "prompt=none")))
        .headers["location"]
        .count("consent_required")
    )


async def test_prompt_login_and_max_age_force_a_fresh_sign_in_with_the_hint_and_language(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)
    first, browser = await tokens_for(h, client_id, secret, person)
    h.clock.advance(120)
    async with rp(h, client_id, secret) as oauth:
        for extra in ({"prompt": "login"}, {"max_age": "60"}, {"max_age": "0"}):
            verifier, _ = pkce_pair()
            url, _ = oauth.create_authorization_url(
                f"{ISSUER}/oauth2/authorize",
                code_verifier=verifier,
                login_hint=person["email"],
                ui_locales="en-US",
                **extra,
            )
            r = await browser.get(url)
            assert r.headers["location"].startswith("/login?") and "reauth=1" in r.headers["location"]
            page = await browser.get(r.headers["location"])
            assert "Sign in" in page.text and f'value="{person["email"]}"' in page.text
            # The form leads on, through redirects, to the app: the CSP's form-action says so.
            assert "form-action 'self' https://app.example" in page.headers["content-security-policy"]
            r = await sign_in(browser, r.headers["location"], person["account"])
            r = await browser.get(r.headers["location"])
            callback = r.headers["location"]
            token = await oauth.fetch_token(
                token_url(), authorization_response=callback, code_verifier=verifier
            )
            before = (await id_token_claims(h, first["id_token"], client_id))["auth_time"]
            assert (await id_token_claims(h, token["id_token"], client_id))["auth_time"] >= before + 120
            h.clock.advance(120)


async def test_code_errors_are_invalid_grant_and_a_reused_code_revokes_its_tokens(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)
    browser = h.new_client()
    async with rp(h, client_id, secret) as oauth:
        callback, _, verifier = await authorize(h, browser, oauth, person)
        for wrong in (
            {"code_verifier": pkce_pair()[0]},
            {"code_verifier": None},
            {"redirect_uri": "https://app.example/other"},
        ):
            with pytest.raises(OAuthError) as caught:
                await oauth.fetch_token(
                    token_url(), authorization_response=callback, **{"code_verifier": verifier, **wrong}
                )
            assert caught.value.error == "invalid_grant"
        token = await oauth.fetch_token(token_url(), authorization_response=callback, code_verifier=verifier)
        assert await userinfo_status(h, token["access_token"]) == 200
        with pytest.raises(OAuthError) as caught:
            await oauth.fetch_token(token_url(), authorization_response=callback, code_verifier=verifier)
        assert caught.value.error == "invalid_grant"
        assert await userinfo_status(h, token["access_token"]) == 401  # RFC 6749 §4.1.2
        callback, _, verifier = await authorize(h, browser, oauth, person)
        h.clock.advance(61)
        with pytest.raises(OAuthError) as caught:
            await oauth.fetch_token(token_url(), authorization_response=callback, code_verifier=verifier)
        assert caught.value.error == "invalid_grant"


async def test_client_authentication_failures_are_invalid_client_401_then_rate_limited(
    make_harness, make_settings
):
    h = await make_harness(
        make_settings(admin_token="oidc-flows-admin-token", limit_client_auth_fail_per_ip="2/minute")
    )
    client_id, secret = await register_client(h)
    async with rp(h, client_id, "wrong-secret") as oauth:
        with pytest.raises(OAuthError) as caught:
            await oauth.fetch_token(token_url(), code="x", code_verifier=pkce_pair()[0])
        assert caught.value.error == "invalid_client"
    wrong_post = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": "nope"}
    r = await h.client.post(token_url(), data=wrong_post)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = await h.client.post(token_url(), data={"grant_type": "client_credentials"}, auth=(client_id, "nope"))
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert r.json()["error"] == "invalid_client" and r.headers["cache-control"] == "no-store"
    r = await h.client.post(token_url(), data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


async def test_token_endpoint_refuses_malformed_requests_with_rfc_6749_errors(h):
    client_id, secret = await register_client(h)
    cases = [
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
        ({"grant_type": "implicit"}, "unsupported_grant_type"),
        ({}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unauthorized_client"),  # not registered for it
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "nonsense"}, "invalid_grant"),
    ]
    for form, error in cases:
        r = await h.client.post(token_url(), data=form, auth=(client_id, secret))
        assert r.status_code == 400 and r.json()["error"] == error, (form, r.text)
    r = await h.client.post(token_url(), json={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = await h.client.post(
        token_url(),
        content="grant_type=a&grant_type=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.json()["error"] == "invalid_request"
    r = await h.client.post(
        token_url(),
        data={"grant_type": "client_credentials", "client_secret": secret},
        auth=(client_id, secret),
    )
    assert r.json()["error"] == "invalid_request"  # two authentication methods


async def test_refresh_rotates_with_grace_and_reuse_revokes_the_grant(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)
    token, _ = await tokens_for(h, client_id, secret, person)
    async with rp(h, client_id, secret) as oauth:
        first = await oauth.refresh_token(token_url(), refresh_token=token["refresh_token"])
        again = await oauth.refresh_token(token_url(), refresh_token=token["refresh_token"])  # in grace
        assert first["refresh_token"] == again["refresh_token"] != token["refresh_token"]
        claims = await id_token_claims(h, first["id_token"], client_id)
        assert claims["sub"] == person["id"] and "nonce" not in claims
        narrower = await oauth.refresh_token(
            token_url(), refresh_token=first["refresh_token"], scope="openid"
        )
        assert narrower["scope"] == "openid"
        with pytest.raises(OAuthError) as caught:
            await oauth.refresh_token(
                token_url(), refresh_token=narrower["refresh_token"], scope="openid admin"
            )
        assert caught.value.error == "invalid_scope"
        h.clock.advance(6)
        with pytest.raises(OAuthError) as caught:
            await oauth.refresh_token(token_url(), refresh_token=token["refresh_token"])
        assert caught.value.error == "invalid_grant"
        assert await userinfo_status(h, narrower["access_token"]) == 401
        with pytest.raises(OAuthError):
            await oauth.refresh_token(token_url(), refresh_token=narrower["refresh_token"])


async def test_third_party_apps_get_refresh_tokens_only_with_offline_access(h):
    third, secret = await register_client(h, first_party=False, scopes=["openid", "offline_access"])
    person = await make_person(h)
    await h.services.oidc.consent(
        person["id"], await h.services.clients.get(third), ("openid", "offline_access")
    )
    online, _ = await tokens_for(h, third, secret, person, scope="openid")
    assert "refresh_token" not in online
    offline, _ = await tokens_for(h, third, secret, person, scope="openid offline_access")
    assert offline["refresh_token"]


async def test_app_tokens_and_api_tokens_never_stand_in_for_each_other(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)
    token, _ = await tokens_for(h, client_id, secret, person)
    for path in ("/api/v1/users/me", "/api/auth/me"):
        r = await h.client.get(path, headers={"Authorization": f"Bearer {token['access_token']}"})
        assert r.status_code == 401, (path, r.text)
    r = await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": token["refresh_token"]})
    assert r.status_code == 401
    api = (
        await h.client.post(
            "/api/v1/auth/sessions", json={"email": person["email"], "password": "Sprout#Orchard2026"}
        )
    ).json()
    assert await userinfo_status(h, api["access_token"]) == 401
    r = await h.client.post(
        token_url(),
        data={"grant_type": "refresh_token", "refresh_token": api["refresh_token"]},
        auth=(client_id, secret),
    )
    assert r.json()["error"] == "invalid_grant"
    assert await userinfo_status(h, token["id_token"]) == 401  # an ID token is no access token


async def test_signing_out_ends_online_grants_disabling_ends_every_grant(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)
    online, browser = await tokens_for(h, client_id, secret, person, scope="openid profile")
    offline, _ = await tokens_for(h, client_id, secret, person, browser=browser)
    page = await browser.get("/account")
    r = await browser.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    assert await userinfo_status(h, online["access_token"]) == 401
    assert await userinfo_status(h, offline["access_token"]) == 200  # offline_access outlives it
    r = await h.client.put(
        f"/api/admin/users/{person['account']}",
        json={"disabled": True},
        headers={"X-Admin-Token": h.services.admin_guard.token},
    )
    assert r.status_code == 200, r.text
    assert await userinfo_status(h, offline["access_token"]) == 401
    r = await h.client.post(
        token_url(),
        data={"grant_type": "refresh_token", "refresh_token": offline["refresh_token"]},
        auth=(client_id, secret),
    )
    assert r.json()["error"] == "invalid_grant"


async def test_revocation_ends_the_grant_and_introspection_tells_confidential_clients(h):
    client_id, secret = await register_client(h)
    other, other_secret = await register_client(h)
    public, _ = await register_client(h, public=True)
    person = await make_person(h)
    token, _ = await tokens_for(h, client_id, secret, person)
    async with rp(h, other, other_secret) as resource:
        seen = (
            await resource.introspect_token(f"{ISSUER}/oauth2/introspect", token=token["access_token"])
        ).json()
        assert seen["active"] and seen["sub"] == person["id"] and seen["client_id"] == client_id
        assert seen["username"] == person["account"] and "openid" in seen["scope"].split()
        seen = (
            await resource.introspect_token(f"{ISSUER}/oauth2/introspect", token=token["refresh_token"])
        ).json()
        assert seen["active"] and seen["token_type"] == "refresh_token"
        assert (await resource.introspect_token(f"{ISSUER}/oauth2/introspect", token="junk")).json() == {
            "active": False
        }
        # Another client's revocation request leaves the token alone.
        assert (
            await resource.revoke_token(f"{ISSUER}/oauth2/revoke", token=token["refresh_token"])
        ).status_code == 200
        assert await userinfo_status(h, token["access_token"]) == 200
    r = await h.client.post(
        f"{ISSUER}/oauth2/introspect", data={"token": token["access_token"], "client_id": public}
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    async with rp(h, client_id, secret) as oauth:
        r = await oauth.revoke_token(
            f"{ISSUER}/oauth2/revoke", token=token["refresh_token"], token_type_hint="refresh_token"
        )
        assert r.status_code == 200
        assert await userinfo_status(h, token["access_token"]) == 401
        seen = (
            await oauth.introspect_token(f"{ISSUER}/oauth2/introspect", token=token["access_token"])
        ).json()
        assert seen == {"active": False}
        second, _ = await tokens_for(h, client_id, secret, person)
        assert (
            await oauth.revoke_token(f"{ISSUER}/oauth2/revoke", token=second["access_token"])
        ).status_code == 200
        assert await userinfo_status(h, second["access_token"]) == 401


async def test_client_credentials_are_for_confidential_clients_with_the_client_as_subject(h):
    service, secret = await register_client(
        h, grant_types=["client_credentials"], scopes=["openid", "sproutgate"]
    )
    async with rp(h, service, secret) as oauth:
        token = await oauth.fetch_token(token_url(), grant_type="client_credentials", scope="sproutgate")
        assert "refresh_token" not in token and "id_token" not in token and token["scope"] == "sproutgate"
        claims = jwt.decode(
            token["access_token"],
            KeySet.import_key_set((await h.client.get("/.well-known/jwks.json")).json()),
        )
        assert (
            claims.header["typ"] == "at+jwt" and claims.claims["sub"] == service == claims.claims["client_id"]
        )
        assert claims.claims["iss"] == ISSUER and claims.claims["aud"] == service
        seen = (
            await oauth.introspect_token(f"{ISSUER}/oauth2/introspect", token=token["access_token"])
        ).json()
        assert seen["active"] and seen["sub"] == service
        with pytest.raises(OAuthError) as caught:
            await oauth.fetch_token(token_url(), grant_type="client_credentials", scope="openid")
        assert caught.value.error == "invalid_scope"
        r = await oauth.revoke_token(f"{ISSUER}/oauth2/revoke", token=token["access_token"])
        assert r.status_code == 400 and r.json()["error"] == "unsupported_token_type"
    assert await userinfo_status(h, token["access_token"]) == 401
    # The registry refuses client_credentials to public clients: no token without a secret.
    public, _ = await register_client(h, public=True)
    r = await h.client.post(token_url(), data={"grant_type": "client_credentials", "client_id": public})
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"


async def test_the_second_step_of_sign_in_is_in_amr(h):
    import pyotp

    client_id, secret = await register_client(h)
    person = await make_person(h)
    r = await h.client.post(
        "/api/v1/auth/sessions", json={"email": person["email"], "password": "Sprout#Orchard2026"}
    )
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    h.clock.advance((15 - h.clock.now().timestamp() % 30) % 30)
    totp = pyotp.TOTP(
        (await h.client.post("/api/v1/users/me/mfa/totp", json={}, headers=bearer)).json()["secret"]
    )
    r = await h.client.post(
        "/api/v1/users/me/mfa/totp/verify", json={"code": totp.at(h.clock.now())}, headers=bearer
    )
    assert r.status_code == 200, r.text
    h.clock.advance(30)
    browser = h.new_client()
    async with rp(h, client_id, secret) as oauth:
        verifier, _ = pkce_pair()
        url, _ = oauth.create_authorization_url(f"{ISSUER}/oauth2/authorize", code_verifier=verifier)
        r = await sign_in(browser, (await browser.get(url)).headers["location"], person["account"])
        assert r.status_code == 200 and 'action="/login/mfa"' in r.text
        fields = {
            k: html.unescape(v)
            for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', r.text)
        }
        r = await browser.post("/login/mfa", data={**fields, "code": totp.at(h.clock.now())})
        r = await browser.get(r.headers["location"])
        token = await oauth.fetch_token(
            token_url(), authorization_response=r.headers["location"], code_verifier=verifier
        )
    assert (await id_token_claims(h, token["id_token"], client_id))["amr"] == ["pwd", "otp", "mfa"]


async def test_a_newcomer_signs_up_on_the_hosted_pages_and_returns_to_the_app(h):
    client_id, secret = await register_client(h)
    browser = h.new_client(**{"Accept-Language": "en"})
    async with rp(h, client_id, secret) as oauth:
        verifier, _ = pkce_pair()
        url, state = oauth.create_authorization_url(
            f"{ISSUER}/oauth2/authorize", code_verifier=verifier, ui_locales="zh-CN"
        )
        r = await browser.get(url)
        login = await browser.get(r.headers["location"])
        assert "登录" in login.text  # ui_locales chose the language of the pages that follow
        register_link = html.unescape(re.search(r'href="(/register\?next=[^"]+)"', login.text).group(1))
        page = await browser.get(register_link)
        fields = {
            k: html.unescape(v)
            for k, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
        }
        email = f"newcomer{secrets.token_hex(3)}@example.com"
        form = {**fields, "email": email, "username": "Newcomer", "password": "Sprout#Orchard2026"}
        r = await browser.post("/register", data=form)
        assert r.status_code == 303 and r.headers["location"].startswith("/register/verify?")
        page = await browser.get(r.headers["location"])
        assert "form-action 'self' https://app.example" in page.headers["content-security-policy"]
        fields = {
            k: html.unescape(v)
            for k, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
        }
        r = await browser.post(
            "/register/verify", data={**fields, "email": email, "code": await h.last_code(email)}
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/oauth2/authorize?")
        r = await browser.get(r.headers["location"])
        assert query_of(r.headers["location"])["state"] == state
        token = await oauth.fetch_token(
            token_url(), authorization_response=r.headers["location"], code_verifier=verifier
        )
    assert (await id_token_claims(h, token["id_token"], client_id))["email"] == email


async def test_authorization_codes_are_purged_a_day_after_they_expire(h):
    from sproutgate.domain.housekeeping.service import purge_once

    client_id, secret = await register_client(h)
    person = await make_person(h)
    browser = h.new_client()
    async with rp(h, client_id, secret) as oauth:
        await authorize(h, browser, oauth, person)
    h.clock.advance(3600)
    assert (await purge_once(h.services.db, h.clock))["authorization_codes"] == 0
    h.clock.advance(24 * 3600)
    assert (await purge_once(h.services.db, h.clock))["authorization_codes"] == 1


async def test_app_grants_are_not_listed_among_the_persons_own_sessions(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)
    _, browser = await tokens_for(h, client_id, secret, person)
    kinds = [s.kind for s in await h.services.sessions.list_for_user(person["id"])]
    assert "oidc" not in kinds and "web" in kinds
    apps = await h.services.oidc.connected_apps(person["id"])
    assert [a.client.client_id for a in apps] == [client_id] and apps[0].last_used_at is not None


async def test_an_id_token_hint_is_read_even_after_it_expired_and_nothing_else_is(h):
    from sproutgate.domain.oidc.errors import InvalidAccessToken

    client_id, secret = await register_client(h)
    person = await make_person(h)
    token, _ = await tokens_for(h, client_id, secret, person)
    h.clock.advance(2 * 3600)
    claims = h.services.oidc.id_token_hint(token["id_token"])
    assert claims["sub"] == person["id"] and claims["aud"] == client_id and claims["sid"]
    for other in (token["access_token"], "junk"):
        with pytest.raises(InvalidAccessToken):
            h.services.oidc.id_token_hint(other)


async def test_deleting_a_client_ends_its_grants_and_codes(h):
    client_id, secret = await register_client(h)
    person = await make_person(h)
    token, browser = await tokens_for(h, client_id, secret, person)
    async with rp(h, client_id, secret) as oauth:
        await authorize(h, browser, oauth, person)  # a code left unexchanged
    await h.services.clients.delete(client_id, "test")
    assert await userinfo_status(h, token["access_token"]) == 401
    assert await h.services.oidc.connected_apps(person["id"]) == []
    r = await h.client.post(
        token_url(), data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_a_hostile_login_hint_is_escaped_and_repeated_parameters_refused(h):
    client_id, _ = await register_client(h)
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "scope": "openid"}
    r = await h.client.get("/oauth2/authorize", params={**query, "login_hint": '"><script>alert(1)</script>'})
    page = await h.client.get(r.headers["location"])
    assert page.status_code == 200 and "<script>alert(1)" not in page.text
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    repeated = "/oauth2/authorize?" + "&".join(f"{k}={v}" for k, v in query.items()) + "&scope=openid"
    r = await h.client.get(repeated)
    assert r.status_code == 400 and "location" not in r.headers


async def test_signing_out_other_devices_keeps_the_apps_signed_in_through_this_one(h):
    # "Sign out other devices" keeps the caller's browser session, and with it the grants apps
    # got through that sign-in (their parent); a sign-in elsewhere and its grants end.
    client_id, secret = await register_client(h)
    person = await make_person(h)
    here, browser = await tokens_for(h, client_id, secret, person, scope="openid profile")
    elsewhere, _ = await tokens_for(h, client_id, secret, person, scope="openid profile")
    page = await browser.get("/account")
    r = await browser.post("/account/sessions/revoke-others", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303, r.text
    assert (await browser.get("/account")).status_code == 200
    assert await userinfo_status(h, here["access_token"]) == 200
    assert await userinfo_status(h, elsewhere["access_token"]) == 401
