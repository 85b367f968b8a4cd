"""A sign-in's second step with a code (authenticator or recovery code) is counted in
``sproutgate_sign_ins_total`` like a passkey's (domain.metrics ``SignInOutcome``), on every face
that takes one (runtime API, SproutGate API, pages): the password step counts
``second_factor_required`` once, the code step ``success`` once (or ``wrong_code``,
``disabled``, ``rate_limited``); bad input and a dead mfa_token count nothing. Read from
/metrics with prometheus-client's parser, in-process on both engines."""

from __future__ import annotations

import pytest
from test_v1_mfa import SESSIONS_MFA, enrolled, mid_step, next_code, password_step
from v1_support import PASSWORD, assert_problem

from support.harness import AppHarness
from support.sign_in_counts import moved, sign_ins

pytestmark = pytest.mark.both_engines

ADMIN = {"X-Admin-Token": "mfa-metrics-admin-token"}


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(make_settings(admin_token=ADMIN["X-Admin-Token"]))


async def test_a_code_second_step_counts_its_outcome_once_on_the_runtime_api(h):
    _, secret, recovery = await enrolled(h, "counted-code@example.com")
    before = await sign_ins(h)
    assert before["wrong_code"] == 0  # created at zero, before the first refusal

    token = (await password_step(h, "counted-code@example.com"))["mfa_token"]
    assert moved(before, await sign_ins(h)) == {"second_factor_required": 1}

    before = await sign_ins(h)
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": "000000"})
    assert_problem(r, 401, "invalid_mfa_code")
    # Bad input is not a sign-in step, nor is a token that does not exist.
    assert_problem(await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": "12ab"}), 422)
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": "no-such-token", "code": "123456"})
    assert_problem(r, 401, "invalid_mfa_token")
    assert moved(before, await sign_ins(h)) == {"wrong_code": 1}

    before = await sign_ins(h)
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": next_code(h, secret)})
    assert r.status_code == 200, r.text
    # One completed sign-in, one success: the password step is not counted again.
    assert moved(before, await sign_ins(h)) == {"success": 1}

    # The token is used up: presenting it again is no sign-in.
    before = await sign_ins(h)
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": next_code(h, secret)})
    assert_problem(r, 401, "invalid_mfa_token")
    assert moved(before, await sign_ins(h)) == {}

    # A recovery code on the SproutGate face: the same outcomes.
    r = await h.client.post("/api/auth/login", json={"account": "countedcode", "password": PASSWORD})
    gate_token = assert_problem(r, 401, "mfa_required")["mfaToken"]
    before = await sign_ins(h)
    r = await h.client.post("/api/auth/login/mfa", json={"mfaToken": gate_token, "code": recovery[0]})
    assert r.status_code == 200, r.text
    assert moved(before, await sign_ins(h)) == {"success": 1}


async def test_a_code_second_step_on_the_pages_is_counted(h):
    _, secret, _ = await enrolled(h, "counted-page@example.com")
    browser = h.new_client(**{"Accept-Language": "en"})
    page = await browser.get("/login")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    before = await sign_ins(h)
    r = await browser.post(
        "/login", data={"csrf_token": csrf, "identifier": "countedpage", "password": PASSWORD}
    )
    assert r.status_code == 200 and 'action="/login/mfa"' in r.text, r.text
    mfa_token = r.text.split('name="mfa_token" value="')[1].split('"')[0]
    r = await browser.post("/login/mfa", data={"csrf_token": csrf, "mfa_token": mfa_token, "code": "000000"})
    assert r.status_code == 401
    r = await browser.post(
        "/login/mfa", data={"csrf_token": csrf, "mfa_token": mfa_token, "code": next_code(h, secret)}
    )
    assert r.status_code == 303, r.text
    assert moved(before, await sign_ins(h)) == {"second_factor_required": 1, "wrong_code": 1, "success": 1}


async def test_the_limits_are_counted_at_the_second_step_and_a_disabled_account_ends_it(
    make_harness, make_settings
):
    h = await make_harness(
        make_settings(admin_token=ADMIN["X-Admin-Token"], limit_mfa_fail_account_ip="1/15 minutes")
    )
    _, secret, _ = await enrolled(h, "counted-limits@example.com")
    token = (await password_step(h, "counted-limits@example.com"))["mfa_token"]
    before = await sign_ins(h)
    assert_problem(await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": "000000"}), 401)
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": next_code(h, secret)})
    assert_problem(r, 429)
    assert moved(before, await sign_ins(h)) == {"wrong_code": 1, "rate_limited": 1}

    other = h.new_client()
    mid_step(h)
    _, secret, _ = await enrolled(h, "counted-disabled@example.com")
    token = (await password_step(h, "counted-disabled@example.com", other))["mfa_token"]
    r = await h.client.put("/api/admin/users/counteddisabled", json={"disabled": True}, headers=ADMIN)
    assert r.status_code == 200, r.text
    before = await sign_ins(h)
    r = await other.post(SESSIONS_MFA, json={"mfa_token": token, "code": next_code(h, secret)})
    # Disabling ended the waiting second step (its mfa_token): no sign-in step is left to count.
    assert_problem(r, 401, "invalid_mfa_token")
    assert moved(before, await sign_ins(h)) == {}
