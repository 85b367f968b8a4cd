"""Leaving, and taking the data along (issue 14): DELETE /api/v1/users/me, POST
/api/auth/delete-account, the hold on a deleted account's address and name, admin deletion on
the same rule path, and GET /api/v1/users/me/export. In process, on SQLite and PostgreSQL; the
SproutGate face also against a real server in tests/gate/test_gate_delete_account.py."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pyotp
import pytest
from pydantic_ai.models.function import AgentInfo, FunctionModel
from sqlalchemy import func, select
from v1_support import HAN, PASSWORD, assert_problem, error_fields

from sproutgate.agent.service import AgentChatService
from sproutgate.domain.housekeeping.service import purge_once
from sproutgate.storage.models import (
    AgentChat,
    AuthSession,
    HeldIdentifier,
    MfaChallenge,
    PendingSignup,
    RecoveryCode,
    RefreshToken,
    SignInClient,
    SignInDevice,
    TotpFactor,
    User,
    UserEmail,
    VerificationCode,
)
from support.harness import AppHarness, bearer, signup

pytestmark = pytest.mark.both_engines

ME = "/api/v1/users/me"
EXPORT = "/api/v1/users/me/export"
HOLD = 30 * 24 * 3600


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    # Re-registering one address several times a minute is the point here: the per-address
    # code-mail limit (one a minute) is tested elsewhere.
    return await make_harness(make_settings(limit_code_mail_per_address="1000/hour"))


def delete_me(h: AppHarness, token: str, body: Any, **headers: str) -> Any:
    return h.client.request("DELETE", ME, json=body, headers={**bearer(token), **headers})


async def gate_login(h: AppHarness, identifier: str, password: str = PASSWORD) -> str:
    r = await h.client.post("/api/auth/login", json={"account": identifier, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["token"]


async def account_of(h: AppHarness, token: str) -> str:
    r = await h.client.get("/api/auth/me", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()["user"]["account"]


async def count(h: AppHarness, model: Any, *where: Any) -> int:
    async with h.services.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def kinds(h: AppHarness, to: str) -> list[str]:
    return [m["kind"] for m in await h.mailbox(to)]


async def _answer(messages: Any, info: AgentInfo) -> AsyncIterator[str]:
    yield "Noted, gardener."


async def start_chat(h: AppHarness, token: str, message: str) -> str:
    """A real conversation through the agent endpoint, the model being a scripted function."""
    model = FunctionModel(stream_function=_answer, model_name="scripted")
    h.services.extras["agent"] = AgentChatService.from_services(h.services, model=model)
    r = await h.client.post("/api/v1/agent-chats", json={"message": message}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()["session_id"]


# -- re-authentication ------------------------------------------------------------------------
async def test_deleting_needs_the_right_password(h):
    session = await signup(h, "careful@example.com")
    token = session["access_token"]
    assert_problem(
        await h.client.request("DELETE", ME, json={"password": PASSWORD}), 401, "not_authenticated"
    )
    r = await delete_me(h, token, {})
    assert_problem(r, 422, "invalid_input")
    assert error_fields(r) == {"password"}
    r = await delete_me(h, token, {"password": ""})
    assert_problem(r, 422)
    assert error_fields(r) == {"password"}
    body = assert_problem(await delete_me(h, token, {"password": "Not#thePassword1"}), 401, "wrong_password")
    assert HAN.search(body["detail"])  # zh-CN by default
    body = assert_problem(
        await delete_me(h, token, {"password": "nope"}, **{"Accept-Language": "en"}), 401, "wrong_password"
    )
    assert body["detail"] == "The password is wrong."
    # Nothing happened: the account and its session are as they were.
    assert (await h.client.get(ME, headers=bearer(token))).status_code == 200
    assert await count(h, User, User.email == "careful@example.com") == 1


async def test_a_recent_sign_in_does_not_replace_the_password(h):
    # A password change may skip currentPassword right after sign-in; deletion never does.
    session = await signup(h, "fresh@example.com")
    r = await delete_me(h, session["access_token"], {})
    assert_problem(r, 422)
    gate = await gate_login(h, "fresh@example.com")
    r = await h.client.post("/api/auth/delete-account", json={}, headers=bearer(gate))
    assert_problem(r, 422)
    assert {e["field"] for e in r.json()["errors"]} == {"currentPassword"}


async def test_wrong_passwords_count_like_failed_sign_ins(make_harness, make_settings):
    h = await make_harness(make_settings(limit_login_fail_account_ip="3/15 minutes"))
    session = await signup(h, "guessed@example.com")
    token = session["access_token"]
    for _ in range(3):
        assert_problem(await delete_me(h, token, {"password": "Wrong#guess2026"}), 401, "wrong_password")
    # The fourth try is refused before the password is looked at, the right one too...
    r = await delete_me(h, token, {"password": PASSWORD})
    assert_problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) > 0
    # ...and the same count refuses a sign-in to this account from this address.
    r = await h.client.post(
        "/api/v1/auth/sessions", json={"email": "guessed@example.com", "password": PASSWORD}
    )
    assert_problem(r, 429, "rate_limited")
    assert await count(h, User, User.email == "guessed@example.com") == 1


# -- what ends at once ------------------------------------------------------------------------
async def test_deletion_ends_every_session_token_code_and_chat_at_once(h):
    email = "leaving@example.com"
    first = await signup(h, email)
    second = (
        await h.client.post("/api/v1/auth/sessions", json={"email": email, "password": PASSWORD})
    ).json()
    gate = await gate_login(h, email)
    account = await account_of(h, gate)
    user_id = first["user"]["id"]
    await start_chat(h, first["access_token"], "Remember my tulips.")
    # Pending codes: a reset code for the address and a code for a secondary address.
    assert (await h.client.post("/api/v1/auth/password-reset", json={"email": email})).status_code == 204
    r = await h.client.post(
        "/api/auth/secondary-email/request", json={"email": "second@example.com"}, headers=bearer(gate)
    )
    assert r.status_code == 200, r.text
    reset_code = await h.last_code(email)
    assert await count(h, VerificationCode, VerificationCode.user_id == user_id) == 2
    assert await count(h, AgentChat, AgentChat.user_id == user_id) == 1
    assert await count(h, SignInDevice, SignInDevice.user_id == user_id) == 1  # the sign-up's client

    r = await delete_me(h, first["access_token"], {"password": PASSWORD}, **{"Accept-Language": "en"})
    assert r.status_code == 204 and r.content == b""

    # Every access token, on both faces, and every refresh token are dead at once.
    for token in (first["access_token"], second["access_token"], gate):
        assert_problem(await h.client.get(ME, headers=bearer(token)), 401, "not_authenticated")
        assert_problem(await h.client.get("/api/auth/me", headers=bearer(token)), 401, "not_authenticated")
        r = await h.client.post("/api/auth/verify", json={"token": token})
        assert r.json() == {"valid": False}
    for refresh in (first["refresh_token"], second["refresh_token"]):
        r = await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": refresh})
        assert_problem(r, 401, "invalid_refresh_token")
    # The pending codes are gone: the reset code no longer works.
    r = await h.client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"email": email, "token": reset_code, "new_password": "Another#pass2026"},
    )
    assert_problem(r, 401, "invalid_code")
    # Nothing of the user is left.
    for model, where in (
        (User, User.id == user_id),
        (UserEmail, UserEmail.user_id == user_id),
        (AuthSession, AuthSession.user_id == user_id),
        (SignInClient, SignInClient.user_id == user_id),
        (SignInDevice, SignInDevice.user_id == user_id),
        (AgentChat, AgentChat.user_id == user_id),
        (VerificationCode, VerificationCode.user_id == user_id),
        (VerificationCode, VerificationCode.email.in_([email, "second@example.com"])),
        (PendingSignup, PendingSignup.email == email),
        (RefreshToken, RefreshToken.session_id.not_in(select(AuthSession.id))),
    ):
        assert await count(h, model, where) == 0, model
    # Signing in answers as for an unknown account.
    r = await h.client.post("/api/v1/auth/sessions", json={"email": email, "password": PASSWORD})
    assert_problem(r, 401, "invalid_credentials")
    r = await h.client.post("/api/auth/login", json={"account": account, "password": PASSWORD})
    assert_problem(r, 401, "invalid_credentials")

    # The notice, in the user's stored language (zh-CN: the sign-up sent no Accept-Language),
    # not the deleting request's (en), names the account and the hold.
    notice = next(m for m in await h.mailbox(email) if m["kind"] == "account_deleted")
    assert notice["subject"] == "【SproutGate】你的账号已删除"
    assert account in notice["text"] and "起可以重新注册" in notice["text"]

    # The audit trail keeps that the account was deleted, and by whom, without the profile.
    events = [e for e in await h.services.admin.audit_log(50) if e.target == account]
    assert [(e.actor, e.action, e.details) for e in events] == [
        (f"user:{account}", "user.delete", {"by": "self"})
    ]
    assert email not in repr(vars(events[0])) and "sprout" not in json.dumps(events[0].details)


async def test_the_gate_face_deletes_with_current_password(h):
    email = "gateleaver@example.com"
    v1 = await signup(h, email)
    gate = await gate_login(h, email)
    account = await account_of(h, gate)
    r = await h.client.post(
        "/api/auth/delete-account", json={"currentPassword": "Wrong#one2026"}, headers=bearer(gate)
    )
    assert_problem(r, 401, "wrong_password")
    r = await h.client.post(
        "/api/auth/delete-account", json={"currentPassword": PASSWORD}, headers=bearer(gate)
    )
    assert r.status_code == 200 and r.json() == {"deleted": True}
    for token in (gate, v1["access_token"]):
        assert_problem(await h.client.get("/api/auth/me", headers=bearer(token)), 401, "not_authenticated")
    r = await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": v1["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    notice = next(m for m in await h.mailbox(email) if m["kind"] == "account_deleted")
    assert HAN.search(notice["subject"]) and account in notice["text"]  # zh-CN, the default


# -- the hold ---------------------------------------------------------------------------------
async def register_v1(h: AppHarness, email: str) -> httpx.Response:
    return await h.client.post(
        "/api/v1/auth/verifications", json={"email": email, "password": PASSWORD, "username": "again"}
    )


async def register_gate(h: AppHarness, account: str, email: str) -> httpx.Response:
    return await h.client.post(
        "/api/auth/register", json={"account": account, "email": email, "password": PASSWORD, "username": "x"}
    )


async def test_address_and_name_are_held_then_free_again(h):
    email = "held@example.com"
    session = await signup(h, email)
    gate = await gate_login(h, email)
    account = await account_of(h, gate)
    await signup(h, "taken@example.com")
    assert (await delete_me(h, session["access_token"], {"password": PASSWORD})).status_code == 204

    # Runtime face: a held address answers exactly like a taken one and like a free one...
    answers = {}
    for address in (email, "taken@example.com", "free@example.com"):
        r = await register_v1(h, address)
        answers[address] = (r.status_code, r.json())
    assert answers == {a: (202, {"email": a}) for a in answers}
    # ...but gets a notice instead of a code, and no code can complete it.
    assert (await kinds(h, email))[0] == "signup_held"
    assert (await kinds(h, email)).count("signup_code") == 1  # the first sign-up's, no other
    for code in ("000000", "123456"):
        r = await h.client.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
        assert_problem(r, 401, "invalid_code")
    assert await count(h, User, User.email == email) == 0

    # SproutGate face: the name is taken (names are public), the address tells nothing.
    assert_problem(await register_gate(h, account, "someone.else@example.com"), 409, "account_taken")
    assert_problem(await register_gate(h, account.upper(), "someone.else@example.com"), 409, "account_taken")
    r = await register_gate(h, "brand.new.name", email)
    assert r.status_code == 200 and r.json()["sent"] is True
    assert (await kinds(h, email))[0] == "signup_held"
    # A runtime sign-up deriving the held name gets another one.
    other = await signup(h, f"{account}@elsewhere.example.com")
    assert await account_of(h, await gate_login(h, f"{account}@elsewhere.example.com")) != account
    # Nobody can add the address as a secondary one: the answer and the notice of an address in
    # use, no code.
    r = await h.client.post(
        "/api/auth/secondary-email/request", json={"email": email}, headers=bearer(other["access_token"])
    )
    assert r.status_code == 200 and r.json()["sent"] is True
    assert (await kinds(h, email))[0] == "secondary_taken"
    assert "secondary_code" not in await kinds(h, email)
    # Administrators cannot hand them out either.
    admin = {"X-Admin-Token": h.services.admin_guard.token}
    body = {"account": "fresh.admin.made", "email": email, "password": PASSWORD}
    assert_problem(await h.client.post("/api/admin/users", json=body, headers=admin), 409, "email_taken")
    body = {"account": account, "email": "fresh.admin@example.com", "password": PASSWORD}
    assert_problem(await h.client.post("/api/admin/users", json=body, headers=admin), 409, "account_taken")

    # Shortly before the hold ends it still holds; after it, both are free. (The clock is real
    # time plus an offset: a minute's margin covers the time the test itself takes.)
    h.clock.advance(HOLD - 60)
    assert_problem(await register_gate(h, account, "someone.else@example.com"), 409, "account_taken")
    h.clock.advance(61)
    again = await signup(h, email)
    assert (await h.client.get(ME, headers=bearer(again["access_token"]))).status_code == 200
    # The runtime sign-up derives its name from the address: the freed name, the old one.
    assert await account_of(h, await gate_login(h, email)) == account
    # The ended holds are purged with the rest of what is dead.
    assert await count(h, HeldIdentifier) == 2
    assert (await purge_once(h.services.db, h.clock))["held_identifiers"] == 2
    assert await count(h, HeldIdentifier) == 0


async def test_a_pending_sign_up_cannot_take_a_held_address(h):
    # A sign-up for an address started before it became a secondary address of an account
    # that is then deleted: its code must not complete during the hold.
    owner = await signup(h, "owner@example.com")
    r = await register_v1(h, "later@example.com")
    assert r.status_code == 202
    pending_code = await h.last_code("later@example.com")
    gate = await gate_login(h, "owner@example.com")
    await h.client.post(
        "/api/auth/secondary-email/request", json={"email": "later@example.com"}, headers=bearer(gate)
    )
    code = next(
        m["subject"][-6:] for m in await h.mailbox("later@example.com") if m["kind"] == "secondary_code"
    )
    r = await h.client.post(
        "/api/auth/secondary-email/verify",
        json={"email": "later@example.com", "code": code},
        headers=bearer(gate),
    )
    assert r.status_code == 200, r.text
    assert (await delete_me(h, owner["access_token"], {"password": PASSWORD})).status_code == 204
    r = await h.client.post(
        "/api/v1/auth/verifications/verify", json={"email": "later@example.com", "token": pending_code}
    )
    assert_problem(r, 401, "invalid_code")
    assert await count(h, UserEmail, UserEmail.email == "later@example.com") == 0


async def test_without_a_hold_the_address_is_free_at_once(make_harness, make_settings):
    h = await make_harness(
        make_settings(deleted_account_hold_seconds=0, limit_code_mail_per_address="1000/hour")
    )
    session = await signup(h, "quick@example.com")
    assert (await delete_me(h, session["access_token"], {"password": PASSWORD})).status_code == 204
    again = await signup(h, "quick@example.com")
    assert again["user"]["email"] == "quick@example.com"
    assert await count(h, HeldIdentifier) == 0


# -- administrators ---------------------------------------------------------------------------
async def test_admin_deletion_takes_the_same_path(h):
    email = "removed@example.com"
    session = await signup(h, email)
    gate = await gate_login(h, email)
    account = await account_of(h, gate)
    await start_chat(h, session["access_token"], "hello")
    admin = {"X-Admin-Token": h.services.admin_guard.token, "X-Forwarded-For": "203.0.113.7"}
    r = await h.client.delete(f"/api/admin/users/{account}", headers=admin)
    assert r.status_code == 200 and r.json() == {"deleted": True}
    for token in (session["access_token"], gate):
        assert_problem(await h.client.get(ME, headers=bearer(token)), 401, "not_authenticated")
    r = await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": session["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    assert await count(h, AgentChat, AgentChat.user_id == session["user"]["id"]) == 0
    assert "account_deleted_by_admin" in await kinds(h, email)
    assert_problem(await register_gate(h, account, "x@example.com"), 409, "account_taken")
    event = next(e for e in await h.services.admin.audit_log(20) if e.action == "user.delete")
    assert (event.actor, event.target, event.details, event.ip) == (
        "admin-token",
        account,
        {"by": "admin"},
        "203.0.113.7",
    )
    assert_problem(await h.client.delete(f"/api/admin/users/{account}", headers=admin), 404, "user_not_found")


# -- export -----------------------------------------------------------------------------------
def json_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in json_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in json_keys(v)}
    return set()


async def test_export_holds_everything_stored_and_no_secret(h):
    email = "exporter@example.com"
    first = await signup(h, email, username="Ex Porter")
    user_id = first["user"]["id"]
    gate = await gate_login(h, email)
    account = await account_of(h, gate)
    admin = {"X-Admin-Token": h.services.admin_guard.token}
    r = await h.client.put(
        f"/api/admin/users/{account}",
        json={"secondaryEmails": ["alt@example.com"], "level": 3},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    chat_id = await start_chat(h, first["access_token"], "Water the ferns on Friday.")
    # A rotated refresh token and an ended session are stored about the user too.
    rotated = (
        await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    ended = (await h.client.post("/api/v1/auth/sessions", json={"email": email, "password": PASSWORD})).json()
    await h.client.request("DELETE", "/api/v1/auth/sessions", json={"refresh_token": ended["refresh_token"]})
    assert (await h.client.post("/api/v1/auth/password-reset", json={"email": email})).status_code == 204
    reset_code = await h.last_code(email)

    assert_problem(await h.client.get(EXPORT), 401, "not_authenticated")
    r = await h.client.get(EXPORT, headers=bearer(rotated["access_token"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json" and r.headers["cache-control"] == "no-store"
    data = r.json()
    assert set(data) == {
        "exported_at",
        "profile",
        "addresses",
        "sessions",
        "connected_apps",  # what apps hold: tests/oidc/test_apps_in_export_and_sessions.py
        "app_grants",
        "sign_in_clients",
        "sign_in_devices",
        "second_factors",
        "audit_events",
        "agent_conversations",
        "mail",
    }
    profile = data["profile"]
    assert (profile["id"], profile["account"], profile["email"], profile["username"], profile["level"]) == (
        user_id,
        account,
        email,
        "Ex Porter",
        3,
    )
    assert [(a["email"], a["primary"]) for a in data["addresses"]] == [
        (email, True),
        ("alt@example.com", False),
    ]
    sessions = {s["id"]: s for s in data["sessions"]}
    assert len(sessions) == 3  # the sign-up's, the gate sign-in's, the ended one
    current = [s for s in sessions.values() if s["current"]]
    assert len(current) == 1 and current[0]["kind"] == "runtime" and current[0]["ended_at"] is None
    assert any(s["end_reason"] == "logout" and s["ended_at"] for s in sessions.values())
    assert {s["kind"] for s in sessions.values()} == {"runtime", "gate"}
    assert all(s["ip"] for s in sessions.values())
    assert data["sign_in_clients"] and all(c["ip"] for c in data["sign_in_clients"])
    # The one client that signed up and in (the tests' user agent and network), without its hash.
    assert [set(d) for d in data["sign_in_devices"]] == [{"first_seen_at", "last_seen_at"}]
    assert profile["locale"] == "zh-CN"
    assert data["second_factors"] == {"authenticator_app": None, "recovery_codes": [], "passkeys": []}
    audit = [(e["actor"], e["action"]) for e in data["audit_events"]]
    assert audit == [("admin-token", "user.update")]
    assert data["audit_events"][0]["details"]["values"] == {
        "secondary_emails": ["alt@example.com"],
        "level": 3,
    }
    [chat] = data["agent_conversations"]
    assert chat["id"] == chat_id and "Water the ferns on Friday." in json.dumps(chat["messages"])
    assert {"signup_code", "reset_code"} <= {m["kind"] for m in data["mail"]}

    # Never a secret: no hash, no code, no refresh token, no mail text.
    text = r.text
    assert not json_keys(data) & {
        "password",
        "password_hash",
        "token_hash",
        "code_hash",
        "subject",
        "text_body",
    }
    async with h.services.db.read() as s:
        secrets = [(await s.get(User, user_id)).password_hash]
        secrets += list((await s.execute(select(RefreshToken.token_hash))).scalars())
        secrets += list((await s.execute(select(VerificationCode.code_hash))).scalars())
    for refresh in (first["refresh_token"], rotated["refresh_token"], ended["refresh_token"]):
        secrets += [refresh, hashlib.sha256(refresh.encode()).hexdigest()]
    secrets += [reset_code, first["access_token"], rotated["access_token"], gate]
    for secret in secrets:
        assert secret not in text
    assert "$argon2" not in text


async def test_second_factors_are_exported_without_secrets_and_end_with_the_account(h):
    email = "twofactor@example.com"
    session = await signup(h, email)
    token, user_id = session["access_token"], session["user"]["id"]
    # Forward to the middle of a 30-second step, so the code stays valid while it is used (never
    # back: the access token must not be issued in the clock's future).
    h.clock.advance((15 - h.clock.now().timestamp() % 30) % 30)
    r = await h.client.post("/api/v1/users/me/mfa/totp", json={}, headers=bearer(token))
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = await h.client.post(
        "/api/v1/users/me/mfa/totp/verify",
        json={"code": pyotp.TOTP(secret).at(h.clock.now())},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    recovery = r.json()["recovery_codes"]
    # A sign-in waiting for its second step.
    r = await h.client.post("/api/v1/auth/sessions", json={"email": email, "password": PASSWORD})
    mfa_token = assert_problem(r, 401, "mfa_required")["mfa_token"]

    r = await h.client.get(EXPORT, headers=bearer(token))
    assert r.status_code == 200, r.text
    factors = r.json()["second_factors"]
    assert factors["authenticator_app"]["active_since"] is not None
    assert len(factors["recovery_codes"]) == len(recovery)
    assert all(c["used_at"] is None for c in factors["recovery_codes"])
    for secret_text in (secret, mfa_token, *recovery):
        assert secret_text not in r.text
    async with h.services.db.read() as s:
        sealed = (await s.get(TotpFactor, user_id)).secret_sealed
        hashes = list((await s.execute(select(RecoveryCode.code_hash))).scalars())
    assert sealed not in r.text and not any(x in r.text for x in hashes)

    assert (await delete_me(h, token, {"password": PASSWORD})).status_code == 204
    for model in (TotpFactor, RecoveryCode, MfaChallenge):
        assert await count(h, model, model.user_id == user_id) == 0, model
    h.clock.advance(30)
    r = await h.client.post(
        "/api/v1/auth/sessions/mfa",
        json={"mfa_token": mfa_token, "code": pyotp.TOTP(secret).at(h.clock.now())},
    )
    assert_problem(r, 401, "invalid_mfa_token")
