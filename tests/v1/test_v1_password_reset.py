"""Password reset: POST /auth/password-reset and /auth/password-reset/confirm."""

from __future__ import annotations

import re

import pytest
from v1_support import PASSWORD, assert_problem, create_user, error_fields, login, other_code, reset_code

from support.harness import bearer

RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
NEW = "Fresh#Garden2026"


async def test_reset_sets_the_new_password_revokes_every_session_and_mails_a_notice(harness):
    await create_user(harness, "forgot@example.com")
    one = await login(harness, "forgot@example.com")
    two = await login(harness, "forgot@example.com")
    code = await reset_code(harness, "forgot@example.com")
    r = await harness.client.post(
        CONFIRM, json={"email": "forgot@example.com", "token": code, "new_password": NEW}
    )
    assert r.status_code == 204
    assert r.content == b""
    for s in (one, two):
        assert_problem(await harness.client.get("/api/v1/users/me", headers=bearer(s["access_token"])), 401)
        r = await harness.client.post(
            "/api/v1/auth/sessions/refresh", json={"refresh_token": s["refresh_token"]}
        )
        assert_problem(r, 401)
    r = await harness.client.post(
        "/api/v1/auth/sessions", json={"email": "forgot@example.com", "password": PASSWORD}
    )
    assert_problem(r, 401)
    assert (await login(harness, "forgot@example.com", NEW))["access_token"]
    newest = (await harness.mailbox("forgot@example.com"))[0]
    assert newest["kind"] == "password_changed"
    assert "123456" not in newest["text"]


async def test_reset_code_is_single_use(harness):
    await create_user(harness, "single@example.com")
    code = await reset_code(harness, "single@example.com")
    r = await harness.client.post(
        CONFIRM, json={"email": "single@example.com", "token": code, "new_password": NEW}
    )
    assert r.status_code == 204
    r = await harness.client.post(
        CONFIRM, json={"email": "single@example.com", "token": code, "new_password": "Other#Garden2026"}
    )
    assert_problem(r, 401, "invalid_code")


async def test_reset_answers_the_same_for_unknown_emails_which_get_a_notice_without_a_code(harness):
    await create_user(harness, "exists@example.com")
    known = await harness.client.post(RESET, json={"email": "exists@example.com"})
    unknown = await harness.client.post(RESET, json={"email": "missing@example.com"})
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content) == (204, b"")
    # The same work either way (issue 11 item 11): an unknown address gets a notice, no code.
    (notice,) = await harness.mailbox("missing@example.com")
    assert not re.search(r"\b\d{6}\b", notice["subject"] + notice["text"])
    assert len(await harness.mailbox("exists@example.com")) == 1


async def test_reset_code_expires(harness):
    await create_user(harness, "slow@example.com")
    code = await reset_code(harness, "slow@example.com")
    harness.clock.advance(601)
    r = await harness.client.post(
        CONFIRM, json={"email": "slow@example.com", "token": code, "new_password": NEW}
    )
    assert_problem(r, 401, "invalid_code")
    assert (await login(harness, "slow@example.com"))["access_token"]


async def test_reset_code_dies_after_five_wrong_tries(harness):
    await create_user(harness, "brute@example.com")
    code = await reset_code(harness, "brute@example.com")
    for _ in range(5):
        r = await harness.client.post(
            CONFIRM, json={"email": "brute@example.com", "token": other_code(code), "new_password": NEW}
        )
        assert_problem(r, 401, "invalid_code")
    r = await harness.client.post(
        CONFIRM, json={"email": "brute@example.com", "token": code, "new_password": NEW}
    )
    assert_problem(r, 401, "invalid_code")


async def test_reset_code_is_bound_to_its_email(harness):
    await create_user(harness, "first@example.com")
    await create_user(harness, "second@example.com")
    code = await reset_code(harness, "first@example.com")
    r = await harness.client.post(
        CONFIRM, json={"email": "second@example.com", "token": code, "new_password": NEW}
    )
    assert_problem(r, 401, "invalid_code")


@pytest.mark.parametrize(
    "password, code",
    [
        ("Ab#12", "password_too_short"),
        ("Q#1" + "z" * 126, "password_too_long"),
        ("iloveyou", "password_too_common"),
    ],
)
async def test_reset_applies_the_password_policy(harness, password, code):
    await create_user(harness, "policy@example.com")
    token = await reset_code(harness, "policy@example.com")
    r = await harness.client.post(
        CONFIRM, json={"email": "policy@example.com", "token": token, "new_password": password}
    )
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "new_password" and body["errors"][0]["code"] == code
    # the code was not spent on a refused password
    r = await harness.client.post(
        CONFIRM, json={"email": "policy@example.com", "token": token, "new_password": NEW}
    )
    assert r.status_code == 204


async def test_reset_confirm_missing_fields_are_listed(client):
    r = await client.post(CONFIRM, json={"email": "a@example.com"})
    assert_problem(r, 422)
    assert error_fields(r) == {"token", "new_password"}


async def test_reset_confirm_for_unknown_email_is_401(client):
    r = await client.post(
        CONFIRM, json={"email": "ghost@example.com", "token": "123456", "new_password": NEW}
    )
    assert_problem(r, 401, "invalid_code")


async def test_reset_for_a_disabled_account_mails_no_code(harness):
    from sproutgate.domain.admin.service import UserFields

    user = await create_user(harness, "frozen@example.com")
    await harness.services.admin.update_user(user.account, UserFields(disabled=True), actor="test")
    r = await harness.client.post(RESET, json={"email": "frozen@example.com"})
    assert r.status_code == 204
    mails = await harness.mailbox("frozen@example.com")
    assert sorted(m["kind"] for m in mails) == ["account_disabled", "reset_unknown"]
    for notice in mails:
        assert not re.search(r"\b\d{6}\b", notice["subject"] + notice["text"])
