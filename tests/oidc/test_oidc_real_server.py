"""Authlib's OAuth 2.0 client (its requests integration, a stock relying party) against a real
``sproutgate serve`` process, on SQLite and on PostgreSQL: discovery, the code flow with PKCE,
state and nonce, the ID token checked against the JWKS, userinfo, refresh rotation and reuse,
revocation, introspection, client credentials, and the errors (an unknown redirect URI shows an
error page, invalid_grant, invalid_client 401, plain PKCE refused, a reused code, prompt=none).
Clients are registered with the ``sproutgate clients create`` command; the browser is a
requests session with a cookie jar that fills in the hosted sign-in form."""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet
from oidc_support import PASSWORD, pkce_pair, query_of

from support.servers import ServerProcess

CALLBACK = "http://127.0.0.1:9/callback"  # never served: the test reads the redirect
ADMIN_TOKEN = "oidc-real-server-admin-token"


@dataclass
class Provider:
    server: ServerProcess
    env: dict[str, str | None]

    @property
    def issuer(self) -> str:
        return self.server.base_url

    def cli(self, *args: str) -> Any:
        """Run ``sproutgate ARGS`` against this server's database; its JSON output."""
        done = subprocess.run(
            [sys.executable, "-m", "sproutgate", *args],
            env=self.server.full_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def register(self, *extra: str) -> tuple[str, str | None]:
        created = self.cli("clients", "create", "--name", f"RP {secrets.token_hex(3)}", *extra)
        return created["client_id"], created.get("client_secret")

    def person(self) -> dict[str, str]:
        account = f"rp{secrets.token_hex(4)}"
        r = requests.post(
            f"{self.issuer}/api/admin/users",
            json={"account": account, "email": f"{account}@example.com", "password": PASSWORD},
            headers={"X-Admin-Token": ADMIN_TOKEN},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return {"account": account, "email": f"{account}@example.com"}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def provider(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    root: Path = tmp_path_factory.mktemp(f"oidc-{request.param}")
    database_url = ""
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres_server")
        database_url = pg.create_database(f"oidc_{int(time.time() * 1000) % 10**9}")
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SPROUTGATE_")}
    server = ServerProcess(env=env, log_dir=root, name=f"oidc-{request.param}")
    env.update(
        {
            "SPROUTGATE_DATA_DIR": str(root / "data"),
            "SPROUTGATE_DATABASE_URL": database_url,
            "SPROUTGATE_PUBLIC_URL": server.base_url,
            "SPROUTGATE_ADMIN_TOKEN": ADMIN_TOKEN,
            "SPROUTGATE_ARGON2_TIME_COST": "1",
            "SPROUTGATE_ARGON2_MEMORY_KIB": "1024",
            "SPROUTGATE_REFRESH_GRACE_SECONDS": "1",
        }
    )
    server.env = env
    server.start()
    try:
        yield Provider(server, env)
    finally:
        server.close()


def relying_party(p: Provider, client_id: str, secret: str | None, **kw: Any) -> OAuth2Session:
    meta = requests.get(f"{p.issuer}/.well-known/openid-configuration", timeout=30).json()
    return OAuth2Session(
        client_id,
        secret,
        scope=kw.pop("scope", "openid profile email offline_access"),
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method=kw.pop("auth", "client_secret_basic" if secret else "none"),
        revocation_endpoint_auth_method="client_secret_basic" if secret else "none",
        **meta,
        **kw,
    )


def sign_in_and_authorize(p: Provider, browser: requests.Session, url: str, account: str) -> str:
    """The browser's way from the authorization URL back to the callback (signing in on the
    hosted page when asked); the callback URL."""
    r = browser.get(url, allow_redirects=False, timeout=30)
    if r.headers["location"].startswith("/login"):
        page = browser.get(p.issuer + r.headers["location"], timeout=30)
        fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
        form = {k: html.unescape(v) for k, v in fields} | {"identifier": account, "password": PASSWORD}
        r = browser.post(f"{p.issuer}/login", data=form, allow_redirects=False, timeout=30)
        assert r.status_code == 303, r.text
        r = browser.get(p.issuer + r.headers["location"], allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text
    return r.headers["location"]


def checked_id_token(p: Provider, id_token: str, client_id: str, nonce: str) -> dict[str, Any]:
    meta = requests.get(f"{p.issuer}/.well-known/openid-configuration", timeout=30).json()
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=30).json())
    token = jwt.decode(id_token, keys, algorithms=meta["id_token_signing_alg_values_supported"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": meta["issuer"]},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        auth_time={"essential": True},
        sid={"essential": True},
    ).validate(token.claims)
    return token.claims


def test_a_stock_client_signs_in_refreshes_reads_and_revokes(provider):
    p = provider
    client_id, secret = p.register(
        "--redirect-uri",
        CALLBACK,
        "--first-party",
        "--scope",
        "openid",
        "--scope",
        "profile",
        "--scope",
        "email",
        "--scope",
        "offline_access",
    )
    person = p.person()
    browser = requests.Session()
    with relying_party(p, client_id, secret) as oauth:
        meta = oauth.metadata
        assert meta["issuer"] == p.issuer and meta["code_challenge_methods_supported"] == ["S256"]
        verifier, nonce = pkce_pair()[0], secrets.token_urlsafe(12)
        url, state = oauth.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        callback = sign_in_and_authorize(p, browser, url, person["account"])
        assert query_of(callback)["state"] == state and query_of(callback)["iss"] == p.issuer
        token = oauth.fetch_token(
            meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
        claims = checked_id_token(p, token["id_token"], client_id, nonce)
        assert claims["preferred_username"] == person["account"] and claims["amr"] == ["pwd"]
        info = oauth.get(meta["userinfo_endpoint"]).json()
        assert info["sub"] == claims["sub"] and info["email"] == person["email"] and "level" not in info
        # Rotation: a new refresh token; the old one again after the grace is a reuse.
        fresh = oauth.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
        assert fresh["refresh_token"] != token["refresh_token"]
        time.sleep(1.5)
        with pytest.raises(OAuthError) as caught:
            oauth.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
        assert caught.value.error == "invalid_grant"
        assert (
            oauth.get(
                meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {fresh['access_token']}"}
            ).status_code
            == 401
        )
        # A new grant (the browser is still signed in: no password), then revoked.
        verifier = pkce_pair()[0]
        url, _ = oauth.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        callback = sign_in_and_authorize(p, browser, url, person["account"])
        token = oauth.fetch_token(
            meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
        seen = oauth.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()
        assert seen["active"] and seen["client_id"] == client_id and seen["username"] == person["account"]
        assert (
            oauth.revoke_token(meta["revocation_endpoint"], token=token["refresh_token"]).status_code == 200
        )
        assert oauth.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json() == {
            "active": False
        }
        # The code again: invalid_grant.
        with pytest.raises(OAuthError) as caught:
            oauth.fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier)
        assert caught.value.error == "invalid_grant"


def test_errors_a_stock_client_sees(provider):
    p = provider
    client_id, secret = p.register("--redirect-uri", CALLBACK, "--first-party")
    public_id, _ = p.register("--redirect-uri", CALLBACK, "--public", "--first-party")
    browser = requests.Session()
    with relying_party(p, client_id, secret, scope="openid profile email") as oauth:
        meta = oauth.metadata
        # An unregistered redirect URI: an error page, no redirect to it.
        url, _ = oauth.create_authorization_url(
            meta["authorization_endpoint"],
            redirect_uri="http://127.0.0.1:9/evil",
            code_verifier=pkce_pair()[0],
        )
        r = browser.get(url, allow_redirects=False, timeout=30)
        assert (
            r.status_code == 400 and "location" not in r.headers and "text/html" in r.headers["content-type"]
        )
        # prompt=none without a sign-in.
        url, state = oauth.create_authorization_url(
            meta["authorization_endpoint"], prompt="none", code_verifier=pkce_pair()[0]
        )
        answer = query_of(browser.get(url, allow_redirects=False, timeout=30).headers["location"])
        assert answer["error"] == "login_required" and answer["state"] == state
        # A code that never was.
        with pytest.raises(OAuthError) as caught:
            oauth.fetch_token(meta["token_endpoint"], code="made-up", code_verifier=pkce_pair()[0])
        assert caught.value.error == "invalid_grant"
    with relying_party(p, client_id, "not-the-secret") as wrong:
        r = wrong.post(
            meta["token_endpoint"],
            data={"grant_type": "authorization_code", "code": "x"},
            auth=(client_id, "not-the-secret"),
        )
        assert (
            r.status_code == 401
            and r.json()["error"] == "invalid_client"
            and "Basic" in r.headers["www-authenticate"]
        )
    with relying_party(p, public_id, None, scope="openid") as spa:
        verifier, challenge = pkce_pair()
        url, _ = spa.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier)
        r = browser.get(
            url.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            allow_redirects=False,
            timeout=30,
        )
        assert query_of(r.headers["location"])["error"] == "invalid_request"


def test_client_credentials_for_a_backend_service(provider):
    p = provider
    service_id, secret = p.register("--grant-type", "client_credentials", "--scope", "sproutgate")
    with relying_party(p, service_id, secret, scope="sproutgate") as oauth:
        meta = oauth.metadata
        token = oauth.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=30).json())
        access = jwt.decode(token["access_token"], keys)
        assert access.header["typ"] == "at+jwt" and access.claims["sub"] == service_id
        assert access.claims["iss"] == p.issuer and access.claims["scope"] == "sproutgate"
        assert oauth.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()[
            "active"
        ]
