"""Passkey sign-ins counted in ``sproutgate_sign_ins_total`` (domain.metrics, ``Metrics.sign_in``)
as /metrics shows them to a local Prometheus: a passwordless sign-in and a passkey second step
count ``success``, a refused assertion ``passkey_refused``, a disabled account ``disabled``; the
password step before a passkey stays ``second_factor_required``."""

from __future__ import annotations

import pytest
from test_passkeys_http import (
    ADMIN,
    ORIGIN,
    enrol_totp,
    password_step,
    post_json,
    problem,
    sign_in_options,
    sign_in_with,
    user_with_passkey,
)

from support.sign_in_counts import moved, sign_ins
from support.soft_authenticator import SoftAuthenticator

pytestmark = pytest.mark.both_engines


@pytest.fixture
async def h(make_harness, make_settings):
    return await make_harness(make_settings(admin_token=ADMIN["X-Admin-Token"]))


async def test_passwordless_passkey_sign_ins_are_counted_by_outcome(h):
    user, device, _ = await user_with_passkey(h)
    before = await sign_ins(h)
    assert "passkey_refused" in before  # created at zero, before the first refusal
    client = h.new_client()
    r = await sign_in_with(client, device.get(await sign_in_options(client)))
    assert r.status_code == 200, r.text
    assert moved(before, await sign_ins(h)) == {"success": 1}

    # Refused: no user verification, an authenticator registered nowhere, a stale challenge.
    before = await sign_ins(h)
    other = h.new_client()
    problem(
        await sign_in_with(other, device.get(await sign_in_options(other), uv=False)), 401, "passkey_rejected"
    )
    stranger = SoftAuthenticator(ORIGIN)
    stranger.create({"rp": {"id": "testserver"}, "user": {"id": "AAAA"}, "challenge": "AAAA"})
    r = await sign_in_with(other, stranger.get(await sign_in_options(other)))
    problem(r, 401, "passkey_not_recognized")
    assert (await sign_in_with(other, {})).status_code == 401
    # A body that is not a credential at all is bad input, not a sign-in: not counted.
    problem(await post_json(other, "/login/passkey/verify", {"credential": "nope"}), 422, "invalid_input")
    assert moved(before, await sign_ins(h)) == {"passkey_refused": 3}

    before = await sign_ins(h)
    r = await h.client.put(f"/api/admin/users/{user['account']}", json={"disabled": True}, headers=ADMIN)
    assert r.status_code == 200, r.text
    problem(await sign_in_with(other, device.get(await sign_in_options(other))), 403, "account_disabled")
    assert moved(before, await sign_ins(h)) == {"disabled": 1}
    for c in (client, other):
        await c.aclose()


async def test_a_passkey_second_step_is_counted_after_its_password_step(h):
    user, device, _ = await user_with_passkey(h)
    _, intruder, _ = await user_with_passkey(h)
    await enrol_totp(h, user)
    before = await sign_ins(h)
    client, mfa_token, _ = await password_step(h, user)
    assert moved(before, await sign_ins(h)) == {"second_factor_required": 1}

    # Another account's passkey answering this step: refused and counted.
    before = await sign_ins(h)
    options = (await post_json(client, "/login/mfa/passkey/options", {"mfa_token": mfa_token})).json()
    bad = intruder.get({**options, "rpId": "testserver"})
    r = await post_json(client, "/login/mfa/passkey/verify", {"mfa_token": mfa_token, "credential": bad})
    problem(r, 401, "passkey_not_recognized")
    assert moved(before, await sign_ins(h)) == {"passkey_refused": 1}

    before = await sign_ins(h)
    options = (await post_json(client, "/login/mfa/passkey/options", {"mfa_token": mfa_token})).json()
    r = await post_json(
        client, "/login/mfa/passkey/verify", {"mfa_token": mfa_token, "credential": device.get(options)}
    )
    assert r.status_code == 200, r.text
    assert moved(before, await sign_ins(h)) == {"success": 1}

    # The used-up token is no sign-in: nothing more is counted.
    before = await sign_ins(h)
    r = await post_json(
        client,
        "/login/mfa/passkey/verify",
        {"mfa_token": mfa_token, "credential": device.get(options)},
        "/account",
    )
    problem(r, 401, "invalid_mfa_token")
    assert moved(before, await sign_ins(h)) == {}
    await client.aclose()
