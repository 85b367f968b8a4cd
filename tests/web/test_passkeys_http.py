"""Passkeys over HTTP (in-process app, both engines): the pages' ceremony endpoints answered by a
software authenticator (tests/support/soft_authenticator.py). What Chromium cannot be made to do
is here: replays, expiry, a counter that goes back, backup eligibility that changes, no user
verification, another origin, a user handle that is not the owner's, challenges bound to another
browser, user or sign-in, the attempt cap of a second step, bad input; and what the rest of the
system does with passkeys (the factor list, the admin summary and reset, export, deletion)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import func, select
from test_pages_http import PASSWORD, csrf_of, form_token, make_user

from sproutgate.domain.mfa.rules import MFA_TOKEN_MAX_ATTEMPTS
from sproutgate.domain.passkeys.rules import CHALLENGE_TTL_SECONDS
from sproutgate.storage.models import Passkey, PasskeyChallenge, User
from support.harness import bearer
from support.soft_authenticator import SoftAuthenticator

pytestmark = pytest.mark.both_engines

ORIGIN = "http://testserver"
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
ADMIN = {"X-Admin-Token": "passkey-http-admin-token"}


@pytest.fixture
async def h(make_harness, make_settings):
    return await make_harness(make_settings(admin_token=ADMIN["X-Admin-Token"]))


async def page_csrf(client: httpx.AsyncClient, path: str = "/login") -> str:
    """The CSRF token our pages' scripts send (signed in, /login leads to the account page)."""
    r = await client.get(path, follow_redirects=True)
    assert r.status_code == 200, r.text
    found = META_CSRF.search(r.text)
    assert found
    return found.group(1)


async def post_json(client: httpx.AsyncClient, path: str, body: Any, csrf_from: str = "/login", **headers):
    token = await page_csrf(client, csrf_from)
    return await client.post(
        path, json=body, headers={"X-CSRF-Token": token, "Accept-Language": "en", **headers}
    )


async def signed_in(h, user: dict) -> httpx.AsyncClient:
    client = h.new_client()
    token = await form_token(client, "/login")
    r = await client.post(
        "/login", data={"csrf_token": token, "identifier": user["account"], "password": PASSWORD}
    )
    assert r.status_code == 303, r.text
    return client


async def register(h, client: httpx.AsyncClient, device: SoftAuthenticator, name: str = "Key", **kw) -> dict:
    r = await post_json(client, "/account/passkeys/registration/options", {}, "/account")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    options = r.json()
    r = await post_json(
        client,
        "/account/passkeys/registration/verify",
        {"name": name, "credential": device.create(options, **kw)},
        "/account",
    )
    assert r.status_code == 201, r.text
    return r.json()


async def sign_in_options(client: httpx.AsyncClient) -> dict:
    r = await post_json(client, "/login/passkey/options", {})
    assert r.status_code == 200, r.text
    return r.json()


async def sign_in_with(client: httpx.AsyncClient, credential: dict, **extra) -> httpx.Response:
    return await post_json(client, "/login/passkey/verify", {"credential": credential, **extra})


async def user_with_passkey(h, **kw) -> tuple[dict, SoftAuthenticator, dict]:
    user = await make_user(h)
    device = SoftAuthenticator(ORIGIN, **kw)
    client = await signed_in(h, user)
    info = await register(h, client, device)
    await client.aclose()
    return user, device, info


async def api_token(h, user: dict) -> str:
    r = await h.client.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["code"] == code, body
    return body


async def stored(h, account: str) -> list[Passkey]:
    """The passkeys of the user with the account name ``account``, as stored."""
    async with h.services.db.read() as s:
        stmt = select(Passkey).join(User, User.id == Passkey.user_id).where(User.account == account)
        return list((await s.execute(stmt)).scalars())


# -- registration -------------------------------------------------------------------------------
async def test_registration_options_are_level_3_json_for_a_discoverable_verified_credential(h):
    user = await make_user(h)
    client = await signed_in(h, user)
    r = await post_json(client, "/account/passkeys/registration/options", {}, "/account")
    options = r.json()
    assert options["rp"] == {"id": "testserver", "name": "SproutGate"}
    assert options["user"]["name"] == user["account"] and len(options["user"]["id"]) == 43
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none" and options["timeout"] == CHALLENGE_TTL_SECONDS * 1000
    assert {p["alg"] for p in options["pubKeyCredParams"]} == {-8, -7, -257}
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", options["challenge"])  # 32 bytes, base64url
    assert r.headers["cache-control"] == "no-store"
    # Only a hash of the challenge is stored.
    async with h.services.db.read() as s:
        rows = list((await s.execute(select(PasskeyChallenge))).scalars())
    assert len(rows) == 1 and options["challenge"] not in repr(vars(rows[0]))
    await client.aclose()


async def test_adding_a_passkey_lists_it_mails_the_owner_and_counts_for_the_admin(h):
    user = await make_user(h)
    device = SoftAuthenticator(ORIGIN)
    client = await signed_in(h, user)
    info = await register(h, client, device, name="  My phone  ")
    assert info["name"] == "My phone" and info["last_used_at"] is None
    token = await api_token(h, user)
    status = (await h.client.get("/api/v1/users/me/mfa", headers=bearer(token))).json()
    assert status["totp"] is False and status["passkeys"] == [info]
    assert "passkey_added" in [m["kind"] for m in await h.mailbox(user["email"])]
    r = await h.client.get("/api/admin/users", params={"q": user["account"]}, headers=ADMIN)
    assert r.json()["users"][0]["mfa"] == {"totp": False, "passkeys": 1}
    # The account page lists it.
    page = (await client.get("/account")).text
    assert 'data-testid="passkeys"' in page and "My phone" in page
    # Stored: the public key and counter, never a private key.
    (row,) = await stored(h, user["account"])
    assert row.sign_count == 0 and row.backup_eligible is False and row.transports == ["internal"]
    # The same authenticator's credential again is refused.
    again = await post_json(client, "/account/passkeys/registration/options", {}, "/account")
    assert again.json()["excludeCredentials"][0]["id"] == row.credential_id
    await client.aclose()


async def test_adding_a_passkey_needs_a_recent_sign_in_or_the_password(h):
    user = await make_user(h)
    device = SoftAuthenticator(ORIGIN)
    client = await signed_in(h, user)
    h.clock.advance(h.services.settings.recent_auth_seconds + 1)
    r = await post_json(client, "/account/passkeys/registration/options", {}, "/account")
    problem(r, 401, "reauthentication_required")
    r = await post_json(
        client, "/account/passkeys/registration/options", {"password": "Wrong#2026pw"}, "/account"
    )
    assert problem(r, 401, "wrong_password")["detail"] == "The password is wrong."
    r = await post_json(client, "/account/passkeys/registration/options", {"password": PASSWORD}, "/account")
    assert r.status_code == 200, r.text
    r = await post_json(
        client,
        "/account/passkeys/registration/verify",
        {"name": "Key", "credential": device.create(r.json())},
        "/account",
    )
    assert r.status_code == 201, r.text
    await client.aclose()


async def test_registration_responses_that_do_not_verify_are_refused(h):
    user = await make_user(h)
    device = SoftAuthenticator(ORIGIN)
    client = await signed_in(h, user)

    async def attempt(name: str = "Key", **kw) -> httpx.Response:
        r = await post_json(client, "/account/passkeys/registration/options", {}, "/account")
        credential = device.create(r.json(), **kw)
        return await post_json(
            client,
            "/account/passkeys/registration/verify",
            {"name": name, "credential": credential},
            "/account",
        )

    problem(await attempt(uv=False), 400, "passkey_registration_failed")
    problem(await attempt(origin="https://evil.example"), 400, "passkey_registration_failed")
    assert problem(await attempt(name="   "), 422, "invalid_input")["errors"][0]["field"] == "name"
    problem(await attempt(name="bad\x00name"), 422, "invalid_input")
    # A response to no challenge of ours, and a malformed body, are 4xx too.
    r = await post_json(
        client,
        "/account/passkeys/registration/verify",
        {"name": "Key", "credential": {"id": "x", "response": {}}},
        "/account",
    )
    problem(r, 401, "passkey_challenge_invalid")
    r = await post_json(client, "/account/passkeys/registration/verify", {"name": "Key"}, "/account")
    problem(r, 422, "invalid_input")
    token = await page_csrf(client, "/account")
    r = await client.post(
        "/account/passkeys/registration/verify",
        content=b"{not json",
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    problem(r, 422, "malformed_json")
    assert await stored(h, user["account"]) == []
    await client.aclose()


async def test_a_registration_challenge_is_bound_to_its_session_and_single_use(h):
    user = await make_user(h)
    device = SoftAuthenticator(ORIGIN)
    first, second = await signed_in(h, user), await signed_in(h, user)
    r = await post_json(first, "/account/passkeys/registration/options", {}, "/account")
    credential = device.create(r.json())
    # Another session of the same user cannot finish it.
    body = {"name": "Key", "credential": credential}
    problem(
        await post_json(second, "/account/passkeys/registration/verify", body, "/account"),
        401,
        "passkey_challenge_invalid",
    )
    # ...and that attempt used the challenge up.
    problem(
        await post_json(first, "/account/passkeys/registration/verify", body, "/account"),
        401,
        "passkey_challenge_invalid",
    )
    # Nor does a challenge outlive CHALLENGE_TTL_SECONDS.
    r = await post_json(first, "/account/passkeys/registration/options", {}, "/account")
    credential = device.create(r.json())
    h.clock.advance(CHALLENGE_TTL_SECONDS + 1)
    r = await post_json(
        first, "/account/passkeys/registration/verify", {"name": "Key", "credential": credential}, "/account"
    )
    problem(r, 401, "passkey_challenge_invalid")
    await first.aclose()
    await second.aclose()


async def test_the_ceremony_endpoints_need_the_csrf_token_and_a_signed_in_owner(h):
    client = h.new_client()
    r = await client.post("/login/passkey/options", json={}, headers={"Accept-Language": "en"})
    problem(r, 403, "csrf_failed")
    r = await post_json(client, "/login/passkey/options", {}, Origin="https://evil.example")
    problem(r, 403, "csrf_failed")
    r = await post_json(client, "/account/passkeys/registration/options", {})
    problem(r, 401, "not_authenticated")
    await client.aclose()


# -- signing in with a passkey alone --------------------------------------------------------------
async def test_a_passkey_signs_in_alone_and_its_counter_moves_forward(h):
    user, device, info = await user_with_passkey(h)
    client = h.new_client()
    options = await sign_in_options(client)
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    assert options["rpId"] == "testserver"
    r = await sign_in_with(client, device.get(options), next="/account#sessions")
    assert r.status_code == 200, r.text
    assert r.json() == {"location": "/account#sessions"}
    assert "sg_session" in r.cookies and "sg_passkey" not in client.cookies
    assert (await client.get("/account")).status_code == 200
    (row,) = await stored(h, user["account"])
    assert row.sign_count == 1 and row.last_used_at is not None
    # The counter goes back: refused (§6.1.1), and so is the same count again.
    other = h.new_client()
    r = await sign_in_with(other, device.get(await sign_in_options(other), counter=1))
    problem(r, 401, "passkey_rejected")
    r = await sign_in_with(other, device.get(await sign_in_options(other), counter=0))
    assert problem(r, 401, "passkey_rejected")["detail"].startswith("The passkey could not be verified")
    r = await sign_in_with(other, device.get(await sign_in_options(other), counter=7))
    assert r.status_code == 200, r.text
    assert (await stored(h, user["account"]))[0].sign_count == 7
    for c in (client, other):
        await c.aclose()


async def test_an_assertion_is_single_use_short_lived_and_bound_to_its_browser(h):
    user, device, _ = await user_with_passkey(h)
    client = h.new_client()
    credential = device.get(await sign_in_options(client))
    # Another browser (without this one's cookie) cannot use this browser's challenge.
    thief = h.new_client()
    await page_csrf(thief)
    problem(await sign_in_with(thief, credential), 401, "passkey_challenge_invalid")
    # The attempt used it up: the right browser is refused too (replay).
    problem(await sign_in_with(client, credential), 401, "passkey_challenge_invalid")
    # In time it works once; the same response again is a replay.
    credential = device.get(await sign_in_options(client))
    cookie = client.cookies.get("sg_passkey")
    assert (await sign_in_with(client, credential)).status_code == 200
    client.cookies.set("sg_passkey", cookie or "", path="/login/passkey")
    problem(await sign_in_with(client, credential), 401, "passkey_challenge_invalid")
    # A challenge answered too late is refused.
    late = h.new_client()
    credential = device.get(await sign_in_options(late))
    h.clock.advance(CHALLENGE_TTL_SECONDS + 1)
    problem(await sign_in_with(late, credential), 401, "passkey_challenge_invalid")
    for c in (client, thief, late):
        await c.aclose()


async def test_assertions_a_real_authenticator_would_not_send_are_refused(h):
    user, device, _ = await user_with_passkey(h)
    client = h.new_client()

    async def attempt(**kw) -> httpx.Response:
        return await sign_in_with(client, device.get(await sign_in_options(client), **kw))

    from cryptography.hazmat.primitives.asymmetric import ec

    problem(await attempt(uv=False), 401, "passkey_rejected")  # no user verification
    problem(await attempt(be=True), 401, "passkey_rejected")  # backup eligibility changed (§6.3.3)
    problem(await attempt(be=False, bs=True), 401, "passkey_rejected")  # backed up, not eligible
    problem(await attempt(origin="https://evil.example"), 401, "passkey_rejected")
    problem(await attempt(user_handle=b"someone else"), 401, "passkey_rejected")
    problem(await attempt(with_user_handle=False), 401, "passkey_rejected")  # discoverable: required
    problem(await attempt(key=ec.generate_private_key(ec.SECP256R1())), 401, "passkey_rejected")
    stranger = SoftAuthenticator(ORIGIN)
    stranger.create({"rp": {"id": "testserver"}, "user": {"id": "AAAA"}, "challenge": "AAAA"})
    r = await sign_in_with(client, stranger.get(await sign_in_options(client)))
    assert problem(r, 401, "passkey_not_recognized")["detail"].startswith("This passkey is not registered")
    # Malformed responses are refused without a 500.
    for bad in ({}, {"id": "@@", "response": []}, {"id": "AAAA", "response": {"clientDataJSON": "!!"}}):
        assert (await sign_in_with(client, bad)).status_code == 401
    problem(await post_json(client, "/login/passkey/verify", {"credential": "nope"}), 422, "invalid_input")
    # Through all that the session count of the user stayed at none but the registration's.
    assert (await client.get("/account")).status_code != 200
    await client.aclose()


async def test_a_passkey_of_a_disabled_account_opens_nothing(h):
    user, device, _ = await user_with_passkey(h)
    r = await h.client.put(f"/api/admin/users/{user['account']}", json={"disabled": True}, headers=ADMIN)
    assert r.status_code == 200, r.text
    client = h.new_client()
    problem(await sign_in_with(client, device.get(await sign_in_options(client))), 403, "account_disabled")
    await client.aclose()


async def test_a_refused_assertion_answers_in_chinese_too(h):
    _, device, _ = await user_with_passkey(h)
    client = h.new_client()
    credential = device.get(await sign_in_options(client), uv=False)
    token = await page_csrf(client)
    r = await client.post(
        "/login/passkey/verify",
        json={"credential": credential},
        headers={"X-CSRF-Token": token, "Accept-Language": "zh-CN"},
    )
    assert problem(r, 401, "passkey_rejected")["detail"].startswith("通行密钥验证失败")
    await client.aclose()


# -- the second step -------------------------------------------------------------------------------
async def enrol_totp(h, user: dict) -> str:
    token = await api_token(h, user)
    h.clock.advance((15 - h.clock.now().timestamp() % 30) % 30)
    r = await h.client.post("/api/v1/users/me/mfa/totp", json={}, headers=bearer(token))
    secret = r.json()["secret"]
    r = await h.client.post(
        "/api/v1/users/me/mfa/totp/verify",
        json={"code": pyotp.TOTP(secret).at(h.clock.now())},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    return secret


async def password_step(h, user: dict) -> tuple[httpx.AsyncClient, str, str]:
    client = h.new_client(**{"Accept-Language": "en"})
    token = await form_token(client, "/login")
    r = await client.post(
        "/login", data={"csrf_token": token, "identifier": user["account"], "password": PASSWORD}
    )
    assert r.status_code == 200 and 'action="/login/mfa"' in r.text, r.text
    mfa_token = r.text.split('name="mfa_token" value="')[1].split('"')[0]
    return client, mfa_token, r.text


async def test_a_passkey_alone_leaves_password_sign_in_one_step_on_both_faces(h):
    user, _, _ = await user_with_passkey(h)
    r = await h.client.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    r = await h.client.post("/api/auth/login", json={"account": user["account"], "password": PASSWORD})
    assert r.status_code == 200, r.text


async def test_a_passkey_completes_the_password_step_when_an_app_is_on(h):
    user, device, _ = await user_with_passkey(h)
    await enrol_totp(h, user)
    r = await h.client.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD})
    assert r.json()["factors"] == ["totp", "recovery_code", "passkey"]
    client, mfa_token, page = await password_step(h, user)
    assert 'data-passkey="second-step"' in page and "Use a passkey instead" in page
    r = await post_json(client, "/login/mfa/passkey/options", {"mfa_token": mfa_token})
    assert r.status_code == 200, r.text
    options = r.json()
    assert [c["id"] for c in options["allowCredentials"]] == [
        (await stored(h, user["account"]))[0].credential_id
    ]
    r = await post_json(
        client,
        "/login/mfa/passkey/verify",
        {"mfa_token": mfa_token, "credential": device.get(options), "next": "/account"},
    )
    assert r.status_code == 200 and r.json() == {"location": "/account"}, r.text
    assert (await client.get("/account")).status_code == 200
    # The password step is used up: neither a code nor another passkey completes it again.
    r = await post_json(client, "/login/mfa/passkey/options", {"mfa_token": mfa_token}, "/account")
    problem(r, 401, "invalid_mfa_token")
    # With the app on, the passkey alone still signs in without a code: it is two factors.
    alone = h.new_client()
    r = await sign_in_with(alone, device.get(await sign_in_options(alone)))
    assert r.status_code == 200 and r.json() == {"location": "/account"}, r.text
    assert (await alone.get("/account")).status_code == 200
    for c in (client, alone):
        await c.aclose()


async def test_wrong_passkeys_at_the_second_step_wear_its_token_out(h):
    user, device, _ = await user_with_passkey(h)
    await enrol_totp(h, user)
    other_user, other_device, _ = await user_with_passkey(h)
    client, mfa_token, _ = await password_step(h, user)
    for attempt in range(MFA_TOKEN_MAX_ATTEMPTS):
        r = await post_json(client, "/login/mfa/passkey/options", {"mfa_token": mfa_token})
        assert r.status_code == 200, (attempt, r.text)
        options = r.json()
        # Another account's passkey, answering this challenge, is not this account's.
        bad = other_device.get({**options, "rpId": "testserver"})
        r = await post_json(client, "/login/mfa/passkey/verify", {"mfa_token": mfa_token, "credential": bad})
        problem(r, 401, "passkey_not_recognized")
    r = await post_json(client, "/login/mfa/passkey/options", {"mfa_token": mfa_token})
    problem(r, 401, "invalid_mfa_token")
    # A challenge for one password step does not serve another.
    client2, token2, _ = await password_step(h, user)
    client3, token3, _ = await password_step(h, user)
    options = (await post_json(client2, "/login/mfa/passkey/options", {"mfa_token": token2})).json()
    r = await post_json(
        client3, "/login/mfa/passkey/verify", {"mfa_token": token3, "credential": device.get(options)}
    )
    problem(r, 401, "passkey_challenge_invalid")
    for c in (client, client2, client3):
        await c.aclose()


async def test_the_second_step_asks_for_a_passkey_only_of_accounts_that_have_one(h):
    user = await make_user(h)
    await enrol_totp(h, user)
    client, mfa_token, page = await password_step(h, user)
    assert 'data-passkey="second-step"' not in page
    problem(
        await post_json(client, "/login/mfa/passkey/options", {"mfa_token": mfa_token}), 409, "no_passkeys"
    )
    problem(
        await post_json(client, "/login/mfa/passkey/options", {"mfa_token": "nope"}), 401, "invalid_mfa_token"
    )
    await client.aclose()


# -- removing, and the rest of the system ---------------------------------------------------------
async def test_removing_a_passkey_ends_other_sessions_and_mails_the_owner(h):
    user = await make_user(h)
    device = SoftAuthenticator(ORIGIN)
    client, elsewhere = await signed_in(h, user), await signed_in(h, user)
    info = await register(h, client, device)
    token = await api_token(h, user)
    csrf = csrf_of((await client.get("/account")).text)
    r = await client.post(f"/account/passkeys/{info['id']}/remove", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/account?notice=passkey_removed#passkeys"
    assert (await client.get("/account")).status_code == 200
    assert (await elsewhere.get("/account")).status_code == 303  # signed out
    assert (await h.client.get("/api/v1/users/me", headers=bearer(token))).status_code == 401
    assert "passkey_removed" in [m["kind"] for m in await h.mailbox(user["email"])]
    assert await stored(h, user["account"]) == []
    # Another user's passkey, or one already gone, is not found.
    r = await client.post(f"/account/passkeys/{info['id']}/remove", data={"csrf_token": csrf})
    assert r.status_code == 404
    other = h.new_client()
    problem(
        await sign_in_with(other, device.get(await sign_in_options(other))), 401, "passkey_not_recognized"
    )
    for c in (client, elsewhere, other):
        await c.aclose()


async def test_removing_a_passkey_needs_a_recent_sign_in_or_the_password(h):
    user = await make_user(h)
    device = SoftAuthenticator(ORIGIN)
    client, elsewhere = await signed_in(h, user), await signed_in(h, user)
    info = await register(h, client, device, name="Phone key")
    h.clock.advance(h.services.settings.recent_auth_seconds + 1)
    page = (await client.get("/account", headers={"Accept-Language": "en"})).text
    assert 'name="password" type="password" autocomplete="current-password"' in page
    csrf = csrf_of(page)
    path = f"/account/passkeys/{info['id']}/remove"
    field = f'id="f-passkey_remove_password_{info["id"]}-error"'
    # The session and the CSRF token alone (a stolen cookie) no longer remove it.
    r = await client.post(path, data={"csrf_token": csrf}, headers={"Accept-Language": "en"})
    assert r.status_code == 401 and field in r.text
    assert "Enter your current password: you signed in a while ago." in r.text
    r = await client.post(
        path, data={"csrf_token": csrf, "password": "Wrong#2026pw"}, headers={"Accept-Language": "zh-CN"}
    )
    assert r.status_code == 401 and field in r.text and "密码错误" in r.text
    # Nothing happened: the passkey signs in, the other session lives, no mail went out.
    assert [p.id for p in await stored(h, user["account"])] == [info["id"]]
    assert (await elsewhere.get("/account")).status_code == 200
    assert "passkey_removed" not in [m["kind"] for m in await h.mailbox(user["email"])]
    other = h.new_client()
    assert (await sign_in_with(other, device.get(await sign_in_options(other)))).status_code == 200
    # Another user's passkey id answers the same re-authentication first: nothing to probe.
    r = await client.post("/account/passkeys/not-a-passkey/remove", data={"csrf_token": csrf})
    assert r.status_code == 401
    # The current password removes it, and the owner is still mailed.
    r = await client.post(path, data={"csrf_token": csrf, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/account?notice=passkey_removed#passkeys"
    assert await stored(h, user["account"]) == []
    assert "passkey_removed" in [m["kind"] for m in await h.mailbox(user["email"])]
    assert (await elsewhere.get("/account")).status_code == 303
    for c in (client, elsewhere, other):
        await c.aclose()


async def test_a_fresh_passkey_sign_in_removes_another_passkey_without_the_password(h):
    user = await make_user(h)
    phone, laptop = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    client = await signed_in(h, user)
    await register(h, client, phone, name="Phone")
    old = await register(h, client, laptop, name="Laptop")
    h.clock.advance(h.services.settings.recent_auth_seconds + 1)
    # Signing in again with a passkey is a sign-in: it is recent, so no password is asked.
    fresh = h.new_client()
    r = await sign_in_with(fresh, phone.get(await sign_in_options(fresh)))
    assert r.status_code == 200, r.text
    csrf = csrf_of((await fresh.get("/account")).text)
    r = await fresh.post(f"/account/passkeys/{old['id']}/remove", data={"csrf_token": csrf})
    assert r.status_code == 303, r.text
    assert [p.name for p in await stored(h, user["account"])] == ["Phone"]
    # The older session of the same person was not recent and is signed out now.
    assert (await client.get("/account")).status_code == 303
    for c in (client, fresh):
        await c.aclose()


async def test_a_wrong_password_at_removal_counts_as_a_failed_sign_in(make_harness, make_settings):
    h = await make_harness(
        make_settings(admin_token=ADMIN["X-Admin-Token"], limit_login_fail_account="3/hour")
    )
    user, _, info = await user_with_passkey(h)
    client = await signed_in(h, user)
    h.clock.advance(h.services.settings.recent_auth_seconds + 1)
    csrf = csrf_of((await client.get("/account")).text)
    path = f"/account/passkeys/{info['id']}/remove"
    for _ in range(3):
        r = await client.post(path, data={"csrf_token": csrf, "password": "Wrong#2026pw"})
        assert r.status_code == 401
    r = await client.post(path, data={"csrf_token": csrf, "password": PASSWORD})
    assert r.status_code == 429 and r.headers["retry-after"]
    assert len(await stored(h, user["account"])) == 1
    await client.aclose()


async def test_admin_reset_removes_passkeys(h):
    user, device, _ = await user_with_passkey(h)
    r = await h.client.put(f"/api/admin/users/{user['account']}", json={"resetMfa": True}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["user"]["mfa"] == {"totp": False, "passkeys": 0}, r.text
    assert "mfa_reset" in [m["kind"] for m in await h.mailbox(user["email"])]
    client = h.new_client()
    problem(
        await sign_in_with(client, device.get(await sign_in_options(client))), 401, "passkey_not_recognized"
    )
    await client.aclose()


async def test_export_lists_passkeys_without_key_material_and_deletion_removes_them(h):
    user, _, info = await user_with_passkey(h, backup_eligible=True)
    (row,) = await stored(h, user["account"])
    token = await api_token(h, user)
    r = await h.client.get("/api/v1/users/me/export", headers=bearer(token))
    assert r.status_code == 200, r.text
    exported = r.json()["second_factors"]["passkeys"]
    assert exported == [{**info, "synced": True}]
    assert row.credential_id not in r.text and row.user_handle not in r.text
    r = await h.client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=bearer(token)
    )
    assert r.status_code == 204, r.text
    async with h.services.db.read() as s:
        assert (await s.execute(select(func.count()).select_from(Passkey))).scalar_one() == 0


async def test_expired_challenges_are_purged(h):
    from sproutgate.domain.housekeeping.service import purge_once

    client = h.new_client()
    await sign_in_options(client)
    await sign_in_options(client)
    h.clock.advance(timedelta(seconds=CHALLENGE_TTL_SECONDS + 1).total_seconds())
    assert (await purge_once(h.services.db, h.clock))["passkey_challenges"] == 2
    await client.aclose()


async def test_a_passkey_sign_in_records_its_amr_on_the_session_for_apps(h):
    """The session a passkey opens remembers how (RFC 8176 ``amr``): the ID tokens of apps
    signed in through it say so (docs/oidc.md, "Tokens")."""
    from sproutgate.storage.models import AuthSession

    user, device, _ = await user_with_passkey(h)
    client = h.new_client()
    r = await sign_in_with(client, device.get(await sign_in_options(client)))
    assert r.status_code == 200, r.text
    async with h.services.db.read() as s:
        user_id = (await s.execute(select(User.id).where(User.account == user["account"]))).scalar_one()
        rows = (await s.execute(select(AuthSession.amr).where(AuthSession.user_id == user_id))).scalars()
        amrs = [a for a in rows]
    assert ["pwd"] in amrs  # the password sign-in that registered the passkey
    assert ["hwk", "mfa"] in amrs, amrs  # the soft authenticator's key is device-bound
    await client.aclose()


async def test_a_passkey_answers_the_recent_sign_in_lasting_access_asks_for(h):
    """An app asking for ``offline_access`` from a sign-in older than
    ``SPROUTGATE_RECENT_AUTH_SECONDS`` is sent to the sign-in page first (docs/security.md,
    "Lasting access asks for a recent sign-in"); a passkey sign-in there answers it, like the
    password, and the app's grant records it (``amr``)."""
    import base64
    import hashlib
    import secrets
    from urllib.parse import parse_qs, urlsplit

    from sproutgate.domain.clients.rules import ClientSpec

    callback = "https://app.example/callback"
    created = await h.services.clients.create(
        ClientSpec(
            name="Pocket Notes",
            redirect_uris=(callback,),
            post_logout_redirect_uris=(),
            backchannel_logout_uri=None,
            public=False,
            first_party=True,
            scopes=("openid", "offline_access"),
            grant_types=("authorization_code", "refresh_token"),
        ),
        "test",
    )
    client_id, secret = created.client.client_id, created.client_secret
    user, device, _ = await user_with_passkey(h)
    browser = await signed_in(h, user)
    h.clock.advance(h.services.settings.recent_auth_seconds + 60)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": callback,
        "scope": "openid offline_access",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    r = await browser.get("/oauth2/authorize", params=params)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?"), r.headers["location"]
    back = parse_qs(urlsplit(r.headers["location"]).query)["next"][0]

    r = await sign_in_with(browser, device.get(await sign_in_options(browser)), next=back)
    assert r.status_code == 200 and r.json() == {"location": back}, r.text
    r = await browser.get(back)
    assert r.status_code == 303 and r.headers["location"].startswith(callback + "?code="), r.headers[
        "location"
    ]
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback,
            "code_verifier": verifier,
        },
        auth=(client_id, secret or ""),
    )
    assert r.status_code == 200 and r.json()["refresh_token"], r.text
    claims = h.services.signer.verify_claims(
        r.json()["id_token"], issuer="http://testserver", token_type="JWT"
    )
    assert claims["amr"] == ["hwk", "mfa"]
    await browser.aclose()
