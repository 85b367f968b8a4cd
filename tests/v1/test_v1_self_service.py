"""Self-service (issue 14): a user's sessions (list, end one, end the others) on both API faces,
the idle timeout, and changing the primary address. In process, on SQLite and PostgreSQL, with
the clock moved for the idle timeout; against a real server: tests/gate/test_self_service_server.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from v1_support import HAN, PASSWORD, assert_problem, error_fields

from sproutgate.domain.codes.rules import CodePurpose
from sproutgate.storage.models import AuditEvent, AuthSession, OutboxMessage, VerificationCode
from support.harness import AppHarness, bearer, signup

pytestmark = pytest.mark.both_engines

SESSIONS = "/api/v1/users/me/sessions"
GATE_SESSIONS = "/api/auth/sessions"
EMAIL = "/api/v1/users/me/email"
IDLE = 3600


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(
        make_settings(
            session_idle_timeout_seconds=IDLE,
            admin_token="self-service-admin-token",
            limit_code_mail_per_address="1000/hour",
        )
    )


async def sign_in(h: AppHarness, email: str, **headers: str) -> dict[str, Any]:
    client = h.new_client(**headers)
    r = await client.post("/api/v1/auth/sessions", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()


async def gate_sign_in(h: AppHarness, identifier: str) -> str:
    r = await h.client.post("/api/auth/login", json={"account": identifier, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["token"]


async def works(h: AppHarness, token: str) -> bool:
    return (await h.client.get("/api/v1/users/me", headers=bearer(token))).status_code == 200


async def refreshes(h: AppHarness, session: dict[str, Any]) -> bool:
    r = await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": session["refresh_token"]})
    return r.status_code == 200


async def count(h: AppHarness, model: Any, *where: Any) -> int:
    async with h.services.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def last_seen(h: AppHarness, session_id: str) -> Any:
    async with h.services.db.read() as s:
        return (
            await s.execute(select(AuthSession.last_seen_at).where(AuthSession.id == session_id))
        ).scalar_one()


async def my_sessions(h: AppHarness, token: str) -> list[dict[str, Any]]:
    r = await h.client.get(SESSIONS, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()


# -- sessions ---------------------------------------------------------------------------------
async def test_the_caller_lists_their_active_sessions_newest_first(h):
    first = await signup(h, "lister@example.com")
    h.clock.advance(5)
    second = await sign_in(
        h, "lister@example.com", **{"User-Agent": "Garden/2.0", "X-Forwarded-For": "203.0.113.7"}
    )
    h.clock.advance(5)
    gate = await gate_sign_in(h, "lister@example.com")
    other = await signup(h, "someone@example.com")

    listed = await my_sessions(h, second["access_token"])
    assert [set(x) for x in listed] == [
        {"id", "created_at", "last_used_at", "ip", "user_agent", "current"}
    ] * 3
    assert [x["current"] for x in listed] == [False, True, False]  # newest (gate) first
    assert listed[1]["ip"] == "203.0.113.7" and listed[1]["user_agent"] == "Garden/2.0"
    assert listed[0]["created_at"] > listed[1]["created_at"] > listed[2]["created_at"]

    # The SproutGate face lists the same sessions in its spelling.
    r = await h.client.get(GATE_SESSIONS, headers=bearer(gate))
    assert r.status_code == 200, r.text
    gate_listed = r.json()["sessions"]
    assert [x["id"] for x in gate_listed] == [x["id"] for x in listed]
    assert set(gate_listed[0]) == {"id", "createdAt", "lastUsedAt", "ip", "userAgent", "current"}
    assert [x["current"] for x in gate_listed] == [True, False, False]
    assert gate_listed[1]["userAgent"] == "Garden/2.0" and gate_listed[0]["createdAt"].endswith("Z")

    # Ended sessions are not listed; nobody else's ever are.
    r = await h.client.request(
        "DELETE", "/api/v1/auth/sessions", json={"refresh_token": first["refresh_token"]}
    )
    assert r.status_code == 204
    assert len(await my_sessions(h, second["access_token"])) == 2
    assert [x["current"] for x in await my_sessions(h, other["access_token"])] == [True]


async def test_ending_a_session_stops_its_access_and_refresh_tokens_at_once(h):
    phone = await signup(h, "ender@example.com")
    laptop = await sign_in(h, "ender@example.com")
    gate = await gate_sign_in(h, "ender@example.com")
    ids = {x["current"]: x["id"] for x in await my_sessions(h, laptop["access_token"])}

    r = await h.client.delete(
        f"{SESSIONS}/{phone_id(await my_sessions(h, phone['access_token']))}",
        headers=bearer(laptop["access_token"]),
    )
    assert r.status_code == 204 and r.content == b""
    assert not await works(h, phone["access_token"]) and not await refreshes(h, phone)
    assert await works(h, laptop["access_token"]) and await works(h, gate)

    # On the SproutGate face: the laptop's session, from the gate token.
    r = await h.client.delete(f"{GATE_SESSIONS}/{ids[True]}", headers=bearer(gate))
    assert r.status_code == 200 and r.json() == {"revoked": True}
    assert not await works(h, laptop["access_token"]) and not await refreshes(h, laptop)
    # Its own session too: then it is signed out.
    gate_id = (await h.client.get(GATE_SESSIONS, headers=bearer(gate))).json()["sessions"][0]["id"]
    r = await h.client.delete(f"{GATE_SESSIONS}/{gate_id}", headers=bearer(gate))
    assert r.json() == {"revoked": True}
    assert not await works(h, gate)


def phone_id(listed: list[dict[str, Any]]) -> str:
    return next(x["id"] for x in listed if x["current"])


async def test_another_users_ended_or_unknown_session_is_not_found(h):
    mine = await signup(h, "owner@example.com")
    theirs = await signup(h, "neighbour@example.com")
    their_id = phone_id(await my_sessions(h, theirs["access_token"]))
    for path in (
        f"{SESSIONS}/{their_id}",
        f"{SESSIONS}/00000000-0000-0000-0000-000000000000",
        f"{SESSIONS}/x",
    ):
        body = assert_problem(
            await h.client.delete(path, headers=bearer(mine["access_token"])), 404, "session_not_found"
        )
        assert HAN.search(body["detail"])
    r = await h.client.delete(
        f"{GATE_SESSIONS}/{their_id}", headers={**bearer(mine["access_token"]), "Accept-Language": "en"}
    )
    body = assert_problem(r, 404, "session_not_found")
    assert body["detail"] == "No such session, or it has already ended."
    assert await works(h, theirs["access_token"])  # untouched
    # An ended one of the caller's: not found either (there is nothing left to end).
    extra = await sign_in(h, "owner@example.com")
    extra_id = phone_id(await my_sessions(h, extra["access_token"]))
    assert (
        await h.client.delete(f"{SESSIONS}/{extra_id}", headers=bearer(mine["access_token"]))
    ).status_code == 204
    assert_problem(await h.client.delete(f"{SESSIONS}/{extra_id}", headers=bearer(mine["access_token"])), 404)
    # Malformed, and without a token.
    assert_problem(await h.client.delete(f"{SESSIONS}/{'x' * 65}", headers=bearer(mine["access_token"])), 422)
    assert_problem(await h.client.get(SESSIONS), 401, "not_authenticated")
    assert_problem(await h.client.get(GATE_SESSIONS), 401, "not_authenticated")
    assert_problem(await h.client.delete(f"{SESSIONS}/{their_id}"), 401)
    assert_problem(await h.client.post(f"{SESSIONS}/revoke-others"), 401)


async def test_revoke_others_keeps_only_the_calling_session(h):
    keep = await signup(h, "others@example.com")
    gone = [await sign_in(h, "others@example.com") for _ in range(2)]
    gate = await gate_sign_in(h, "others@example.com")
    bystander = await signup(h, "bystander@example.com")
    r = await h.client.post(f"{SESSIONS}/revoke-others", headers=bearer(keep["access_token"]))
    assert r.status_code == 204
    assert [x["current"] for x in await my_sessions(h, keep["access_token"])] == [True]
    assert not any([await works(h, s["access_token"]) for s in gone]) and not await works(h, gate)
    assert not await refreshes(h, gone[0])
    assert await works(h, keep["access_token"]) and await refreshes(h, keep)
    assert await works(h, bystander["access_token"])


# -- idle timeout -----------------------------------------------------------------------------
async def test_a_session_idle_longer_than_the_timeout_is_refused_at_its_next_use(h):
    used = await signup(h, "idle@example.com")
    idle = await sign_in(h, "idle@example.com")  # a refresh token good for 30 days
    gate = await gate_sign_in(h, "idle@example.com")  # a 7-day token
    # The used session stays alive by being used (access checks and refreshes), the others wait.
    for _ in range(3):
        h.clock.advance(IDLE / 2)
        assert await works(h, used["access_token"])
        r = await h.client.post(
            "/api/v1/auth/sessions/refresh", json={"refresh_token": used["refresh_token"]}
        )
        assert r.status_code == 200, r.text
        used = r.json()
    assert await works(h, used["access_token"])
    r = await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": idle["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    r = await h.client.post("/api/auth/verify", json={"token": gate})
    assert r.json() == {"valid": False}
    assert_problem(await h.client.get("/api/auth/me", headers=bearer(gate)), 401, "not_authenticated")
    listed = await my_sessions(h, used["access_token"])
    assert [x["current"] for x in listed] == [True]  # idle ones are not listed
    # The purge removes the idle rows later (they are refused already; this frees the space).
    assert (await h.services.housekeeping.purge_once())["sessions"] == 2
    async with h.services.db.read() as s:
        assert list((await s.execute(select(AuthSession.id))).scalars()) == [listed[0]["id"]]


async def test_the_idle_refusal_is_exact_with_respect_to_the_stored_last_use(h):
    await signup(h, "exact@example.com")
    gate = await gate_sign_in(h, "exact@example.com")
    sid = (await h.client.get(GATE_SESSIONS, headers=bearer(gate))).json()["sessions"][0]["id"]
    stored = await last_seen(h, sid)
    h.clock.offset += stored + timedelta(seconds=IDLE - 1) - h.clock.now()
    assert await works(h, gate)  # a second before the idle deadline: still active (and recorded)
    again = await last_seen(h, sid)
    assert again > stored
    h.clock.offset += again + timedelta(seconds=IDLE) - h.clock.now()
    assert not await works(h, gate)  # at the deadline of the stored last use: over
    assert await last_seen(h, sid) == again  # a refused check records nothing


async def test_last_use_is_recorded_at_most_once_a_minute_not_on_every_request(h):
    session = await signup(h, "cheap@example.com")
    sid = phone_id(await my_sessions(h, session["access_token"]))
    issued = await last_seen(h, sid)
    for _ in range(5):
        assert await works(h, session["access_token"])
    assert await last_seen(h, sid) == issued  # five checks, no write
    h.clock.advance(61)
    assert await works(h, session["access_token"])
    moved = await last_seen(h, sid)
    assert moved > issued
    assert await works(h, session["access_token"])
    assert await last_seen(h, sid) == moved
    listed = await my_sessions(h, session["access_token"])
    assert listed[0]["last_used_at"].startswith(moved.strftime("%Y-%m-%dT%H:%M:%S"))


# -- changing the primary address -------------------------------------------------------------
async def test_changing_the_primary_address_on_the_runtime_api(h):
    session = await signup(h, "old.address@example.com", username="Mover")
    token = session["access_token"]
    r = await h.client.post("/api/v1/auth/password-reset", json={"email": "old.address@example.com"})
    assert r.status_code == 204
    assert await count(h, VerificationCode, VerificationCode.purpose == CodePurpose.RESET.value) == 1

    # Within the recent-auth window the password may be left out.
    r = await h.client.post(EMAIL, json={"new_email": " New.Address@Example.COM "}, headers=bearer(token))
    assert r.status_code == 202, r.text
    assert r.json() == {"email": "new.address@example.com"}
    [mail] = await h.mailbox("new.address@example.com")
    assert mail["kind"] == "primary_change_code"
    code = await h.last_code("new.address@example.com")

    wrong = "000000" if code != "000000" else "111111"
    r = await h.client.post(
        f"{EMAIL}/verify",
        json={"new_email": "new.address@example.com", "token": wrong},
        headers=bearer(token),
    )
    assert_problem(r, 401, "invalid_code")
    r = await h.client.post(
        f"{EMAIL}/verify", json={"new_email": "NEW.address@example.com", "token": code}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "Mover" and set(r.json()) == {"id", "username", "avatar_url", "bio"}

    # The old address stops signing in, its reset code died, it got a notice; sessions stay.
    r = await h.client.post(
        "/api/v1/auth/sessions", json={"email": "old.address@example.com", "password": PASSWORD}
    )
    assert_problem(r, 401, "invalid_credentials")
    assert await sign_in(h, "new.address@example.com")
    assert await count(h, VerificationCode, VerificationCode.purpose == CodePurpose.RESET.value) == 0
    assert "primary_changed" in [m["kind"] for m in await h.mailbox("old.address@example.com")]
    assert await works(h, token)
    r = await h.client.get("/api/auth/me", headers=bearer(token))
    assert (
        r.json()["user"]["email"] == "new.address@example.com" and r.json()["user"]["secondaryEmails"] == []
    )
    # The code is used up.
    r = await h.client.post(
        f"{EMAIL}/verify", json={"new_email": "new.address@example.com", "token": code}, headers=bearer(token)
    )
    assert_problem(r, 401, "invalid_code")


async def test_an_address_of_another_account_answers_alike_and_never_completes(h):
    owner = await signup(h, "taken@example.com")
    mover = await signup(h, "mover@example.com")
    codes_before = await count(h, VerificationCode)
    mail_before = await count(h, OutboxMessage)
    r = await h.client.post(
        EMAIL, json={"new_email": "Taken@example.com"}, headers=bearer(mover["access_token"])
    )
    assert r.status_code == 202 and r.json() == {"email": "taken@example.com"}
    # As much work as a real code: one code row (a decoy) and one mail (a notice, no code).
    assert await count(h, VerificationCode) == codes_before + 1
    assert await count(h, OutboxMessage) == mail_before + 1
    assert [m["kind"] for m in await h.mailbox("taken@example.com")][0] == "primary_change_taken"
    # No code can complete it: every guess is wrong.
    r = await h.client.post(
        f"{EMAIL}/verify",
        json={"new_email": "taken@example.com", "token": "123456"},
        headers=bearer(mover["access_token"]),
    )
    assert_problem(r, 401, "invalid_code")
    r = await h.client.get("/api/auth/me", headers=bearer(mover["access_token"]))
    assert r.json()["user"]["email"] == "mover@example.com"
    assert await works(h, owner["access_token"])


async def test_a_secondary_address_of_ones_own_is_promoted(h):
    session = await signup(h, "promote@example.com")
    token = session["access_token"]
    r = await h.client.post(
        "/api/auth/secondary-email/request", json={"email": "second@example.com"}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    r = await h.client.post(
        "/api/auth/secondary-email/verify",
        json={"email": "second@example.com", "code": await h.last_code("second@example.com")},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    # On the SproutGate face, with the current password.
    r = await h.client.post(
        "/api/auth/email/change",
        json={"email": "second@example.com", "currentPassword": PASSWORD},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    assert r.json()["sent"] is True and r.json()["expiresAt"].endswith("Z")
    code = await h.last_code("second@example.com")
    r = await h.client.post(
        "/api/auth/email/verify", json={"email": "second@example.com", "code": code}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    user = r.json()["user"]
    assert r.json()["verified"] is True
    assert user["email"] == "second@example.com" and user["secondaryEmails"] == []  # promoted, old dropped


async def test_email_change_needs_re_authentication_and_well_formed_input(h):
    session = await signup(h, "strict@example.com")
    token = session["access_token"]
    # Malformed: 422 naming the face's fields.
    r = await h.client.post(EMAIL, json={"new_email": "not-an-address"}, headers=bearer(token))
    assert_problem(r, 422, "invalid_input")
    assert error_fields(r) == {"new_email"}
    r = await h.client.post(EMAIL, json={}, headers=bearer(token))
    assert error_fields(r) == {"new_email"}
    r = await h.client.post(
        f"{EMAIL}/verify", json={"new_email": "a@example.com", "token": "12ab"}, headers=bearer(token)
    )
    assert_problem(r, 422)
    assert error_fields(r) == {"token"}
    r = await h.client.post(
        EMAIL, json={"new_email": "strict@example.com"}, headers={**bearer(token), "Accept-Language": "en"}
    )
    body = assert_problem(r, 422)
    assert r.json()["errors"] == [
        {"field": "new_email", "code": "same_email", "message": "is already your primary address"}
    ]
    assert "new_email" in body["detail"]
    r = await h.client.post("/api/auth/email/change", json={"email": "nope"}, headers=bearer(token))
    assert_problem(r, 422)
    r = await h.client.post(
        "/api/auth/email/verify", json={"email": "a@example.com", "code": "1"}, headers=bearer(token)
    )
    assert_problem(r, 422)
    # Without a token: 401.
    assert_problem(await h.client.post(EMAIL, json={"new_email": "x@example.com"}), 401, "not_authenticated")
    assert_problem(await h.client.post("/api/auth/email/change", json={"email": "x@example.com"}), 401)
    # After the recent-auth window: the password is needed, and a wrong one is refused.
    h.clock.advance(h.services.settings.recent_auth_seconds + 1)
    assert await works(h, token)
    r = await h.client.post(EMAIL, json={"new_email": "later@example.com"}, headers=bearer(token))
    assert_problem(r, 403, "recent_auth_required")
    r = await h.client.post(
        EMAIL, json={"new_email": "later@example.com", "password": "Wrong#pw2026"}, headers=bearer(token)
    )
    assert_problem(r, 403, "wrong_current_password")
    assert await h.mailbox("later@example.com") == []
    r = await h.client.post(
        EMAIL, json={"new_email": "later@example.com", "password": PASSWORD}, headers=bearer(token)
    )
    assert r.status_code == 202, r.text


async def test_someone_elses_code_does_not_change_my_address(h):
    a = await signup(h, "alpha@example.com")
    b = await signup(h, "beta@example.com")
    r = await h.client.post(
        EMAIL, json={"new_email": "shared@example.com"}, headers=bearer(a["access_token"])
    )
    assert r.status_code == 202
    code = await h.last_code("shared@example.com")
    r = await h.client.post(
        f"{EMAIL}/verify",
        json={"new_email": "shared@example.com", "token": code},
        headers=bearer(b["access_token"]),
    )
    assert_problem(r, 401, "invalid_code")
    r = await h.client.post(
        f"{EMAIL}/verify",
        json={"new_email": "shared@example.com", "token": code},
        headers=bearer(a["access_token"]),
    )
    assert r.status_code == 200  # a's code was neither burnt nor replaced by b's guess


async def test_email_change_requests_are_rate_limited_like_other_code_requests(make_harness, make_settings):
    h = await make_harness(make_settings(limit_code_mail_per_address="2/minute"))
    session = await signup(h, "limited@example.com")
    for _ in range(2):
        r = await h.client.post(
            EMAIL, json={"new_email": "target@example.com"}, headers=bearer(session["access_token"])
        )
        assert r.status_code == 202, r.text
    r = await h.client.post(
        EMAIL, json={"new_email": "target@example.com"}, headers=bearer(session["access_token"])
    )
    assert_problem(r, 429, "rate_limited")
    assert "retry-after" in r.headers


# -- the console ------------------------------------------------------------------------------
async def test_an_administrator_ends_a_users_session_and_it_is_audited(h):
    session = await signup(h, "watched@example.com")
    keep = await sign_in(h, "watched@example.com")
    account = (await h.client.get("/api/auth/me", headers=bearer(session["access_token"]))).json()["user"][
        "account"
    ]
    view, listed = await h.services.admin.user_sessions(account)
    assert len(listed) == 2 and not any(x.current for x in listed)
    target = phone_id(await my_sessions(h, session["access_token"]))
    await h.services.admin.end_user_session(account, target, "admin-token", "192.0.2.1")
    assert not await works(h, session["access_token"]) and not await refreshes(h, session)
    assert await works(h, keep["access_token"])
    async with h.services.db.read() as s:
        event = (
            await s.execute(select(AuditEvent).where(AuditEvent.action == "user.session.revoke"))
        ).scalar_one()
    assert (event.actor, event.target, event.details, event.ip) == (
        "admin-token",
        account,
        {"session": target},
        "192.0.2.1",
    )
    async with h.services.db.read() as s:
        reason = (
            await s.execute(select(AuthSession.revoked_reason).where(AuthSession.id == target))
        ).scalar_one()
    assert reason == "admin_revoked"


async def test_a_token_check_is_one_indexed_read_and_writes_the_last_use_once_a_minute(
    make_harness, make_settings
):
    # Without SQLite's inline driver every statement passes through the engine, where it is counted.
    h = await make_harness(make_settings(sqlite_inline_driver=False))
    session = await signup(h, "hotpath@example.com")
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # What the request runs. The delivery loops of both outboxes (mail, back-channel logout)
        # poll their tables meanwhile, every mail_poll_seconds: on a loaded machine the three
        # requests can take longer than that, and a poll then fell inside the count.
        words = statement.lstrip().split(None, 1)
        if (
            words
            and words[0].upper() in {"SELECT", "UPDATE", "INSERT", "DELETE"}
            and not any(outbox in statement for outbox in ("mail_outbox", "backchannel_outbox"))
        ):
            seen.append(statement)

    engine = h.services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        h.clock.advance(1)
        for _ in range(3):
            assert await works(h, session["access_token"])
        assert len(seen) == 3 and all(s.lstrip().upper().startswith("SELECT") for s in seen), seen
        seen.clear()
        h.clock.advance(61)
        assert await works(h, session["access_token"])
        kinds = [s.lstrip().split(None, 1)[0].upper() for s in seen]
        assert kinds == ["SELECT", "UPDATE"], seen
        assert "last_seen_at" in seen[1]
    finally:
        event.remove(engine, "before_cursor_execute", record)
