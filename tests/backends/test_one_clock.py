"""One injectable clock for every module: with the test clock moved, the tokens the signer
issues and checks, and the times the outbox and its worker write, all follow it."""

from __future__ import annotations

import asyncio
import time

import jwt

from sproutgate.storage.models import OutboxMessage
from sproutgate.storage.repositories import OutboxRepository
from support.harness import bearer, signup

HOURS = 5 * 3600


async def test_access_tokens_carry_and_obey_the_moved_clock(harness):
    harness.clock.advance(HOURS)
    session = await signup(harness, "clockwork@example.com")
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    assert abs(claims["iat"] - (time.time() + HOURS)) < 60
    assert claims["exp"] - claims["iat"] == harness.services.settings.access_token_ttl_seconds
    assert (
        await harness.client.get("/api/v1/users/me", headers=bearer(session["access_token"]))
    ).status_code == 200
    harness.clock.advance(harness.services.settings.access_token_ttl_seconds)
    r = await harness.client.get("/api/v1/users/me", headers=bearer(session["access_token"]))
    assert r.status_code == 401  # expired by the clock every other rule reads


async def _failed_once(harness, to: str) -> OutboxMessage:
    for _ in range(300):
        async with harness.services.db.read() as s:
            rows = [r for r in await OutboxRepository(s).latest(10) if r.to_addr == to]
        if rows and rows[0].attempts >= 1 and rows[0].status == "pending":
            return rows[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no failed delivery to {to}: {rows}")


async def test_queued_mail_and_its_next_attempt_follow_the_moved_clock(make_harness, make_settings):
    # Nothing listens on port 9: every delivery fails, and is retried 30 s later.
    h = await make_harness(
        make_settings(
            smtp_host="127.0.0.1",
            smtp_port=9,
            smtp_security="none",
            smtp_timeout_seconds=2,
            mail_retry_base_seconds=30,
        )
    )
    h.clock.advance(HOURS)
    r = await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "tick@example.com", "password": "Sprout#2026pw", "username": "tick"},
    )
    assert r.status_code == 202, r.text
    row = await _failed_once(h, "tick@example.com")
    moved_now = time.time() + HOURS
    assert abs(row.created_at.timestamp() - moved_now) < 60
    assert 20 < row.next_attempt_at.timestamp() - moved_now < 40
