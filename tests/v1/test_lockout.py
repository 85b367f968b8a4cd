"""Issue 11 item 10: nobody can lock the owner out. Failures from other addresses never block
the right password from an address that signed in recently, a completed reset starts fresh
counts from any address, and the per-account count still stops distributed guessing."""

from __future__ import annotations

import pyotp
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


async def test_a_completed_reset_clears_the_wrong_code_counts_of_the_second_step(make_harness, make_settings):
    """Someone who has the password (a breach) sends wrong authenticator codes from many
    addresses until the account-wide count of wrong codes stops every new address. The owner
    resets the password (which ends that person's second steps) and, from a new device, gets
    in with the new password and the right code at once, not an hour later."""
    h = await make_harness(make_settings(limit_mfa_fail_account="3/hour"))
    await create_user(h, EMAIL)
    async with h.new_client() as home:
        r = await home.post(SESSIONS, json={"email": EMAIL, "password": PASSWORD})
        token = r.json()["access_token"]
        h.clock.advance((15 - h.clock.now().timestamp() % 30) % 30)
        r = await home.post(
            "/api/v1/users/me/mfa/totp", json={}, headers={"Authorization": f"Bearer {token}"}
        )
        secret = r.json()["secret"]
        r = await home.post(
            "/api/v1/users/me/mfa/totp/verify",
            json={"code": pyotp.TOTP(secret).at(h.clock.now())},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text

    def code() -> str:
        h.clock.advance(30)  # a step of its own each time: a code is accepted once
        return pyotp.TOTP(secret).at(h.clock.now())

    for _ in range(3):
        async with h.new_client() as attacker:
            r = await attacker.post(SESSIONS, json={"email": EMAIL, "password": PASSWORD})
            step = assert_problem(r, 401, "mfa_required")
            r = await attacker.post(
                SESSIONS + "/mfa", json={"mfa_token": step["mfa_token"], "code": "000000"}
            )
            assert_problem(r, 401, "invalid_mfa_code")
    async with h.new_client() as stranger:  # the account-wide count now holds every new address
        step = assert_problem(
            await stranger.post(SESSIONS, json={"email": EMAIL, "password": PASSWORD}), 401, "mfa_required"
        )
        r = await stranger.post(SESSIONS + "/mfa", json={"mfa_token": step["mfa_token"], "code": code()})
        assert_problem(r, 429, "rate_limited")

    async with h.new_client() as new_device:
        assert (
            await new_device.post("/api/v1/auth/password-reset", json={"email": EMAIL})
        ).status_code == 204
        r = await new_device.post(
            "/api/v1/auth/password-reset/confirm",
            json={"email": EMAIL, "token": await h.last_code(EMAIL), "new_password": "Sprout#2026new"},
        )
        assert r.status_code == 204, r.text
        step = assert_problem(
            await new_device.post(SESSIONS, json={"email": EMAIL, "password": "Sprout#2026new"}),
            401,
            "mfa_required",
        )
        r = await new_device.post(SESSIONS + "/mfa", json={"mfa_token": step["mfa_token"], "code": code()})
        assert r.status_code == 200, r.text
    # The count is still kept: wrong codes after the reset add up again.
    for _ in range(3):
        async with h.new_client() as guesser:
            step = assert_problem(
                await guesser.post(SESSIONS, json={"email": EMAIL, "password": "Sprout#2026new"}),
                401,
                "mfa_required",
            )
            r = await guesser.post(SESSIONS + "/mfa", json={"mfa_token": step["mfa_token"], "code": "000000"})
            assert_problem(r, 401, "invalid_mfa_code")
    async with h.new_client() as stranger:
        step = assert_problem(
            await stranger.post(SESSIONS, json={"email": EMAIL, "password": "Sprout#2026new"}),
            401,
            "mfa_required",
        )
        r = await stranger.post(SESSIONS + "/mfa", json={"mfa_token": step["mfa_token"], "code": code()})
        assert_problem(r, 429, "rate_limited")


async def test_repeated_resets_do_not_renew_the_wrong_code_budget(make_harness, make_settings):
    """Someone who reads the owner's mail (the reset code) but has no second factor: were each
    completed reset to clear the account-wide count of wrong codes, reset -> guess until held
    -> reset would give a fresh budget of authenticator guesses every reset mail (ten an hour),
    not one per hour. One reset per hour clears it (the owner's case); a second within that
    hour leaves the count as it is."""
    h = await make_harness(
        make_settings(limit_mfa_fail_account="3/hour", limit_code_mail_per_address="10/hour")
    )
    await create_user(h, EMAIL)
    async with h.new_client() as home:
        r = await home.post(SESSIONS, json={"email": EMAIL, "password": PASSWORD})
        token = r.json()["access_token"]
        r = await home.post(
            "/api/v1/users/me/mfa/totp", json={}, headers={"Authorization": f"Bearer {token}"}
        )
        secret = r.json()["secret"]
        r = await home.post(
            "/api/v1/users/me/mfa/totp/verify",
            json={"code": pyotp.TOTP(secret).at(h.clock.now())},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text

    async def reset(password: str) -> None:
        async with h.new_client() as reader:
            assert (
                await reader.post("/api/v1/auth/password-reset", json={"email": EMAIL})
            ).status_code == 204
            r = await reader.post(
                "/api/v1/auth/password-reset/confirm",
                json={"email": EMAIL, "token": await h.last_code(EMAIL), "new_password": password},
            )
            assert r.status_code == 204, r.text

    async def guess(password: str) -> int:
        async with h.new_client() as guesser:  # a new address each time
            step = assert_problem(
                await guesser.post(SESSIONS, json={"email": EMAIL, "password": password}), 401, "mfa_required"
            )
            r = await guesser.post(SESSIONS + "/mfa", json={"mfa_token": step["mfa_token"], "code": "000000"})
            return r.status_code

    await reset("Sprout#2026one")
    assert [await guess("Sprout#2026one") for _ in range(4)] == [401, 401, 401, 429]
    await reset("Sprout#2026two")
    assert await guess("Sprout#2026two") == 429  # still held: no fresh guesses
