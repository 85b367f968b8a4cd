"""Issue 11, item 1: pre-account hijack through a pending sign-up. Whoever completes the
verification never ends up with an account whose password someone else chose: a second sign-up
for a pending address with another password makes the sign-up contested, and the account is
created without a usable password (the owner is mailed a code to choose one). Both orders, both
API faces, across faces and on the pages."""

# ruff: noqa: F811 - the fixture imported from security_support is redefined as an argument

from __future__ import annotations

from typing import Any

import pytest
from security_support import (
    NEW_PASSWORD,
    OTHER_PASSWORD,
    OWNER_PASSWORD,
    email_of,
    form_token,
    h,  # noqa: F401 - fixture
    mails,
    newest_code,
    reset_works,
    signs_in,
    uniq,
)

from support.harness import AppHarness, bearer

pytestmark = pytest.mark.both_engines

SESSION_KEYS = {"access_token", "refresh_token", "expires_in", "token_type", "user"}


async def v1_start(h: AppHarness, email: str, password: str, username: str = "sprout") -> None:
    async with h.new_client() as c:
        r = await c.post(
            "/api/v1/auth/verifications", json={"email": email, "password": password, "username": username}
        )
    assert r.status_code == 202, r.text
    assert r.json() == {"email": email}


async def gate_start(h: AppHarness, account: str, email: str, password: str) -> None:
    async with h.new_client() as c:
        r = await c.post(
            "/api/auth/register",
            json={"account": account, "password": password, "username": account, "email": email},
        )
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"sent", "expiresAt"}


async def v1_verify(h: AppHarness, email: str) -> dict[str, Any]:
    code = await newest_code(h, email, "signup_code")
    r = await h.client.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
    assert r.status_code == 200, r.text
    assert set(r.json()) == SESSION_KEYS  # the documented answer, unchanged
    return r.json()


async def gate_verify(h: AppHarness, account: str, email: str) -> dict[str, Any]:
    code = await newest_code(h, email, "signup_code")
    r = await h.client.post("/api/auth/verify-email", json={"account": account, "code": code})
    assert r.status_code == 200, r.text
    assert r.json()["created"] is True and r.json()["user"]["account"] == account
    return r.json()["user"]


async def assert_no_password_until_the_owner_sets_one(h: AppHarness, email: str, who: str = "") -> None:
    """Neither party's password signs in (by address or ``who``); the mailbox got a code that
    sets one."""
    for name in filter(None, (email, who)):
        assert not await signs_in(h, name, OTHER_PASSWORD)
        assert not await signs_in(h, name, OWNER_PASSWORD)
    notice = await mails(h, email, "signup_set_password")
    assert len(notice) == 1, await h.mailbox(email)
    code = await newest_code(h, email, "signup_set_password")
    assert await reset_works(h, email, code, NEW_PASSWORD)
    assert await signs_in(h, email, NEW_PASSWORD)
    assert not await signs_in(h, email, OTHER_PASSWORD)


@pytest.mark.parametrize("owner_first", [True, False], ids=["owner-first", "other-first"])
async def test_runtime_face_contested_signup_gets_no_usable_password(h, owner_first):
    email = email_of(uniq("rt"))
    attempts = [(email, OWNER_PASSWORD), (email, OTHER_PASSWORD)]
    for address, password in attempts if owner_first else reversed(attempts):
        await v1_start(h, address, password)
    session = await v1_verify(h, email)
    # The verify answer still opens the session, as documented: the code proved the mailbox.
    me = await h.client.get("/api/v1/users/me", headers=bearer(session["access_token"]))
    assert me.status_code == 200, me.text
    await assert_no_password_until_the_owner_sets_one(h, email)


@pytest.mark.parametrize("owner_first", [True, False], ids=["owner-first", "other-first"])
async def test_sproutgate_face_contested_registration_gets_no_usable_password(h, owner_first):
    account = uniq("gt")
    email = email_of(account)
    attempts = [OWNER_PASSWORD, OTHER_PASSWORD]
    for password in attempts if owner_first else reversed(attempts):
        await gate_start(h, account, email, password)
    user = await gate_verify(h, account, email)
    assert user["email"] == email
    await assert_no_password_until_the_owner_sets_one(h, email, account)


async def test_another_account_name_does_not_carry_the_owners_password_either(h):
    # The other party registers the owner's address under a name of its own after the owner;
    # the owner's code then finds no pending sign-up under the owner's name, registers again,
    # and verifies: the account is the owner's name, with no password anyone chose.
    owner, other = uniq("own"), uniq("oth")
    email = email_of(owner)
    await gate_start(h, owner, email, OWNER_PASSWORD)
    await gate_start(h, other, email, OTHER_PASSWORD)
    code = await newest_code(h, email, "signup_code")
    r = await h.client.post("/api/auth/verify-email", json={"account": owner, "code": code})
    assert r.status_code == 401 and r.json()["code"] == "invalid_code"
    await gate_start(h, owner, email, OWNER_PASSWORD)
    await gate_verify(h, owner, email)
    await assert_no_password_until_the_owner_sets_one(h, email, owner)
    assert not await signs_in(h, other, OTHER_PASSWORD)


@pytest.mark.parametrize("other_face_first", [True, False])
async def test_contest_holds_across_the_two_faces(h, other_face_first):
    account = uniq("x")
    email = email_of(account)
    if other_face_first:
        await gate_start(h, account, email, OTHER_PASSWORD)
        await v1_start(h, email, OWNER_PASSWORD)
        await v1_verify(h, email)
    else:
        await v1_start(h, email, OTHER_PASSWORD)
        await gate_start(h, account, email, OWNER_PASSWORD)
        await gate_verify(h, account, email)
    await assert_no_password_until_the_owner_sets_one(h, email)


async def test_signing_up_again_with_the_same_password_is_not_a_contest(h):
    email = email_of(uniq("same"))
    await v1_start(h, email, OWNER_PASSWORD, username="first")
    await v1_start(h, email, OWNER_PASSWORD, username="second")
    session = await v1_verify(h, email)
    me = await h.client.get("/api/v1/users/me", headers=bearer(session["access_token"]))
    assert me.json()["username"] == "second"
    assert await signs_in(h, email, OWNER_PASSWORD)
    assert await mails(h, email, "signup_set_password") == []


async def test_a_contested_signup_stays_contested_whoever_comes_last(h):
    email = email_of(uniq("sticky"))
    await v1_start(h, email, OWNER_PASSWORD)
    await v1_start(h, email, OTHER_PASSWORD)
    await v1_start(h, email, OWNER_PASSWORD)  # the owner again: the other password was sent
    await v1_verify(h, email)
    await assert_no_password_until_the_owner_sets_one(h, email)


async def test_an_expired_pending_signup_is_no_contest(h):
    email = email_of(uniq("stale"))
    await v1_start(h, email, OTHER_PASSWORD)
    h.clock.advance(h.services.settings.pending_signup_ttl_seconds + 1)
    await v1_start(h, email, OWNER_PASSWORD)
    await v1_verify(h, email)
    assert await signs_in(h, email, OWNER_PASSWORD)
    assert not await signs_in(h, email, OTHER_PASSWORD)


async def test_the_set_password_mail_is_in_the_callers_language(h):
    email = email_of(uniq("zh"))
    await v1_start(h, email, OWNER_PASSWORD)
    await v1_start(h, email, OTHER_PASSWORD)
    code = await newest_code(h, email, "signup_code")
    r = await h.client.post(
        "/api/v1/auth/verifications/verify",
        json={"email": email, "token": code},
        headers={"Accept-Language": "en"},
    )
    assert r.status_code == 200, r.text
    (mail,) = await mails(h, email, "signup_set_password")
    assert "Choose a password" in mail["subject"] and "no password yet" in mail["text"]
    assert "/forgot-password/confirm?email=" in mail["text"]
    email2 = email_of(uniq("zh"))
    await v1_start(h, email2, OWNER_PASSWORD)
    await v1_start(h, email2, OTHER_PASSWORD)
    code = await newest_code(h, email2, "signup_code")
    r = await h.client.post(
        "/api/v1/auth/verifications/verify",
        json={"email": email2, "token": code},
        headers={"Accept-Language": "zh-CN"},
    )
    assert r.status_code == 200, r.text
    (mail,) = await mails(h, email2, "signup_set_password")
    assert "设置密码" in mail["subject"] and "暂时没有密码" in mail["text"]


# -- the pages --------------------------------------------------------------------------------
async def pages_register(h: AppHarness, client: Any, email: str, password: str) -> None:
    token = await form_token(client, "/register")
    r = await client.post(
        "/register",
        data={"csrf_token": token, "email": email, "username": "Pages Sprout", "password": password},
    )
    assert r.status_code == 303, r.text


async def pages_verify(h: AppHarness, client: Any, email: str) -> Any:
    token = await form_token(client, f"/register/verify?email={email}")
    code = await newest_code(h, email, "signup_code")
    r = await client.post("/register/verify", data={"csrf_token": token, "email": email, "code": code})
    assert r.status_code == 303, r.text
    return r


@pytest.mark.parametrize("owner_first", [True, False], ids=["owner-first", "other-first"])
async def test_pages_contested_signup_asks_the_owner_to_choose_a_password(h, owner_first):
    email = email_of(uniq("pg"))
    async with h.new_client() as owner:
        if owner_first:
            await pages_register(h, owner, email, OWNER_PASSWORD)
            await v1_start(h, email, OTHER_PASSWORD)
        else:
            await v1_start(h, email, OTHER_PASSWORD)
            await pages_register(h, owner, email, OWNER_PASSWORD)
        r = await pages_verify(h, owner, email)
        assert r.headers["location"] == "/register/password"
        page = await owner.get("/register/password")
        assert page.status_code == 200 and 'action="/register/password"' in page.text
        assert not await signs_in(h, email, OTHER_PASSWORD)
        token = await form_token(owner, "/register/password")
        r = await owner.post("/register/password", data={"csrf_token": token, "new_password": "short"})
        assert r.status_code == 422 and 'id="f-new_password-error"' in r.text
        r = await owner.post("/register/password", data={"csrf_token": token, "new_password": NEW_PASSWORD})
        assert r.status_code == 303 and r.headers["location"] == "/account?notice=password_set"
    assert await signs_in(h, email, NEW_PASSWORD)
    assert not await signs_in(h, email, OTHER_PASSWORD)
    # The mailed code to choose a password ended with the password it was for.
    code = await newest_code(h, email, "signup_set_password")
    assert not await reset_works(h, email, code)


async def test_pages_uncontested_signup_goes_straight_to_the_account(h):
    email = email_of(uniq("pg"))
    async with h.new_client() as owner:
        await pages_register(h, owner, email, OWNER_PASSWORD)
        r = await pages_verify(h, owner, email)
        assert r.headers["location"] == "/account?notice=welcome"
        # The step is only for accounts without a password: it is no way around the current one.
        r = await owner.get("/register/password")
        assert r.status_code == 303 and r.headers["location"] == "/account#password"
        token = await form_token(owner, "/account")
        r = await owner.post("/register/password", data={"csrf_token": token, "new_password": NEW_PASSWORD})
        assert r.status_code == 303 and r.headers["location"] == "/account#password"
    assert await signs_in(h, email, OWNER_PASSWORD)


async def test_pages_set_password_step_needs_a_recent_sign_in_and_csrf(h):
    email = email_of(uniq("pg"))
    async with h.new_client() as owner:
        await pages_register(h, owner, email, OWNER_PASSWORD)
        await v1_start(h, email, OTHER_PASSWORD)
        await pages_verify(h, owner, email)
        token = await form_token(owner, "/register/password")
        r = await owner.post(
            "/register/password", data={"csrf_token": "forged", "new_password": NEW_PASSWORD}
        )
        assert r.status_code == 403
        h.clock.advance(h.services.settings.recent_auth_seconds + 1)
        r = await owner.post("/register/password", data={"csrf_token": token, "new_password": NEW_PASSWORD})
        assert r.status_code == 403
        assert "请用邮件里的验证码" in r.text  # the pages speak zh-CN by default
    assert not await signs_in(h, email, NEW_PASSWORD)
    async with h.new_client() as stranger:
        r = await stranger.get("/register/password")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
