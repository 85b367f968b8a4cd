"""The hosted sign-in of a user with an authenticator app (in-process, no browser): the password
alone never opens a session; a second form asks for the code (or a recovery code), in both
languages."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from test_pages_http import PASSWORD, csrf_of, form_token, make_user

from support.harness import bearer

pytestmark = pytest.mark.both_engines


@pytest.fixture
async def h(make_harness, make_settings):
    return await make_harness(make_settings(admin_token="mfa-pages-admin-token"))


async def enrolled_user(h) -> tuple[dict, str, list[str]]:
    user = await make_user(h)
    r = await h.client.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD})
    token = r.json()["access_token"]
    h.clock.advance((15 - h.clock.now().timestamp() % 30) % 30)  # mid-step: no boundary while we type
    secret = (await h.client.post("/api/v1/users/me/mfa/totp", json={}, headers=bearer(token))).json()[
        "secret"
    ]
    r = await h.client.post(
        "/api/v1/users/me/mfa/totp/verify",
        json={"code": pyotp.TOTP(secret).at(h.clock.now())},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    return user, secret, r.json()["recovery_codes"]


def code(h, secret: str, ahead: int = 1) -> str:
    return pyotp.TOTP(secret).at(h.clock.now() + timedelta(seconds=30 * ahead))


async def password_step(h, client, user: dict, lang: str = "en", **extra: str):
    token = await form_token(client, "/login")
    r = await client.post(
        "/login",
        data={"csrf_token": token, "identifier": user["account"], "password": PASSWORD, **extra},
        headers={"Accept-Language": lang},
    )
    return r


async def test_the_password_alone_asks_for_the_code_then_signs_in(h):
    user, secret, _ = await enrolled_user(h)
    client = h.new_client(**{"Accept-Language": "en"})
    r = await password_step(h, client, user, next="/account/sessions")
    assert r.status_code == 200, r.text
    assert 'action="/login/mfa"' in r.text and "Two-step verification" in r.text
    assert PASSWORD not in r.text
    assert (await client.get("/account")).status_code != 200  # still signed out

    token = r.text.split('name="mfa_token" value="')[1].split('"')[0]
    form = {"csrf_token": csrf_of(r.text), "mfa_token": token, "next": "/account/sessions", "redirect_to": ""}
    r = await client.post("/login/mfa", data={**form, "code": code(h, secret, 10)})
    assert r.status_code == 401 and "wrong or has already been used" in r.text
    r = await client.post("/login/mfa", data={**form, "code": "12-34"})
    assert r.status_code == 422
    r = await client.post("/login/mfa", data={**form, "code": code(h, secret)})
    assert r.status_code == 303 and r.headers["location"] == "/account/sessions", r.text
    assert (await client.get("/account")).status_code == 200
    # the token was single use
    r = await client.post(
        "/login/mfa",
        data={**form, "csrf_token": csrf_of((await client.get("/account")).text), "code": code(h, secret, 2)},
    )
    assert r.status_code == 401 and 'action="/login"' in r.text
    await client.aclose()


async def test_a_recovery_code_signs_in_on_the_pages_in_chinese(h):
    user, _, codes = await enrolled_user(h)
    client = h.new_client()
    r = await password_step(h, client, user, lang="zh-CN")
    assert r.status_code == 200 and "两步验证" in r.text and "恢复码" in r.text
    token = r.text.split('name="mfa_token" value="')[1].split('"')[0]
    r = await client.post(
        "/login/mfa",
        data={"csrf_token": csrf_of(r.text), "mfa_token": token, "code": codes[0].upper()},
        headers={"Accept-Language": "zh-CN"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/account", r.text
    await client.aclose()


async def test_a_dead_token_sends_the_person_back_to_the_password(h):
    user, secret, _ = await enrolled_user(h)
    client = h.new_client(**{"Accept-Language": "en"})
    r = await password_step(h, client, user)
    token = r.text.split('name="mfa_token" value="')[1].split('"')[0]
    h.clock.advance(h.services.settings.mfa_token_ttl_seconds + 1)
    r = await client.post(
        "/login/mfa", data={"csrf_token": csrf_of(r.text), "mfa_token": token, "code": code(h, secret)}
    )
    assert (
        r.status_code == 401 and 'action="/login"' in r.text and "Sign in with your password again" in r.text
    )
    await client.aclose()
