"""Concurrency on SQLite, session lifetime, and the periodic purge of dead rows."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from v1_support import assert_problem, create_user, request_code, unverified_claims

from sproutgate.domain.housekeeping.service import purge_once
from sproutgate.storage.models import AuthSession, PendingSignup, VerificationCode
from support.harness import bearer, signup

REFRESH = "/api/v1/auth/sessions/refresh"


async def test_two_tabs_refreshing_at_once_both_keep_working(harness):
    session = await signup(harness, "tabs@example.com")
    answers = await asyncio.gather(
        *(harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]}) for _ in range(2))
    )
    assert [a.status_code for a in answers] == [200, 200]
    sids = {unverified_claims(a.json()["access_token"])["sid"] for a in answers}
    assert sids == {unverified_claims(session["access_token"])["sid"]}
    for a in answers:
        me = await harness.client.get("/api/v1/users/me", headers=bearer(a.json()["access_token"]))
        assert me.status_code == 200


async def test_concurrent_requests_do_not_fail_on_the_sqlite_lock(make_harness, make_settings):
    h = await make_harness(make_settings(rate_limits_enabled=False))
    emails = [f"crowd{i}@example.com" for i in range(12)]
    for email in emails:
        await create_user(h, email)

    async def sign_in_and_refresh(email):
        async with h.new_client() as c:
            r = await c.post("/api/v1/auth/sessions", json={"email": email, "password": "Sprout#2026pw"})
            assert r.status_code == 200, r.text
            r = await c.post(REFRESH, json={"refresh_token": r.json()["refresh_token"]})
            assert r.status_code == 200, r.text
            r = await c.patch(
                "/api/v1/users/me", json={"bio": email}, headers=bearer(r.json()["access_token"])
            )
            assert r.status_code == 200, r.text

    signups = [
        h.client.post(
            "/api/v1/auth/verifications",
            json={"email": f"new{i}@example.com", "password": "Sprout#2026pw", "username": "crowd"},
        )
        for i in range(8)
    ]
    results = await asyncio.gather(*(sign_in_and_refresh(e) for e in emails), *signups)
    assert all(r is None or r.status_code == 202 for r in results)


async def test_refresh_fails_once_the_session_has_expired(harness):
    session = await signup(harness, "old@example.com")
    harness.clock.advance(31 * 24 * 3600)
    r = await harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")


async def _count(h, model):
    async with h.services.db.read() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar_one()


async def test_purge_removes_expired_codes_abandoned_signups_and_dead_sessions(harness):
    await request_code(harness, "abandoned@example.com")
    session = await signup(harness, "leaver@example.com")
    await harness.client.request(
        "DELETE", "/api/v1/auth/sessions", json={"refresh_token": session["refresh_token"]}
    )
    assert await _count(harness, PendingSignup) == 1
    assert await _count(harness, VerificationCode) == 1
    assert await _count(harness, AuthSession) == 1

    counts = await purge_once(harness.services.db, harness.clock)
    assert (counts["codes"], counts["pending_signups"], counts["sessions"]) == (
        0,
        0,
        0,
    )  # nothing is dead yet

    harness.clock.advance(8 * 24 * 3600)
    counts = await purge_once(harness.services.db, harness.clock)
    assert counts["codes"] == 1 and counts["pending_signups"] == 1 and counts["sessions"] == 1
    assert await _count(harness, PendingSignup) == 0
    assert await _count(harness, VerificationCode) == 0
    assert await _count(harness, AuthSession) == 0
