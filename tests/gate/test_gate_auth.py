"""/api/auth/*: every endpoint's success and error paths, in-process and on a real server."""

# ruff: noqa: F811 - pytest fixtures imported from gate_support are redefined as arguments

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from gate_support import (
    HAN,
    ISO_UTC,
    NEW_PASSWORD,
    PASSWORD,
    USER_FIELDS,
    admin_create,
    asgi_face,  # noqa: F401 - fixture
    assert_problem,
    bearer,
    email_of,
    error_fields,
    face,  # noqa: F401 - fixture
    gate_login,
    gate_server,  # noqa: F401 - fixture
    register,
    uniq,
    valid,
)


def _parse(ts: str) -> datetime:
    assert ISO_UTC.match(ts), ts
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


# -- login ------------------------------------------------------------------------------------
async def test_login_answers_token_expiry_and_the_documented_user_object(face):
    account = uniq("Demo")
    await register(face, account, username="示例")
    body = await gate_login(face, account)
    assert set(body) == {"token", "expiresAt", "user"}
    assert set(body["user"]) == USER_FIELDS
    user = body["user"]
    assert user["account"] == account and user["username"] == "示例" and user["email"] == email_of(account)
    assert user["level"] == 0 and user["sproutCoins"] == 0 and user["secondaryEmails"] == []
    lifetime = _parse(body["expiresAt"]) - datetime.now(UTC)
    assert timedelta(days=7) - timedelta(minutes=2) < lifetime <= timedelta(days=7)
    assert _parse(user["createdAt"]) <= datetime.now(UTC)
    assert body["token"].count(".") == 2  # a JWT


async def test_login_by_account_any_case_primary_email_and_verified_secondary_email(face):
    account = uniq("Mixed")
    await register(face, account)
    token = (await gate_login(face, account.upper()))["token"]
    await gate_login(face, email_of(account).upper())
    second = f"second-{account.lower()}@example.net"
    r = await face.client.post(
        "/api/auth/secondary-email/request", json={"email": second}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    code = await face.last_code(second)
    r = await face.client.post(
        "/api/auth/secondary-email/verify", json={"email": second, "code": code}, headers=bearer(token)
    )
    assert r.status_code == 200 and r.json()["verified"] is True
    assert (await gate_login(face, second))["user"]["account"] == account
    r = await face.client.post("/api/v1/auth/sessions", json={"email": second, "password": PASSWORD})
    assert r.status_code == 200, r.text  # the runtime face signs in with it too


async def test_wrong_password_and_unknown_account_get_the_same_401(face):
    account = uniq()
    await register(face, account)
    wrong = await face.client.post("/api/auth/login", json={"account": account, "password": "Wrong#pass99"})
    unknown = await face.client.post("/api/auth/login", json={"account": uniq(), "password": "Wrong#pass99"})
    a, b = (
        assert_problem(wrong, 401, "invalid_credentials"),
        assert_problem(unknown, 401, "invalid_credentials"),
    )
    assert a.pop("request_id") != b.pop("request_id")  # each request its own id, nothing else differs
    assert a == b
    assert HAN.search(a["detail"])  # zh-CN by default


async def test_disabled_user_gets_403_for_the_right_password_401_for_a_wrong_one_and_loses_sessions(face):
    user = await admin_create(face)
    token = (await gate_login(face, user["account"]))["token"]
    admin = {"X-Admin-Token": face.admin_token}
    r = await face.client.put(f"/api/admin/users/{user['account']}", json={"disabled": True}, headers=admin)
    assert r.status_code == 200 and r.json()["user"]["disabled"] is True
    assert await valid(face, token) is False
    assert_problem(await face.client.get("/api/auth/me", headers=bearer(token)), 401)
    r = await face.client.post("/api/auth/login", json={"account": user["account"], "password": PASSWORD})
    assert_problem(r, 403, "account_disabled")
    r = await face.client.post(
        "/api/auth/login", json={"account": user["account"], "password": "Nope#pass99"}
    )
    assert_problem(r, 401, "invalid_credentials")
    # Enabling again does not revive the old token.
    r = await face.client.put(f"/api/admin/users/{user['account']}", json={"disabled": False}, headers=admin)
    assert r.status_code == 200
    assert await valid(face, token) is False
    await gate_login(face, user["account"])


async def test_repeated_failed_logins_are_throttled(face):
    account = uniq()
    await register(face, account)
    for _ in range(10):
        r = await face.client.post("/api/auth/login", json={"account": account, "password": "Wrong#pass99"})
        assert r.status_code == 401
    r = await face.client.post("/api/auth/login", json={"account": account, "password": PASSWORD})
    assert_problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) > 0


@pytest.mark.engine_independent
async def test_login_validation_errors_name_the_wire_fields(face):
    r = await face.client.post("/api/auth/login", json={}, headers={"Accept-Language": "en"})
    body = assert_problem(r, 422, "invalid_input")
    assert error_fields(r) == {"account": "field_required", "password": "field_required"}
    assert not HAN.search(body["detail"])
    r = await face.client.post(
        "/api/auth/login", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 422, "malformed_json")


# -- verify, logout, me -----------------------------------------------------------------------
async def test_verify_is_valid_with_the_user_until_logout(face):
    account = uniq()
    await register(face, account)
    token = (await gate_login(face, account))["token"]
    r = await face.client.post("/api/auth/verify", json={"token": token})
    assert r.status_code == 200
    assert r.json()["valid"] is True and set(r.json()["user"]) == USER_FIELDS
    r = await face.client.post("/api/auth/logout", headers=bearer(token))
    assert r.status_code == 200 and r.json() == {"loggedOut": True}
    r = await face.client.post("/api/auth/verify", json={"token": token})
    assert r.status_code == 200 and r.json() == {"valid": False}
    assert_problem(await face.client.post("/api/auth/logout", headers=bearer(token)), 401)


@pytest.mark.engine_independent
@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 20000])
async def test_verify_answers_valid_false_for_bad_tokens(face, token):
    r = await face.client.post("/api/auth/verify", json={"token": token})
    assert r.status_code == 200 and r.json() == {"valid": False}


@pytest.mark.engine_independent
async def test_verify_without_a_token_field_is_422(face):
    r = await face.client.post("/api/auth/verify", json={})
    assert_problem(r, 422)
    assert error_fields(r) == {"token": "field_required"}


async def test_a_deleted_users_token_is_invalid_at_once(face):
    user = await admin_create(face)
    token = (await gate_login(face, user["account"]))["token"]
    r = await face.client.delete(
        f"/api/admin/users/{user['account']}", headers={"X-Admin-Token": face.admin_token}
    )
    assert r.json() == {"deleted": True}
    assert await valid(face, token) is False


async def test_an_expired_session_is_invalid(asgi_face):
    face = asgi_face
    account = uniq()
    await register(face, account)
    token = (await gate_login(face, account))["token"]
    face.harness.clock.advance(7 * 24 * 3600 + 1)
    assert await valid(face, token) is False


async def test_me_answers_the_user_without_any_password(face):
    account = uniq()
    await register(face, account)
    token = (await gate_login(face, account))["token"]
    r = await face.client.get("/api/auth/me", headers=bearer(token))
    assert r.status_code == 200
    assert set(r.json()) == {"user"} and set(r.json()["user"]) == USER_FIELDS
    assert "password" not in r.text.lower() and "argon2" not in r.text


async def test_me_needs_a_valid_token_and_answers_in_the_callers_language(face):
    r = await face.client.get("/api/auth/me")
    body = assert_problem(r, 401, "not_authenticated")
    assert HAN.search(body["detail"]) and r.headers["content-language"] == "zh-CN"
    r = await face.client.get("/api/auth/me", headers={**bearer("bad"), "Accept-Language": "en-US,en;q=0.9"})
    body = assert_problem(r, 401, "not_authenticated")
    assert not HAN.search(body["detail"]) and r.headers["content-language"] == "en"


# -- profile ----------------------------------------------------------------------------------
async def _signed_in(face) -> tuple[str, dict[str, str]]:
    account = uniq()
    await register(face, account)
    return account, bearer((await gate_login(face, account))["token"])


async def test_profile_updates_the_fields_sent_and_nothing_else(face):
    account, auth = await _signed_in(face)
    before = (await face.client.get("/api/auth/me", headers=auth)).json()["user"]
    changes = {
        "username": "小明",
        "phone": "+86 138-0000-0000",
        "avatarUrl": "https://example.com/a.png",
        "bio": "### 简介\n\n" + "字" * 1990,
    }
    r = await face.client.put("/api/auth/profile", json=changes, headers=auth)
    assert r.status_code == 200, r.text
    user = r.json()["user"]
    assert {k: user[k] for k in changes} == changes
    assert user["account"] == account and user["email"] == before["email"]
    assert _parse(user["updatedAt"]) >= _parse(before["updatedAt"])
    r = await face.client.put(
        "/api/auth/profile", json={"phone": None, "avatarUrl": "", "bio": None}, headers=auth
    )
    user = r.json()["user"]
    assert user["phone"] is None and user["avatarUrl"] is None and user["bio"] is None
    assert user["username"] == "小明"


@pytest.mark.engine_independent
@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"username": ""}, "username", "invalid_length"),
        ({"username": "   "}, "username", "invalid_length"),
        ({"username": None}, "username", "invalid_length"),
        ({"username": "x" * 31}, "username", "too_long"),
        ({"bio": "x" * 2001}, "bio", "too_long"),
        ({"phone": "138 abc"}, "phone", "invalid_phone"),
        ({"phone": "1" * 21}, "phone", "too_long"),
        ({"avatarUrl": "javascript:alert(1)"}, "avatarUrl", "invalid_url"),
        ({"avatarUrl": "ftp://example.com/a.png"}, "avatarUrl", "invalid_url"),
        ({"password": "123"}, "password", "password_too_short"),
    ],
)
async def test_profile_field_rules(face, changes, field, code):
    _, auth = await _signed_in(face)
    r = await face.client.put("/api/auth/profile", json=changes, headers=auth)
    assert_problem(r, 422)
    assert error_fields(r) == {field: code}


async def test_profile_writes_nothing_when_any_part_is_refused(face):
    account, auth = await _signed_in(face)
    r = await face.client.put(
        "/api/auth/profile",
        json={"username": "changed", "password": NEW_PASSWORD, "currentPassword": "Wrong#pass99"},
        headers=auth,
    )
    assert_problem(r, 403, "wrong_current_password")
    assert (await face.client.get("/api/auth/me", headers=auth)).json()["user"]["username"] == account
    await gate_login(face, account)  # the old password still works


async def test_password_change_with_current_password_revokes_other_sessions_and_mails_a_notice(face):
    account, auth = await _signed_in(face)
    other = (await gate_login(face, account))["token"]
    r = await face.client.post(
        "/api/v1/auth/sessions", json={"email": email_of(account), "password": PASSWORD}
    )
    runtime = r.json()
    r = await face.client.put(
        "/api/auth/profile", json={"password": NEW_PASSWORD, "currentPassword": PASSWORD}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert await valid(face, auth["Authorization"][7:]) is True  # the caller's own session stays
    assert await valid(face, other) is False
    assert_problem(await face.client.get("/api/v1/users/me", headers=bearer(runtime["access_token"])), 401)
    r = await face.client.post(
        "/api/v1/auth/sessions/refresh", json={"refresh_token": runtime["refresh_token"]}
    )
    assert_problem(r, 401)
    assert_problem(
        await face.client.post("/api/auth/login", json={"account": account, "password": PASSWORD}), 401
    )
    await gate_login(face, account, NEW_PASSWORD)
    kinds = [m["kind"] for m in await face.mailbox(email_of(account))]
    assert kinds[0] == "password_changed"


async def test_password_change_without_current_password_is_allowed_right_after_sign_in(face):
    account, auth = await _signed_in(face)
    r = await face.client.put("/api/auth/profile", json={"password": NEW_PASSWORD}, headers=auth)
    assert r.status_code == 200, r.text
    await gate_login(face, account, NEW_PASSWORD)


async def test_password_change_without_current_password_after_ten_minutes_needs_it(asgi_face):
    face = asgi_face
    account, auth = await _signed_in(face)
    face.harness.clock.advance(601)
    r = await face.client.put("/api/auth/profile", json={"password": NEW_PASSWORD}, headers=auth)
    assert_problem(r, 403, "recent_auth_required")
    r = await face.client.put(
        "/api/auth/profile", json={"password": NEW_PASSWORD, "currentPassword": PASSWORD}, headers=auth
    )
    assert r.status_code == 200, r.text


@pytest.mark.engine_independent
async def test_profile_needs_a_token(face):
    assert_problem(await face.client.put("/api/auth/profile", json={"bio": "x"}), 401, "not_authenticated")


# -- register and verify-email ----------------------------------------------------------------
async def test_register_mails_a_code_and_verify_email_creates_the_account(face):
    account = uniq("New")
    r = await face.client.post(
        "/api/auth/register",
        json={"account": account, "password": PASSWORD, "username": "新人", "email": email_of(account)},
    )
    assert r.status_code == 200
    assert set(r.json()) == {"sent", "expiresAt"} and r.json()["sent"] is True
    lifetime = _parse(r.json()["expiresAt"]) - datetime.now(UTC)
    assert timedelta(minutes=8) < lifetime <= timedelta(minutes=10)
    code = await face.last_code(email_of(account), "signup_code")
    bad = f"{(int(code) + 1) % 1_000_000:06d}"
    r = await face.client.post("/api/auth/verify-email", json={"account": account, "code": bad})
    assert_problem(r, 401, "invalid_code")
    r = await face.client.post("/api/auth/verify-email", json={"account": account.lower(), "code": code})
    assert r.status_code == 200, r.text
    assert r.json()["created"] is True
    assert r.json()["user"]["account"] == account and r.json()["user"]["username"] == "新人"
    r = await face.client.post("/api/auth/verify-email", json={"account": account, "code": code})
    assert_problem(r, 401, "invalid_code")  # single use


async def test_register_says_409_for_a_taken_account_name_in_any_case(face):
    account = uniq("Taken")
    await register(face, account)
    r = await face.client.post(
        "/api/auth/register",
        json={
            "account": account.swapcase(),
            "password": PASSWORD,
            "username": "x",
            "email": email_of(uniq()),
        },
    )
    assert_problem(r, 409, "account_taken")


async def test_register_with_a_taken_email_answers_as_usual_and_mails_a_notice(face):
    user = await admin_create(face)
    account = uniq()
    r = await face.client.post(
        "/api/auth/register",
        json={"account": account, "password": PASSWORD, "username": "x", "email": user["email"]},
    )
    assert r.status_code == 200 and r.json()["sent"] is True and set(r.json()) == {"sent", "expiresAt"}
    mails = await face.mailbox(user["email"])
    assert [m["kind"] for m in mails] == ["signup_existing"]
    assert not any(ch.isdigit() for ch in mails[0]["subject"])
    r = await face.client.post("/api/auth/verify-email", json={"account": account, "code": "000000"})
    assert_problem(r, 401, "invalid_code")


async def test_a_name_claimed_while_pending_answers_409_at_verify_email(face):
    account = uniq("Race")
    first, second = email_of(uniq()), email_of(uniq())
    for email in (first, second):
        r = await face.client.post(
            "/api/auth/register",
            json={"account": account, "password": PASSWORD, "username": "x", "email": email},
        )
        assert r.status_code == 200, r.text
    code = await face.last_code(first, "signup_code")
    r = await face.client.post("/api/v1/auth/verifications/verify", json={"email": first, "token": code})
    assert r.status_code == 200, r.text
    code = await face.last_code(second, "signup_code")
    r = await face.client.post("/api/auth/verify-email", json={"account": account, "code": code})
    assert_problem(r, 409, "account_taken")


@pytest.mark.engine_independent
@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"account": "ab"}, "account", "invalid_account"),
        ({"account": "has space"}, "account", "invalid_account"),
        ({"account": "张三三"}, "account", "invalid_account"),
        ({"account": "a" * 33}, "account", "invalid_account"),
        ({"email": "not-an-email"}, "email", "invalid_email"),
        ({"password": "123"}, "password", "password_too_short"),
        ({"password": "password"}, "password", "password_too_common"),
        ({"username": "x" * 31}, "username", "too_long"),
    ],
)
async def test_register_field_rules(face, body, field, code):
    account = uniq()
    full = {"account": account, "password": PASSWORD, "username": "x", "email": email_of(account), **body}
    r = await face.client.post("/api/auth/register", json=full)
    assert_problem(r, 422)
    assert error_fields(r) == {field: code}


async def test_account_names_accept_letters_digits_dot_dash_underscore(face):
    account = f"a.b-c_{uniq()}"[:32]
    user = await register(face, account)
    assert user["account"] == account


# -- forgot and reset -------------------------------------------------------------------------
async def test_reset_password_sets_the_new_one_and_ends_every_session_on_both_faces(face):
    user = await admin_create(face)
    gate_token = (await gate_login(face, user["account"]))["token"]
    r = await face.client.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD})
    runtime = r.json()
    r = await face.client.post(
        "/api/auth/forgot-password", json={"account": user["account"], "email": user["email"]}
    )
    assert r.status_code == 200 and r.json()["sent"] is True
    code = await face.last_code(user["email"], "reset_code")
    r = await face.client.post(
        "/api/auth/reset-password",
        json={"account": user["account"], "code": code, "newPassword": NEW_PASSWORD},
    )
    assert r.status_code == 200 and r.json() == {"reset": True}
    assert await valid(face, gate_token) is False
    assert_problem(await face.client.get("/api/v1/users/me", headers=bearer(runtime["access_token"])), 401)
    r = await face.client.post("/api/auth/login", json={"account": user["account"], "password": PASSWORD})
    assert_problem(r, 401)
    await gate_login(face, user["account"], NEW_PASSWORD)
    assert (await face.mailbox(user["email"]))[0]["kind"] == "password_changed"


async def test_forgot_password_answers_the_same_for_a_mismatch_and_mails_no_code(face):
    user = await admin_create(face)
    other = uniq()
    r1 = await face.client.post("/api/auth/forgot-password", json={"account": other, "email": user["email"]})
    r2 = await face.client.post(
        "/api/auth/forgot-password", json={"account": user["account"], "email": email_of(uniq())}
    )
    for r in (r1, r2):
        assert r.status_code == 200 and r.json()["sent"] is True and set(r.json()) == {"sent", "expiresAt"}
    # A notice without a code, as for an unknown address (the same work either way).
    (notice,) = await face.mailbox(user["email"])
    assert not re.search(r"\b\d{6}\b", notice["subject"] + notice["text"])


async def test_reset_password_errors(face):
    user = await admin_create(face)
    r = await face.client.post(
        "/api/auth/reset-password",
        json={"account": user["account"], "code": "123456", "newPassword": NEW_PASSWORD},
    )
    assert_problem(r, 401, "invalid_code")
    r = await face.client.post(
        "/api/auth/reset-password", json={"account": user["account"], "code": "123456", "newPassword": "1"}
    )
    assert_problem(r, 422)
    assert error_fields(r) == {"newPassword": "password_too_short"}
    r = await face.client.post("/api/auth/reset-password", json={"account": user["account"]})
    assert_problem(r, 422)
    assert set(error_fields(r)) == {"code", "newPassword"}


# -- secondary emails -------------------------------------------------------------------------
async def test_secondary_email_is_verified_and_listed(face):
    account, auth = await _signed_in(face)
    extra = f"extra-{account.lower()}@example.org"
    r = await face.client.post("/api/auth/secondary-email/request", json={"email": extra}, headers=auth)
    assert r.status_code == 200 and r.json()["sent"] is True
    code = await face.last_code(extra, "secondary_code")
    r = await face.client.post(
        "/api/auth/secondary-email/verify",
        json={"email": extra, "code": "999999" if code != "999999" else "999998"},
        headers=auth,
    )
    assert_problem(r, 401, "invalid_code")
    r = await face.client.post(
        "/api/auth/secondary-email/verify", json={"email": extra, "code": code}, headers=auth
    )
    assert r.status_code == 200
    assert r.json()["verified"] is True and r.json()["user"]["secondaryEmails"] == [extra]
    me = (await face.client.get("/api/auth/me", headers=auth)).json()["user"]
    assert me["secondaryEmails"] == [extra]


async def test_secondary_email_of_someone_else_gets_the_same_answer_and_no_code(face):
    owner = await admin_create(face)
    _, auth = await _signed_in(face)
    r = await face.client.post(
        "/api/auth/secondary-email/request", json={"email": owner["email"]}, headers=auth
    )
    assert r.status_code == 200 and r.json()["sent"] is True
    # The owner hears that someone tried; no code leaves (the same work as for a free address).
    (notice,) = await face.mailbox(owner["email"])
    assert not re.search(r"\b\d{6}\b", notice["subject"] + notice["text"])
    r = await face.client.post(
        "/api/auth/secondary-email/verify", json={"email": owner["email"], "code": "123456"}, headers=auth
    )
    assert_problem(r, 401, "invalid_code")


async def test_secondary_email_endpoints_need_a_token_and_a_valid_address(face):
    r = await face.client.post("/api/auth/secondary-email/request", json={"email": "x@example.com"})
    assert_problem(r, 401)
    r = await face.client.post(
        "/api/auth/secondary-email/verify", json={"email": "x@example.com", "code": "1"}
    )
    assert_problem(r, 401)
    _, auth = await _signed_in(face)
    r = await face.client.post("/api/auth/secondary-email/request", json={"email": "nope"}, headers=auth)
    assert_problem(r, 422)
    assert error_fields(r) == {"email": "invalid_email"}
