"""Sign-up with an emailed code: POST /auth/verifications, /resend and /verify."""

from __future__ import annotations

import pytest
from v1_support import (
    CODE_IN_TEXT,
    PASSWORD,
    assert_problem,
    create_user,
    error_fields,
    other_code,
    request_code,
)

from sproutgate.storage.repositories import PendingSignupRepository, UserRepository
from support.harness import bearer, signup

SIGNUP = "/api/v1/auth/verifications"
RESEND = "/api/v1/auth/verifications/resend"
VERIFY = "/api/v1/auth/verifications/verify"


@pytest.fixture
async def relaxed(make_harness, make_settings):
    """A harness that lets one address receive several code mails in a row."""
    return await make_harness(make_settings(limit_code_mail_per_address="20/minute"))


async def _pending(h, email):
    async with h.services.db.read() as s:
        return await PendingSignupRepository(s).by_email(email)


async def _user(h, email):
    async with h.services.db.read() as s:
        return await UserRepository(s).by_email(email)


async def test_signup_mails_a_code_and_creates_no_user_until_verified(harness):
    r = await harness.client.post(
        SIGNUP, json={"email": "new@example.com", "password": PASSWORD, "username": "newbie"}
    )
    assert r.status_code == 202
    assert r.json() == {"email": "new@example.com"}
    [mail] = await harness.mailbox("new@example.com")
    assert mail["kind"] == "signup_code"
    code = CODE_IN_TEXT.search(mail["subject"]).group(0)
    assert code in mail["text"]
    assert await _user(harness, "new@example.com") is None
    r = await harness.client.post(
        "/api/v1/auth/sessions", json={"email": "new@example.com", "password": PASSWORD}
    )
    assert_problem(r, 401, "invalid_credentials")

    r = await harness.client.post(VERIFY, json={"email": "new@example.com", "token": code})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "expires_in", "token_type", "user"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert set(body["user"]) == {"id", "email"}
    assert body["user"]["email"] == "new@example.com"
    assert r.headers["cache-control"] == "no-store"
    assert await _pending(harness, "new@example.com") is None
    me = await harness.client.get("/api/v1/users/me", headers=bearer(body["access_token"]))
    assert me.json() == {"id": body["user"]["id"], "username": "newbie", "avatar_url": None, "bio": None}


async def test_signup_email_is_stored_lower_cased(harness):
    r = await harness.client.post(
        SIGNUP, json={"email": "Mixed.Case@Example.COM", "password": PASSWORD, "username": "mixed"}
    )
    assert r.json() == {"email": "mixed.case@example.com"}
    code = await harness.last_code("mixed.case@example.com")
    r = await harness.client.post(VERIFY, json={"email": "MIXED.case@example.com", "token": code})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == "mixed.case@example.com"
    r = await harness.client.post(
        "/api/v1/auth/sessions", json={"email": "MIXED.CASE@EXAMPLE.COM", "password": PASSWORD}
    )
    assert r.status_code == 200


async def test_signup_for_registered_email_mails_a_notice_and_creates_nothing(harness):
    user = await create_user(harness, "taken@example.com", username="original")
    r = await harness.client.post(
        SIGNUP, json={"email": "taken@example.com", "password": "Another#Pass99", "username": "intruder"}
    )
    assert r.status_code == 202
    assert r.json() == {"email": "taken@example.com"}
    [mail] = await harness.mailbox("taken@example.com")
    assert mail["kind"] == "signup_existing"
    assert not CODE_IN_TEXT.search(mail["subject"] + mail["text"])
    assert await _pending(harness, "taken@example.com") is None
    live = await _user(harness, "taken@example.com")
    assert live.id == user.id and live.username == "original" and live.password_hash == user.password_hash
    r = await harness.client.post(
        "/api/v1/auth/sessions", json={"email": "taken@example.com", "password": "Another#Pass99"}
    )
    assert_problem(r, 401)


async def test_signup_answers_the_same_for_new_and_registered_emails(harness):
    await create_user(harness, "known@example.com")
    answers = []
    for email in ("known@example.com", "unknown@example.com"):
        r = await harness.client.post(SIGNUP, json={"email": email, "password": PASSWORD, "username": "same"})
        answers.append((r.status_code, r.json()["email"] == email, r.headers.get("content-type")))
    assert answers[0] == answers[1] == (202, True, "application/json")


async def test_resend_replaces_the_previous_code(relaxed):
    first = await request_code(relaxed, "twice@example.com")
    for _ in range(3):  # a new code could equal the old one by chance (1 in a million)
        r = await relaxed.client.post(RESEND, json={"email": "twice@example.com"})
        assert r.status_code == 204
        assert r.content == b""
        second = await relaxed.last_code("twice@example.com")
        if second != first:
            break
    assert len(await relaxed.mailbox("twice@example.com")) >= 2
    r = await relaxed.client.post(VERIFY, json={"email": "twice@example.com", "token": first})
    assert_problem(r, 401, "invalid_code")
    r = await relaxed.client.post(VERIFY, json={"email": "twice@example.com", "token": second})
    assert r.status_code == 200, r.text


async def test_signing_up_again_replaces_the_pending_signup(relaxed):
    first = await request_code(relaxed, "again@example.com", username="first")
    second = await request_code(relaxed, "again@example.com", username="second")
    if first != second:
        r = await relaxed.client.post(VERIFY, json={"email": "again@example.com", "token": first})
        assert_problem(r, 401)
    r = await relaxed.client.post(VERIFY, json={"email": "again@example.com", "token": second})
    assert r.status_code == 200
    me = await relaxed.client.get("/api/v1/users/me", headers=bearer(r.json()["access_token"]))
    assert me.json()["username"] == "second"


async def test_resend_answers_the_same_for_unknown_registered_and_pending_emails(relaxed):
    await create_user(relaxed, "member@example.com")
    await request_code(relaxed, "pending@example.com")
    answers = []
    for email in ("member@example.com", "nobody@example.com", "pending@example.com"):
        r = await relaxed.client.post(RESEND, json={"email": email})
        answers.append((r.status_code, r.content))
    assert answers == [(204, b"")] * 3
    assert await relaxed.mailbox("member@example.com") == []
    assert await relaxed.mailbox("nobody@example.com") == []
    assert len(await relaxed.mailbox("pending@example.com")) == 2


async def test_code_is_single_use(harness):
    code = await request_code(harness, "once@example.com")
    r = await harness.client.post(VERIFY, json={"email": "once@example.com", "token": code})
    assert r.status_code == 200
    r = await harness.client.post(VERIFY, json={"email": "once@example.com", "token": code})
    assert_problem(r, 401, "invalid_code")


async def test_code_expires_after_ten_minutes(harness):
    code = await request_code(harness, "late@example.com")
    harness.clock.advance(601)
    r = await harness.client.post(VERIFY, json={"email": "late@example.com", "token": code})
    assert_problem(r, 401, "invalid_code")
    assert await _user(harness, "late@example.com") is None


async def test_code_still_works_just_before_expiry(harness):
    code = await request_code(harness, "ontime@example.com")
    harness.clock.advance(590)
    r = await harness.client.post(VERIFY, json={"email": "ontime@example.com", "token": code})
    assert r.status_code == 200


async def test_code_ttl_is_configurable(make_harness, make_settings):
    h = await make_harness(make_settings(code_ttl_seconds=60))
    code = await request_code(h, "short@example.com")
    h.clock.advance(61)
    r = await h.client.post(VERIFY, json={"email": "short@example.com", "token": code})
    assert_problem(r, 401, "invalid_code")


async def test_code_dies_after_five_wrong_tries(harness):
    code = await request_code(harness, "guess@example.com")
    wrong = other_code(code)
    for _ in range(5):
        r = await harness.client.post(VERIFY, json={"email": "guess@example.com", "token": wrong})
        assert_problem(r, 401, "invalid_code")
    r = await harness.client.post(VERIFY, json={"email": "guess@example.com", "token": code})
    assert_problem(r, 401, "invalid_code")
    assert await _user(harness, "guess@example.com") is None


async def test_code_survives_four_wrong_tries(harness):
    code = await request_code(harness, "careful@example.com")
    for _ in range(4):
        r = await harness.client.post(
            VERIFY, json={"email": "careful@example.com", "token": other_code(code)}
        )
        assert r.status_code == 401
    r = await harness.client.post(VERIFY, json={"email": "careful@example.com", "token": code})
    assert r.status_code == 200


async def test_code_is_bound_to_its_email(harness):
    code = await request_code(harness, "owner@example.com")
    await request_code(harness, "other@example.com")
    r = await harness.client.post(VERIFY, json={"email": "other@example.com", "token": code})
    if r.status_code == 200:  # the other address drew the same code (1 in a million)
        return
    assert_problem(r, 401, "invalid_code")


async def test_signup_code_cannot_confirm_a_password_reset(harness):
    code = await request_code(harness, "dual@example.com")
    # The address becomes registered by another route while the sign-up is pending.
    await create_user(harness, "dual@example.com")
    r = await harness.client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"email": "dual@example.com", "token": code, "new_password": "Brand#New2026"},
    )
    assert_problem(r, 401, "invalid_code")
    r = await harness.client.post(
        "/api/v1/auth/sessions", json={"email": "dual@example.com", "password": "Brand#New2026"}
    )
    assert_problem(r, 401)


async def test_reset_code_cannot_complete_a_signup(harness):
    from v1_support import reset_code

    await create_user(harness, "holder@example.com")
    pending_code = await request_code(harness, "fresh@example.com")
    code = await reset_code(harness, "holder@example.com")
    r = await harness.client.post(VERIFY, json={"email": "holder@example.com", "token": code})
    assert_problem(r, 401, "invalid_code")
    if code != pending_code:
        r = await harness.client.post(VERIFY, json={"email": "fresh@example.com", "token": code})
        assert_problem(r, 401, "invalid_code")


@pytest.mark.engine_independent
@pytest.mark.parametrize("token", ["12345", "1234567", "abcdef", "12 456", "１２３４５６"])
async def test_malformed_code_is_refused(harness, token):
    await request_code(harness, "format@example.com")
    r = await harness.client.post(VERIFY, json={"email": "format@example.com", "token": token})
    assert r.status_code in (401, 422)
    assert_problem(r, r.status_code)


async def test_verify_for_unknown_email_is_401(client):
    r = await client.post(VERIFY, json={"email": "ghost@example.com", "token": "123456"})
    assert_problem(r, 401, "invalid_code")


@pytest.mark.engine_independent
async def test_verify_missing_fields_are_listed(client):
    r = await client.post(VERIFY, json={})
    assert_problem(r, 422)
    assert error_fields(r) == {"email", "token"}


@pytest.mark.engine_independent
@pytest.mark.parametrize(
    "password, code",
    [
        ("Ab#12", "password_too_short"),
        ("A#1" + "x" * 126, "password_too_long"),
        ("password", "password_too_common"),
        ("Password1", "password_too_common"),
        ("qwerty123", "password_too_common"),
    ],
)
async def test_signup_refuses_weak_passwords(harness, password, code):
    r = await harness.client.post(
        SIGNUP, json={"email": "weak@example.com", "password": password, "username": "weak"}
    )
    body = assert_problem(r, 422)
    assert {"field": "password", "code": code} == {k: body["errors"][0][k] for k in ("field", "code")}
    assert await harness.mailbox("weak@example.com") == []


async def test_password_of_128_characters_is_accepted(harness):
    password = "Z#9" + "q" * 125
    session = await signup(harness, "long@example.com", password=password, username="longpw")
    assert session["access_token"]
    r = await harness.client.post(
        "/api/v1/auth/sessions", json={"email": "long@example.com", "password": password}
    )
    assert r.status_code == 200


async def test_common_password_check_can_be_turned_off(make_harness, make_settings):
    h = await make_harness(make_settings(password_check_common=False))
    session = await signup(h, "plain@example.com", password="password", username="plain")
    assert session["access_token"]


async def test_minimum_password_length_is_configurable(make_harness, make_settings):
    h = await make_harness(make_settings(password_min_length=10))
    r = await h.client.post(
        SIGNUP, json={"email": "min@example.com", "password": "Qz#8vLm2p", "username": "minny"}
    )
    assert_problem(r, 422)
    assert error_fields(r) == {"password"}


@pytest.mark.engine_independent
@pytest.mark.parametrize("username", ["ab", "   ", "  ab  ", "x" * 31])
async def test_signup_refuses_bad_usernames(client, username):
    r = await client.post(
        SIGNUP, json={"email": "name@example.com", "password": PASSWORD, "username": username}
    )
    assert_problem(r, 422)
    assert error_fields(r) == {"username"}


async def test_signup_accepts_usernames_of_3_and_30_characters(harness):
    for email, name in (("three@example.com", "abc"), ("thirty@example.com", "n" * 30)):
        session = await signup(harness, email, username=name)
        me = await harness.client.get("/api/v1/users/me", headers=bearer(session["access_token"]))
        assert me.json()["username"] == name
