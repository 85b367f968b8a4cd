"""Issue 11 item 3's class, for the second step of a sign-in: an ``mfa_token`` (what a right
password answers when an authenticator app is on) is a grant that proves the password. It must
not outlive that password: when the password changes by any path (a reset, the profile, an
administrator) or the account is disabled, a sign-in waiting for its second step is over, so a
phished password traded for an ``mfa_token`` before the owner reset it opens nothing after.
(It failed before: the token, with a code, still opened a session after the reset.)"""

# ruff: noqa: F811 - the fixture imported from security_support is redefined as an argument

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from security_support import (
    NEW_PASSWORD,
    OWNER_PASSWORD,
    admin,
    create_user,
    h,  # noqa: F401 - fixture
    reset_code,
    reset_works,
    v1_tokens,
)

from support.harness import AppHarness, bearer

pytestmark = pytest.mark.both_engines

TOTP = "/api/v1/users/me/mfa/totp"


def mid_step(h: AppHarness) -> None:
    """The app's clock 15 s into a 30-second step (forward only)."""
    h.clock.advance((15 - h.clock.now().timestamp() % 30) % 30)


def code_now(h: AppHarness, secret: str) -> str:
    """The code of the next step (no step is used twice)."""
    h.clock.advance(30)
    return pyotp.TOTP(secret).at(h.clock.now() + timedelta(seconds=0))


async def with_authenticator(h: AppHarness) -> tuple[dict, str, str]:
    """A user with an authenticator app on: (the SproutGate user, its runtime access token, the
    app's secret)."""
    user = await create_user(h)
    access = (await v1_tokens(h, user["email"]))["access_token"]
    mid_step(h)
    r = await h.client.post(TOTP, json={}, headers=bearer(access))
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = await h.client.post(
        TOTP + "/verify", json={"code": pyotp.TOTP(secret).at(h.clock.now())}, headers=bearer(access)
    )
    assert r.status_code == 200, r.text
    return user, access, secret


async def password_step(h: AppHarness, face: str, user: dict) -> str:
    """The first step of a sign-in on ``face`` with the password: its ``mfa_token``."""
    async with h.new_client() as c:
        if face == "v1":
            r = await c.post(
                "/api/v1/auth/sessions", json={"email": user["email"], "password": OWNER_PASSWORD}
            )
        else:
            r = await c.post("/api/auth/login", json={"account": user["account"], "password": OWNER_PASSWORD})
    assert r.status_code == 401, r.text
    body = r.json()
    token = body.get("mfa_token") or body.get("mfaToken")
    assert token, body
    return token


async def second_step(h: AppHarness, face: str, token: str, code: str) -> int:
    async with h.new_client() as c:
        if face == "v1":
            r = await c.post("/api/v1/auth/sessions/mfa", json={"mfa_token": token, "code": code})
        else:
            r = await c.post("/api/auth/login/mfa", json={"mfaToken": token, "code": code})
    assert r.status_code in (200, 401, 403), r.text
    return r.status_code


async def reset(h: AppHarness, user: dict, access: str) -> None:
    assert await reset_works(h, user["email"], await reset_code(h, user["email"]), NEW_PASSWORD)


async def profile(h: AppHarness, user: dict, access: str) -> None:
    r = await h.client.put(
        "/api/auth/profile",
        json={"password": NEW_PASSWORD, "currentPassword": OWNER_PASSWORD},
        headers=bearer(access),
    )
    assert r.status_code == 200, r.text


async def administrator(h: AppHarness, user: dict, access: str) -> None:
    r = await h.client.put(
        f"/api/admin/users/{user['account']}", json={"password": NEW_PASSWORD}, headers=admin(h)
    )
    assert r.status_code == 200, r.text


async def disable(h: AppHarness, user: dict, access: str) -> None:
    r = await h.client.put(f"/api/admin/users/{user['account']}", json={"disabled": True}, headers=admin(h))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("face", ["v1", "gate"])
@pytest.mark.parametrize("change", [reset, profile, administrator, disable], ids=lambda f: f.__name__)
async def test_a_sign_in_waiting_for_its_second_step_ends_when_the_password_changes(h, face, change):
    user, access, secret = await with_authenticator(h)
    token = await password_step(h, face, user)  # the attacker, with a phished password
    await change(h, user, access)  # the owner (or an administrator) reacts
    assert await second_step(h, face, token, code_now(h, secret)) == 401


async def test_a_sign_in_waiting_for_its_second_step_survives_other_changes(h):
    # A profile change without a new password ends nothing: the rule is about the password.
    user, access, secret = await with_authenticator(h)
    token = await password_step(h, "v1", user)
    r = await h.client.patch("/api/v1/users/me", json={"username": "Renamed"}, headers=bearer(access))
    assert r.status_code == 200, r.text
    assert await second_step(h, "v1", token, code_now(h, secret)) == 200
