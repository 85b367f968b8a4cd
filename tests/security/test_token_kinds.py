"""Issue 11 item 8: every token names its audience (``aud``) and type (``typ``), and each
surface accepts only the kind meant for it. The pages' session cookie is no bearer token; an
API token is no page session; a token without ``aud`` is refused. The unified /api/auth/login
token and the runtime access token stay accepted on both API faces, as documented."""

from __future__ import annotations

import re

import jwt
import pytest

from sproutgate.infra.keys import load_signing_keys
from support.harness import bearer, signup

pytestmark = pytest.mark.both_engines

PASSWORD = "Sprout#2026pw"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _page_cookie(h, email: str) -> str:
    client = h.new_client()
    r = await client.get("/login")
    token = TOKEN_RE.search(r.text).group(1)
    r = await client.post("/login", data={"csrf_token": token, "identifier": email, "password": PASSWORD})
    assert r.status_code == 303, r.text
    return client.cookies["sg_session"]


async def test_tokens_name_their_audience_and_type(harness):
    session = await signup(harness, "kinds@example.com")
    unified = (
        await harness.client.post(
            "/api/auth/login", json={"account": "kinds@example.com", "password": PASSWORD}
        )
    ).json()["token"]
    cookie = await _page_cookie(harness, "kinds@example.com")
    for token, typ, aud in (
        (session["access_token"], "at+jwt", "sproutgate:api"),
        (unified, "at+jwt", "sproutgate:api"),
        (cookie, "sproutgate-session+jwt", "sproutgate:pages"),
    ):
        assert jwt.get_unverified_header(token)["typ"] == typ
        assert jwt.decode(token, options={"verify_signature": False})["aud"] == aud


async def test_the_pages_cookie_is_not_a_bearer_token(harness):
    await signup(harness, "cookie@example.com")
    cookie = await _page_cookie(harness, "cookie@example.com")
    r = await harness.client.get("/api/v1/users/me", headers=bearer(cookie))
    assert r.status_code == 401
    r = await harness.client.get("/api/auth/me", headers=bearer(cookie))
    assert r.status_code == 401
    r = await harness.client.post("/api/auth/verify", json={"token": cookie})
    assert r.status_code == 200 and r.json()["valid"] is False


async def test_an_api_token_is_not_a_page_session(harness):
    session = await signup(harness, "bearer@example.com")
    client = harness.new_client()
    client.cookies.set("sg_session", session["access_token"])
    r = await client.get("/account")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_both_api_tokens_work_on_both_faces(harness):
    session = await signup(harness, "faces@example.com")
    unified = (
        await harness.client.post(
            "/api/auth/login", json={"account": "faces@example.com", "password": PASSWORD}
        )
    ).json()["token"]
    for token in (session["access_token"], unified):
        assert (await harness.client.get("/api/v1/users/me", headers=bearer(token))).status_code == 200
        assert (await harness.client.get("/api/auth/me", headers=bearer(token))).status_code == 200


async def test_a_token_without_audience_is_refused_even_with_a_good_signature(harness, settings):
    session = await signup(harness, "noaud@example.com")
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    del claims["aud"]
    kid, key = load_signing_keys(settings.data_dir)[-1]
    forged = jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})
    assert (await harness.client.get("/api/v1/users/me", headers=bearer(forged))).status_code == 401
