"""Helpers of the OpenID Connect provider tests: registering clients, people, and a browser
(an httpx client with a cookie jar) that signs in through the hosted pages' forms."""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from sproutgate.domain.clients.rules import ClientSpec
from support.harness import AppHarness

PASSWORD = "Sprout#Orchard2026"
CALLBACK = "https://app.example/callback"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
_names = itertools.count(1)


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636 §4.1, §4.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def csrf_of(html: str) -> str:
    found = TOKEN_RE.search(html)
    assert found, html[:600]
    return found.group(1)


async def register_client(h: AppHarness, **fields: Any) -> tuple[str, str | None]:
    """Register a client through the domain service (H1's registry); its id and secret."""
    spec = ClientSpec(
        name=fields.pop("name", f"App {next(_names)}"),
        redirect_uris=tuple(fields.pop("redirect_uris", (CALLBACK,))),
        post_logout_redirect_uris=(),
        backchannel_logout_uri=None,
        public=fields.pop("public", False),
        first_party=fields.pop("first_party", True),
        scopes=tuple(fields.pop("scopes", ("openid", "profile", "email", "offline_access", "sproutgate"))),
        grant_types=tuple(fields.pop("grant_types", ("authorization_code", "refresh_token"))),
    )
    assert not fields, fields
    created = await h.services.clients.create(spec, "test")
    return created.client.client_id, created.client_secret


async def make_person(h: AppHarness, **fields: Any) -> dict[str, Any]:
    account = f"oidc{next(_names)}x{secrets.token_hex(2)}"
    r = await h.client.post(
        "/api/admin/users",
        json={"account": account, "email": f"{account}@example.com", "password": PASSWORD, **fields},
        headers={"X-Admin-Token": h.services.admin_guard.token},
    )
    assert r.status_code == 201, r.text
    user = r.json()["user"]
    # The gate face names no id; the runtime API does (the ``sub`` of every token).
    r = await h.client.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD})
    me = await h.client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )
    return {**user, "id": me.json()["id"]}


async def sign_in(browser: httpx.AsyncClient, login_location: str, identifier: str) -> httpx.Response:
    """Follow a redirect to the sign-in page, fill in the form and submit it; the answer to the
    submission (a redirect back to the authorization request)."""
    page = await browser.get(login_location)
    assert page.status_code == 200, page.text
    pairs = re.findall(r"<input type=\"hidden\" name=\"([^\"]+)\" value=\"([^\"]*)\"", page.text)
    form = {k: html.unescape(v) for k, v in pairs}
    form.update(identifier=identifier, password=PASSWORD)
    return await browser.post("/login", data=form)


async def code_for(
    h: AppHarness, client_id: str, person: dict[str, Any], scope: str = "openid profile"
) -> tuple[str, str]:
    """An authorization code for ``CALLBACK`` (and its PKCE verifier), from the code flow in a
    new browser that signs in on the hosted page when asked (a first-party or already
    consented app: no consent page)."""
    browser = h.new_client()
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": scope,
        "state": "st",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    r = await browser.get("/oauth2/authorize", params=params)
    if r.headers["location"].startswith("/login"):
        r = await sign_in(browser, r.headers["location"], person["account"])
        r = await browser.get(r.headers["location"])
    assert r.status_code == 303 and r.headers["location"].startswith(CALLBACK), r.text
    return query_of(r.headers["location"])["code"], verifier


async def exchange_code(
    h: AppHarness, client_id: str, secret: str | None, code: str, verifier: str
) -> httpx.Response:
    """``code`` exchanged at the token endpoint with client_secret_basic (an empty secret for a
    public client); the raw answer."""
    return await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        auth=(client_id, secret or ""),
    )


async def exchange_returned(
    h: AppHarness, client_id: str, secret: str | None, location: str, verifier: str
) -> httpx.Response:
    """The code in ``location`` (where the authorization endpoint sent the browser back)
    exchanged like ``exchange_code``; the raw answer."""
    return await exchange_code(h, client_id, secret, query_of(location)["code"], verifier)


def auth_time_of(h: AppHarness, answer: dict[str, Any]) -> int:
    """The ``auth_time`` of the ID token in a token endpoint ``answer`` (seconds since the epoch)."""
    claims = h.services.signer.verify_claims(answer["id_token"], issuer="http://testserver", token_type="JWT")
    return int(claims["auth_time"])
