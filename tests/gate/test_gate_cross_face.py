"""One user store behind two faces: users, codes, tokens and revocations cross between
/api/v1 (runtime) and /api (SproutGate)."""

# ruff: noqa: F811 - pytest fixtures imported from gate_support are redefined as arguments

from __future__ import annotations

import re

import jwt
from gate_support import (
    NEW_PASSWORD,
    PASSWORD,
    admin_create,
    bearer,
    email_of,
    face,  # noqa: F401 - fixture
    gate_login,
    gate_server,  # noqa: F401 - fixture
    register,
    uniq,
    v1_signup,
    valid,
)


async def test_runtime_signup_signs_in_on_the_gate_face_with_a_derived_account_name(face):
    tag = uniq("z")
    email = f"Zoë.Müller+{tag}@example.com"
    await v1_signup(face, email, username="佐伊子")
    body = await gate_login(face, email)
    user = body["user"]
    # ASCII-folded local part of the stored (lower-cased) address, without the "+"
    assert user["account"] == f"zoe.muller{tag}"[:24]
    assert user["username"] == "佐伊子" and user["email"] == email.lower()
    again = await gate_login(face, user["account"])  # the derived name signs in too
    assert again["user"]["account"] == user["account"]


async def test_derived_account_names_fall_back_to_user_digits_and_stay_unique(face):
    for local in ("张三李四", "ab"):
        email = f"{local}@{uniq('d')}.example.com"
        await v1_signup(face, email)
        account = (await gate_login(face, email))["user"]["account"]
        assert re.fullmatch(r"user\d+", account), account
    local = uniq("same")
    first = f"{local}@one.example.com"
    second = f"{local}@two.example.com"
    await v1_signup(face, first)
    await v1_signup(face, second)
    a = (await gate_login(face, first))["user"]["account"]
    b = (await gate_login(face, second))["user"]["account"]
    assert a == local and b != a and re.fullmatch(rf"{local}\d+", b)


async def test_derived_account_name_never_changes(face):
    email = f"{uniq('keep')}@example.com"
    session = await v1_signup(face, email, username="first")
    account = (await gate_login(face, email))["user"]["account"]
    r = await face.client.patch(
        "/api/v1/users/me", json={"username": "second"}, headers=bearer(session["access_token"])
    )
    assert r.status_code == 200
    user = (await gate_login(face, email))["user"]
    assert user["account"] == account and user["username"] == "second"


async def test_gate_registration_signs_in_on_the_runtime_face_with_the_email(face):
    account = uniq("Gate")
    await register(face, account, username="门")
    r = await face.client.post(
        "/api/v1/auth/sessions", json={"email": email_of(account), "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    profile = (await face.client.get("/api/v1/users/me", headers=bearer(r.json()["access_token"]))).json()
    assert profile["username"] == "门"


async def test_a_code_from_one_face_completes_on_the_other(face):
    account = uniq("Code")
    r = await face.client.post(
        "/api/auth/register",
        json={"account": account, "password": PASSWORD, "username": "x", "email": email_of(account)},
    )
    assert r.status_code == 200
    code = await face.last_code(email_of(account))
    r = await face.client.post(
        "/api/v1/auth/verifications/verify", json={"email": email_of(account), "token": code}
    )
    assert r.status_code == 200, r.text
    assert (await gate_login(face, account))["user"]["account"] == account  # the chosen name was kept


async def test_tokens_of_either_face_work_on_the_other(face):
    account = uniq()
    await register(face, account)
    gate_token = (await gate_login(face, account))["token"]
    assert (await face.client.get("/api/v1/users/me", headers=bearer(gate_token))).status_code == 200
    r = await face.client.post(
        "/api/v1/auth/sessions", json={"email": email_of(account), "password": PASSWORD}
    )
    runtime = r.json()["access_token"]
    assert (await face.client.get("/api/auth/me", headers=bearer(runtime))).json()["user"][
        "account"
    ] == account
    assert await valid(face, runtime) is True


async def test_gate_tokens_verify_with_the_published_jwks_and_last_seven_days(face):
    account = uniq()
    await register(face, account)
    token = (await gate_login(face, account))["token"]
    jwks = (await face.client.get("/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid))
    claims = jwt.decode(
        token, key.key, algorithms=["ES256"], audience="sproutgate:api", options={"verify_iss": False}
    )
    assert set(claims) >= {"sub", "sid", "iat", "exp", "iss"}
    assert claims["exp"] - claims["iat"] == 7 * 24 * 3600


async def test_a_runtime_password_reset_revokes_gate_tokens(face):
    # Made by an admin: a registration would use up the address's one code mail a minute.
    account = (await admin_create(face))["account"]
    gate_token = (await gate_login(face, account))["token"]
    r = await face.client.post("/api/v1/auth/password-reset", json={"email": email_of(account)})
    assert r.status_code == 204
    code = await face.last_code(email_of(account), "reset_code")
    r = await face.client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"email": email_of(account), "token": code, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 204, r.text
    assert await valid(face, gate_token) is False
    await gate_login(face, account, NEW_PASSWORD)


async def test_profile_changes_show_on_both_faces(face):
    account = uniq()
    await register(face, account)
    token = (await gate_login(face, account))["token"]
    r = await face.client.put(
        "/api/auth/profile",
        json={"username": "两字", "avatarUrl": "https://example.com/x.png", "bio": "**hi**"},
        headers=bearer(token),
    )
    assert r.status_code == 200
    profile = (await face.client.get("/api/v1/users/me", headers=bearer(token))).json()
    assert (profile["username"], profile["avatar_url"], profile["bio"]) == (
        "两字",
        "https://example.com/x.png",
        "**hi**",
    )
    r = await face.client.patch("/api/v1/users/me", json={"bio": "short"}, headers=bearer(token))
    assert r.status_code == 200
    assert (await face.client.get("/api/auth/me", headers=bearer(token))).json()["user"]["bio"] == "short"
