"""Issue 11, item 2: recovery channels added with only a bearer token. Adding a secondary address
needs the current password or a recent sign-in (whatever token or cookie carries the session),
the primary address is told when one is added or removed, users remove them
(``POST /api/auth/secondary-email/remove`` and the account page), and a pending secondary-address
code belongs to the user who asked for it."""

# ruff: noqa: F811 - the fixture imported from security_support is redefined as an argument

from __future__ import annotations

from typing import Any

import pytest
from security_support import (
    OWNER_PASSWORD,
    create_user,
    form_token,
    gate_token,
    h,  # noqa: F401 - fixture
    mails,
    newest_code,
    page_client,
    signs_in,
    uniq,
    v1_tokens,
)

from support.harness import AppHarness, bearer

pytestmark = pytest.mark.both_engines

REQUEST = "/api/auth/secondary-email/request"
VERIFY = "/api/auth/secondary-email/verify"
REMOVE = "/api/auth/secondary-email/remove"
GATE_USER_KEYS = {
    "account",
    "username",
    "email",
    "level",
    "sproutCoins",
    "secondaryEmails",
    "phone",
    "avatarUrl",
    "bio",
    "locale",
    "createdAt",
    "updatedAt",
}


def extra_address() -> str:
    return f"{uniq('alt')}@example.org"


async def token_of_kind(h: AppHarness, kind: str, user: dict[str, Any]) -> str:
    """A bearer token of each kind a thief could hold: the 7-day unified token or the 1-hour
    runtime access token (both accepted on the SproutGate face, as documented)."""
    if kind == "gate":
        return await gate_token(h, user["account"])
    return (await v1_tokens(h, user["email"]))["access_token"]


async def add_secondary(h: AppHarness, auth: dict[str, str], address: str, **extra: Any) -> dict[str, Any]:
    r = await h.client.post(REQUEST, json={"email": address, **extra}, headers=auth)
    assert r.status_code == 200, r.text
    code = await newest_code(h, address, "secondary_code")
    r = await h.client.post(VERIFY, json={"email": address, "code": code}, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()["user"]


# -- adding needs the password or a recent sign-in ---------------------------------------------
@pytest.mark.parametrize("kind", ["gate", "runtime"])
async def test_a_stolen_token_alone_cannot_add_a_recovery_address(h, kind):
    user = await create_user(h)
    auth = bearer(await token_of_kind(h, kind, user))
    h.clock.advance(h.services.settings.recent_auth_seconds + 1)
    thief = extra_address()
    r = await h.client.post(REQUEST, json={"email": thief}, headers=auth)
    assert r.status_code == 403 and r.json()["code"] == "recent_auth_required", r.text
    r = await h.client.post(
        REQUEST, json={"email": thief, "currentPassword": "Wrong#guess2026"}, headers=auth
    )
    assert r.status_code == 403 and r.json()["code"] == "wrong_current_password", r.text
    assert await h.mailbox(thief) == []
    # The owner, who knows the password, still can.
    owner_extra = extra_address()
    added = await add_secondary(h, auth, owner_extra, currentPassword=OWNER_PASSWORD)
    assert added["secondaryEmails"] == [owner_extra]


async def test_right_after_signing_in_no_password_is_needed(h):
    user = await create_user(h)
    auth = bearer(await gate_token(h, user["account"]))
    address = extra_address()
    assert (await add_secondary(h, auth, address))["secondaryEmails"] == [address]


async def test_wrong_current_passwords_count_as_failed_sign_ins(make_harness, make_settings):
    h = await make_harness(make_settings(limit_login_fail_account="3/hour"))
    user = await create_user(h)
    auth = bearer(await gate_token(h, user["account"]))
    for _ in range(3):
        r = await h.client.post(
            REQUEST, json={"email": extra_address(), "currentPassword": "Wrong#guess2026"}, headers=auth
        )
        assert r.status_code == 403, r.text
    r = await h.client.post(
        REQUEST, json={"email": extra_address(), "currentPassword": OWNER_PASSWORD}, headers=auth
    )
    assert r.status_code == 429, r.text


async def test_the_pages_cookie_alone_cannot_add_a_recovery_address(h):
    user = await create_user(h)
    async with page_client(h, user["account"]) as browser:
        h.clock.advance(h.services.settings.recent_auth_seconds + 1)
        thief = extra_address()
        token = await form_token(browser, "/account")
        r = await browser.post("/account/emails", data={"csrf_token": token, "new_email": thief})
        assert r.status_code == 403, r.text
        assert 'id="f-email_password-error"' in r.text
        r = await browser.post(
            "/account/emails",
            data={"csrf_token": token, "new_email": thief, "email_password": "Wrong#guess2026"},
        )
        assert r.status_code == 403 and 'id="f-email_password-error"' in r.text
        assert await h.mailbox(thief) == []
        r = await browser.post(
            "/account/emails",
            data={"csrf_token": token, "new_email": thief, "email_password": OWNER_PASSWORD},
        )
        assert r.status_code == 303, r.text
        assert await newest_code(h, thief, "secondary_code")


# -- the owner is told -------------------------------------------------------------------------
@pytest.mark.parametrize(("lang", "words"), [("en", "was just added"), ("zh-CN", "刚刚被添加")])
async def test_the_primary_address_is_told_when_one_is_added(h, lang, words):
    user = await create_user(h)
    # The notice is in the user's stored language, not the request's (issue 14).
    other = "zh-CN" if lang == "en" else "en"
    auth = {**bearer(await gate_token(h, user["account"])), "Accept-Language": other}
    r = await h.client.put("/api/auth/profile", json={"locale": lang}, headers=auth)
    assert r.status_code == 200 and r.json()["user"]["locale"] == lang, r.text
    address = extra_address()
    await add_secondary(h, auth, address)
    (notice,) = await mails(h, user["email"], "secondary_added")
    assert address in notice["text"] and words in notice["text"]
    assert "/account#emails" in notice["text"]
    assert await mails(h, address, "secondary_added") == []


# -- removing ----------------------------------------------------------------------------------
async def test_remove_answers_removed_and_the_user_and_the_address_stops_signing_in(h):
    user = await create_user(h)
    auth = bearer(await gate_token(h, user["account"]))
    keep, drop = extra_address(), extra_address()
    await add_secondary(h, auth, keep)
    await add_secondary(h, auth, drop)
    assert await signs_in(h, drop, OWNER_PASSWORD)
    r = await h.client.post(REMOVE, json={"email": drop.upper()}, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"removed", "user"} and body["removed"] is True
    assert set(body["user"]) == GATE_USER_KEYS and body["user"]["secondaryEmails"] == [keep]
    assert not await signs_in(h, drop, OWNER_PASSWORD)
    assert await signs_in(h, keep, OWNER_PASSWORD)
    me = (await h.client.get("/api/auth/me", headers=auth)).json()["user"]
    assert me["secondaryEmails"] == [keep]
    (notice,) = await mails(h, user["email"], "secondary_removed")
    assert drop in notice["text"]
    # The address is free again: another user can add it.
    other = await create_user(h)
    other_auth = bearer(await gate_token(h, other["account"]))
    assert (await add_secondary(h, other_auth, drop))["secondaryEmails"] == [drop]


async def test_remove_refuses_what_is_not_the_callers_secondary_address(h):
    user = await create_user(h)
    other = await create_user(h)
    auth = bearer(await gate_token(h, user["account"]))
    other_auth = bearer(await gate_token(h, other["account"]))
    theirs = extra_address()
    await add_secondary(h, other_auth, theirs)
    for address in (theirs, "nobody@example.net", other["email"]):
        r = await h.client.post(REMOVE, json={"email": address}, headers=auth)
        assert r.status_code == 404 and r.json()["code"] == "email_not_found", r.text
    r = await h.client.post(REMOVE, json={"email": user["email"]}, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "email" and r.json()["errors"][0]["code"] == "primary_email"
    r = await h.client.post(REMOVE, json={"email": "not-an-address"}, headers=auth)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_email"
    r = await h.client.post(REMOVE, json={}, headers=auth)
    assert r.status_code == 422
    r = await h.client.post(REMOVE, json={"email": theirs})
    assert r.status_code == 401
    assert await signs_in(h, theirs, OWNER_PASSWORD)  # nothing of the other user's changed


async def test_remove_on_the_account_page(h):
    user = await create_user(h)
    address = extra_address()
    await add_secondary(h, bearer(await gate_token(h, user["account"])), address)
    async with page_client(h, user["account"]) as browser:
        page = await browser.get("/account")
        assert 'action="/account/emails/remove"' in page.text and f'value="{address}"' in page.text
        r = await browser.post("/account/emails/remove", data={"csrf_token": "forged", "email": address})
        assert r.status_code == 403
        assert await signs_in(h, address, OWNER_PASSWORD)
        token = await form_token(browser, "/account")
        r = await browser.post("/account/emails/remove", data={"csrf_token": token, "email": address})
        assert r.status_code == 303 and r.headers["location"].startswith("/account?"), r.text
        assert "notice=email_removed" in r.headers["location"]
        r = await browser.post("/account/emails/remove", data={"csrf_token": token, "email": address})
        assert r.status_code == 404 and 'role="alert"' in r.text
        r = await browser.post("/account/emails/remove", data={"csrf_token": token, "email": user["email"]})
        assert r.status_code == 422 and 'role="alert"' in r.text
    assert not await signs_in(h, address, OWNER_PASSWORD)


# -- a pending code belongs to whoever asked for it ---------------------------------------------
async def test_another_users_request_for_the_same_address_neither_replaces_nor_burns_the_code(h):
    alice, mallory = await create_user(h), await create_user(h)
    alice_auth = bearer(await gate_token(h, alice["account"]))
    mallory_auth = bearer(await gate_token(h, mallory["account"]))
    address = extra_address()
    r = await h.client.post(REQUEST, json={"email": address}, headers=alice_auth)
    assert r.status_code == 200
    alice_code = await newest_code(h, address, "secondary_code")
    r = await h.client.post(REQUEST, json={"email": address}, headers=mallory_auth)
    assert r.status_code == 200
    mallory_code = await newest_code(h, address, "secondary_code")
    # Mallory's wrong guesses (more than a code survives) and Alice's own code do nothing for her.
    for guess in {alice_code, *(f"{n:06d}" for n in range(6))} - {mallory_code}:
        r = await h.client.post(VERIFY, json={"email": address, "code": guess}, headers=mallory_auth)
        assert r.status_code == 401, r.text
    r = await h.client.post(VERIFY, json={"email": address, "code": alice_code}, headers=alice_auth)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["secondaryEmails"] == [address]
    # Mallory's own code now meets an address that is taken.
    r = await h.client.post(VERIFY, json={"email": address, "code": mallory_code}, headers=mallory_auth)
    assert r.status_code in (401, 409), r.text
