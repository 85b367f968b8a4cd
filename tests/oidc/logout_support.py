"""Helpers of the logout tests: clients registered with a back-channel logout URI and
post-logout redirect URIs, and a person signed in to an app through the hosted pages (the code
flow, as any app runs it), which leaves the browser with its single sign-on session."""

from __future__ import annotations

import html
import itertools
import re
from typing import Any

import httpx
from oidc_support import CALLBACK, csrf_of, pkce_pair, query_of, sign_in

from sproutgate.domain.clients.rules import ClientSpec
from support.harness import AppHarness

AFTER_LOGOUT = "https://app.example/signed-out"
_names = itertools.count(1)


async def register_app(
    h: AppHarness,
    *,
    backchannel: str | None = None,
    post_logout: tuple[str, ...] = (AFTER_LOGOUT,),
    first_party: bool = True,
    name: str | None = None,
) -> tuple[str, str]:
    """A confidential client of ``h``'s registry; its id and secret."""
    spec = ClientSpec(
        name=name or f"Logout app {next(_names)}",
        redirect_uris=(CALLBACK,),
        post_logout_redirect_uris=post_logout,
        backchannel_logout_uri=backchannel,
        public=False,
        first_party=first_party,
        scopes=("openid", "profile", "email", "offline_access", "sproutgate"),
        grant_types=("authorization_code", "refresh_token"),
    )
    created = await h.services.clients.create(spec, "test")
    assert created.client_secret
    return created.client.client_id, created.client_secret


async def sign_in_to_app(
    h: AppHarness,
    browser: httpx.AsyncClient,
    client_id: str,
    secret: str,
    person: dict[str, Any],
    scope: str = "openid profile",
) -> dict[str, Any]:
    """The code flow in ``browser`` (signing in on the hosted page when asked; with a
    consent page for a third-party app, granted); the token answer."""
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": scope,
        "state": "st-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    r = await browser.get("/oauth2/authorize", params=params)
    assert r.status_code in (302, 303), r.text
    if r.headers["location"].startswith("/login"):
        r = await sign_in(browser, r.headers["location"], person["account"])
        assert r.status_code == 303, r.text
        r = await browser.get(r.headers["location"])
    if r.headers["location"].startswith("/oauth2/consent"):
        page = await browser.get(r.headers["location"])
        form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        form = {k: html.unescape(v) for k, v in form.items()}
        r = await browser.post("/oauth2/consent", data={**form, "decision": "allow"})
        assert r.status_code == 303, r.text
        r = await browser.get(r.headers["location"])
    assert r.status_code in (302, 303), r.text
    found = query_of(r.headers["location"])
    assert "code" in found, r.headers["location"]
    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": found["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def page_csrf(browser: httpx.AsyncClient, path: str = "/account") -> str:
    r = await browser.get(path)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)
