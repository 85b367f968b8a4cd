"""Issue 11 item 10: nobody can lock the owner out. Failures from other addresses never block
the right password from an address that signed in recently, a completed reset starts fresh
counts from any address, and the per-account count still stops distributed guessing."""

from __future__ import annotations

import pytest
from v1_support import PASSWORD, assert_problem, create_user

from sproutgate.domain.housekeeping.service import purge_once

pytestmark = pytest.mark.both_engines

SESSIONS = "/api/v1/auth/sessions"
EMAIL = "owner@example.com"


async def _attack(h, attempts: int = 200, addresses: int = 20) -> list[int]:
    statuses = []
    for i in range(addresses):
        async with h.new_client() as c:
            for _ in range(attempts // addresses):
                r = await c.post(SESSIONS, json={"email": EMAIL, "password": "Wrong#Guess1"})
                statuses.append(r.status_code)
    return statuses


async def test_distributed_failures_do_not_lock_out_a_recent_client_address(harness):
    await create_user(harness, EMAIL)
    async with harness.new_client() as home:
        assert (await home.post(SESSIONS, json={"email": EMAIL, "password": PASSWORD})).status_code == 200
        statuses = await _attack(harness)
        assert statuses.count(401) == 100 and statuses.count(429) == 100  # NIST: 100 consecutive
        # A new address is stopped, even with the right password: distributed guessing ends here.
        async with harness.new_client() as stranger:
            r = await stranger.post(SESSIONS, json={"email": EMAIL, "password": PASSWORD})
            assert_problem(r, 429, "rate_limited")
        # The owner's address, which signed in before, still gets in, on both faces.
        r = await home.post(SESSIONS, json={"email": EMAIL, "password": PASSWORD})
        assert r.status_code == 200, r.text
        r = await home.post("/api/auth/login", json={"account": EMAIL, "password": PASSWORD})
        assert r.status_code == 200, r.text


async def test_the_recent_client_rule_expires_after_thirty_days(harness):
    await create_user(harness, EMAIL)
    async with harness.new_client() as home:
        assert (await home.post(SESSIONS, json={"email": EMAIL, "password": PASSWORD})).status_code == 200
        harness.clock.advance(31 * 24 * 3600)
        counts = await purge_once(harness.services.db, harness.clock)
        assert counts["sign_in_clients"] == 1  # forgotten after 30 days
        await _attack(harness)
        r = await home.post(SESSIONS, json={"email": EMAIL, "password": PASSWORD})
        assert_problem(r, 429, "rate_limited")


async def test_a_completed_reset_lets_the_new_password_in_at_once_from_any_address(harness):
    await create_user(harness, EMAIL)
    await _attack(harness)
    async with harness.new_client() as c:
        assert (await c.post("/api/v1/auth/password-reset", json={"email": EMAIL})).status_code == 204
        code = await harness.last_code(EMAIL)
        r = await c.post(
            "/api/v1/auth/password-reset/confirm",
            json={"email": EMAIL, "token": code, "new_password": "Sprout#2026new"},
        )
        assert r.status_code == 204, r.text
    async with harness.new_client() as anywhere:
        r = await anywhere.post(SESSIONS, json={"email": EMAIL, "password": "Sprout#2026new"})
        assert r.status_code == 200, r.text
