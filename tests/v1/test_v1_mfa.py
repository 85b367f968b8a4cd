"""Second factors on the runtime API (in-process, both engines): authenticator enrolment, sign-in
with a code or a recovery code, replay and drift, the mfa_token's single use, expiry and attempt
cap, recovery-code sets, turning the factor off, bad inputs, limits, and what is stored.

Codes are computed with pyotp at the app's clock (an OffsetClock), which each test first sets to
the middle of a 30-second step, so no step boundary falls between computing a code and checking it."""

from __future__ import annotations

import os
import re
import stat
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select
from v1_support import PASSWORD, assert_problem, create_user, login

from sproutgate.domain.mfa.rules import RECOVERY_ALPHABET
from sproutgate.infra.sealing import SecretSealer
from sproutgate.storage.models import MfaChallenge, RecoveryCode, TotpFactor
from support.harness import bearer

pytestmark = pytest.mark.both_engines

SESSIONS = "/api/v1/auth/sessions"
SESSIONS_MFA = "/api/v1/auth/sessions/mfa"
MFA = "/api/v1/users/me/mfa"
TOTP = "/api/v1/users/me/mfa/totp"
VERIFY = "/api/v1/users/me/mfa/totp/verify"
RECOVERY = "/api/v1/users/me/mfa/recovery-codes"
ME = "/api/v1/users/me"
SESSION_KEYS = {"access_token", "refresh_token", "expires_in", "token_type", "user"}
RECOVERY_RE = re.compile(
    rf"^[{RECOVERY_ALPHABET}]{{4}}-[{RECOVERY_ALPHABET}]{{4}}-[{RECOVERY_ALPHABET}]{{4}}$"
)


def mid_step(h) -> None:
    """Move the app's clock to 15 s into a 30-second step."""
    h.clock.advance((15 - h.clock.now().timestamp() % 30) % 30)  # forward only: tokens follow the clock


def code_at(h, secret: str, offset_seconds: float = 0) -> str:
    return pyotp.TOTP(secret).at(h.clock.now() + timedelta(seconds=offset_seconds))


def next_code(h, secret: str) -> str:
    """The code of the next step (the clock moves on 30 s), so no step is used twice."""
    h.clock.advance(30)
    return code_at(h, secret)


async def enrolled(h, email: str) -> tuple[dict, str, list[str]]:
    """A user with an authenticator on: (its sign-up session, the secret, the recovery codes)."""
    await create_user(h, email)
    session = await login(h, email)
    mid_step(h)
    r = await h.client.post(TOTP, json={}, headers=bearer(session["access_token"]))
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = await h.client.post(
        VERIFY, json={"code": code_at(h, secret)}, headers=bearer(session["access_token"])
    )
    assert r.status_code == 200, r.text
    return session, secret, r.json()["recovery_codes"]


async def password_step(h, email: str, client=None) -> dict:
    r = await (client or h.client).post(SESSIONS, json={"email": email, "password": PASSWORD})
    body = assert_problem(r, 401, "mfa_required")
    return body


async def mail_kinds(h, email: str) -> list[str]:
    return [m["kind"] for m in await h.mailbox(email)]


# -- enrolment --------------------------------------------------------------------------------
async def test_enrolment_shows_secret_uri_and_qr_then_the_code_turns_it_on(harness):
    h = harness
    user = await create_user(h, "enrol@example.com", account="enrolme")
    session = await login(h, "enrol@example.com")
    auth = bearer(session["access_token"])
    r = await h.client.get(MFA, headers=auth)
    assert r.status_code == 200 and r.json() == {"totp": False, "passkeys": [], "recovery_codes_left": 0}

    mid_step(h)
    r = await h.client.post(TOTP, json={}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
    uri = urlsplit(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc, uri.path) == ("otpauth", "totp", "/SproutGate:enrolme")
    query = parse_qs(uri.query)
    assert query["secret"] == [body["secret"]] and query["issuer"] == ["SproutGate"]
    assert len(body["secret"]) == 32 and re.fullmatch(r"[A-Z2-7]+", body["secret"])
    assert body["qr_svg"].startswith("<svg") and body["qr_svg"].rstrip().endswith("</svg>")
    # Pending: not on yet, and signing in still takes the password alone.
    assert (await h.client.get(MFA, headers=auth)).json()["totp"] is False
    await login(h, "enrol@example.com")

    r = await h.client.post(VERIFY, json={"code": code_at(h, body["secret"])}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(RECOVERY_RE.match(c) for c in codes), codes
    r = await h.client.get(MFA, headers=auth)
    assert r.json() == {"totp": True, "passkeys": [], "recovery_codes_left": 10}
    assert "mfa_enabled" in await mail_kinds(h, user.email)
    await password_step(h, "enrol@example.com")


async def test_enrolment_needs_the_password_outside_the_recent_sign_in_window(harness):
    h = harness
    await create_user(h, "reauth@example.com")
    auth = bearer((await login(h, "reauth@example.com"))["access_token"])
    h.clock.advance(h.services.settings.recent_auth_seconds + 1)
    assert_problem(await h.client.post(TOTP, json={}, headers=auth), 401, "reauthentication_required")
    r = await h.client.post(TOTP, json={"password": "Wrong#Pass2026"}, headers=auth)
    assert_problem(r, 401, "wrong_password")
    r = await h.client.post(TOTP, json={"password": PASSWORD}, headers=auth)
    assert r.status_code == 200, r.text
    # without a token at all: 401 as everywhere
    assert_problem(await h.client.post(TOTP, json={}), 401, "not_authenticated")


async def test_wrong_enrolment_code_is_refused_and_a_second_enrolment_conflicts(harness):
    h = harness
    await create_user(h, "conflict@example.com")
    auth = bearer((await login(h, "conflict@example.com"))["access_token"])
    assert_problem(
        await h.client.post(VERIFY, json={"code": "123456"}, headers=auth), 409, "no_pending_enrolment"
    )
    assert_problem(
        await h.client.request("DELETE", TOTP, json={"code": "123456"}, headers=auth), 409, "mfa_not_enabled"
    )
    assert_problem(
        await h.client.post(RECOVERY, json={"code": "123456"}, headers=auth), 409, "mfa_not_enabled"
    )
    mid_step(h)
    secret = (await h.client.post(TOTP, json={}, headers=auth)).json()["secret"]
    wrong = code_at(h, secret, 120)
    assert_problem(await h.client.post(VERIFY, json={"code": wrong}, headers=auth), 401, "invalid_mfa_code")
    assert (await h.client.post(VERIFY, json={"code": code_at(h, secret)}, headers=auth)).status_code == 200
    assert_problem(await h.client.post(TOTP, json={}, headers=auth), 409, "mfa_already_enabled")
    # an enrolment left unconfirmed expires
    await create_user(h, "late@example.com")
    auth = bearer((await login(h, "late@example.com"))["access_token"])
    secret = (await h.client.post(TOTP, json={}, headers=auth)).json()["secret"]
    h.clock.advance(16 * 60)
    r = await h.client.post(VERIFY, json={"code": code_at(h, secret)}, headers=auth)
    assert_problem(r, 409, "no_pending_enrolment")


# -- sign-in ----------------------------------------------------------------------------------
async def test_sign_in_asks_for_a_code_and_answers_exactly_the_session_body(harness):
    h = harness
    _, secret, _ = await enrolled(h, "signin-mfa@example.com")
    body = await password_step(h, "signin-mfa@example.com")
    assert body["factors"] == ["totp", "recovery_code"]
    assert isinstance(body["mfa_token"], str) and len(body["mfa_token"]) >= 40
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": body["mfa_token"], "code": next_code(h, secret)})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    session = r.json()
    assert set(session) == SESSION_KEYS and session["user"]["email"] == "signin-mfa@example.com"
    assert (session["expires_in"], session["token_type"]) == (3600, "bearer")
    assert (await h.client.get(ME, headers=bearer(session["access_token"]))).status_code == 200
    r = await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": session["refresh_token"]})
    assert r.status_code == 200
    # the mfa_token is single use
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": body["mfa_token"], "code": next_code(h, secret)})
    assert_problem(r, 401, "invalid_mfa_token")
    # a wrong password still says nothing about factors
    r = await h.client.post(SESSIONS, json={"email": "signin-mfa@example.com", "password": "Wrong#Pass2026"})
    body = assert_problem(r, 401, "invalid_credentials")
    assert "mfa_token" not in body


async def test_a_used_step_is_refused_and_drift_is_one_step_either_way(harness):
    h = harness
    _, secret, _ = await enrolled(h, "drift@example.com")
    h.clock.advance(300)  # well past the enrolment's step

    async def attempt(code: str):
        token = (await password_step(h, "drift@example.com"))["mfa_token"]
        return await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": code})

    assert (await attempt(code_at(h, secret, -30))).status_code == 200  # one step behind
    replay = await attempt(code_at(h, secret, -30))
    assert_problem(replay, 401, "invalid_mfa_code")
    assert (await attempt(code_at(h, secret, +30))).status_code == 200  # one step ahead
    # the current step is older than the last one used: refused too
    assert_problem(await attempt(code_at(h, secret)), 401, "invalid_mfa_code")
    h.clock.advance(120)  # four steps on: every step around now is fresh
    assert_problem(await attempt(code_at(h, secret, -60)), 401, "invalid_mfa_code")  # two behind
    assert_problem(await attempt(code_at(h, secret, +60)), 401, "invalid_mfa_code")  # two ahead
    assert (await attempt(code_at(h, secret))).status_code == 200


async def test_the_mfa_token_expires(harness):
    h = harness
    _, secret, _ = await enrolled(h, "expiry@example.com")
    token = (await password_step(h, "expiry@example.com"))["mfa_token"]
    h.clock.advance(h.services.settings.mfa_token_ttl_seconds + 1)
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": code_at(h, secret)})
    assert_problem(r, 401, "invalid_mfa_token")
    # a fresh one inside its lifetime works
    token = (await password_step(h, "expiry@example.com"))["mfa_token"]
    h.clock.advance(h.services.settings.mfa_token_ttl_seconds - 30)
    assert (
        await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": code_at(h, secret)})
    ).status_code == 200


async def test_five_wrong_codes_kill_the_mfa_token(harness):
    h = harness
    _, secret, _ = await enrolled(h, "five@example.com")
    token = (await password_step(h, "five@example.com"))["mfa_token"]
    h.clock.advance(30)
    wrong = code_at(h, secret, 600)
    for _ in range(5):
        r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": wrong})
        assert_problem(r, 401, "invalid_mfa_code")
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": code_at(h, secret)})
    assert_problem(r, 401, "invalid_mfa_token")
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": "no-such-token", "code": code_at(h, secret)})
    assert_problem(r, 401, "invalid_mfa_token")


async def test_wrong_codes_are_rate_limited_per_account_and_address(make_harness, make_settings):
    h = await make_harness(make_settings(limit_mfa_fail_account_ip="3/15 minutes"))
    _, secret, _ = await enrolled(h, "limited@example.com")
    h.clock.advance(30)
    wrong = code_at(h, secret, 600)
    token = (await password_step(h, "limited@example.com"))["mfa_token"]
    for _ in range(3):
        assert_problem(await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": wrong}), 401)
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": code_at(h, secret)})
    assert_problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) > 0
    # another address is not held back by this one's failures
    other = h.new_client()
    token = (await password_step(h, "limited@example.com", other))["mfa_token"]
    assert (
        await other.post(SESSIONS_MFA, json={"mfa_token": token, "code": code_at(h, secret)})
    ).status_code == 200
    await other.aclose()


# -- recovery codes ---------------------------------------------------------------------------
async def test_a_recovery_code_signs_in_once_and_its_use_is_mailed(harness):
    h = harness
    session, _, codes = await enrolled(h, "recover@example.com")
    token = (await password_step(h, "recover@example.com"))["mfa_token"]
    typed = codes[0].replace("-", " ").upper()  # as a person might type it
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": typed})
    assert r.status_code == 200, r.text
    assert set(r.json()) == SESSION_KEYS
    mails = [m for m in await h.mailbox("recover@example.com") if m["kind"] == "mfa_recovery_used"]
    assert len(mails) == 1 and "9" in mails[0]["text"] and codes[0] not in mails[0]["text"]
    token = (await password_step(h, "recover@example.com"))["mfa_token"]
    assert_problem(
        await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": codes[0]}),
        401,
        "invalid_mfa_code",
    )
    r = await h.client.get(MFA, headers=bearer(session["access_token"]))
    assert r.json()["recovery_codes_left"] == 9


async def test_two_or_fewer_codes_left_is_said_in_the_mail(harness):
    h = harness
    _, _, codes = await enrolled(h, "few@example.com")
    for code in codes[:8]:
        token = (await password_step(h, "few@example.com"))["mfa_token"]
        assert (await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": code})).status_code == 200
    kinds = await mail_kinds(h, "few@example.com")
    assert kinds.count("mfa_recovery_used") == 7 and kinds.count("mfa_recovery_low") == 1
    low = next(m for m in await h.mailbox("few@example.com") if m["kind"] == "mfa_recovery_low")
    assert "2" in low["subject"]


async def test_regenerating_recovery_codes_kills_the_old_set(harness):
    h = harness
    session, secret, old = await enrolled(h, "regen@example.com")
    auth = bearer(session["access_token"])
    r = await h.client.post(RECOVERY, json={"code": next_code(h, secret)}, headers=auth)
    assert r.status_code == 200, r.text
    new = r.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert "mfa_recovery_regenerated" in await mail_kinds(h, "regen@example.com")
    token = (await password_step(h, "regen@example.com"))["mfa_token"]
    assert_problem(
        await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": old[1]}), 401, "invalid_mfa_code"
    )
    assert (await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": new[1]})).status_code == 200
    # a wrong code regenerates nothing
    r = await h.client.post(RECOVERY, json={"code": old[2]}, headers=auth)
    assert_problem(r, 401, "invalid_mfa_code")
    assert (await h.client.get(MFA, headers=auth)).json()["recovery_codes_left"] == 9


# -- turning it off ---------------------------------------------------------------------------
async def test_turning_the_app_off_ends_the_other_sessions_and_mails(harness):
    h = harness
    session, secret, codes = await enrolled(h, "off@example.com")
    token = (await password_step(h, "off@example.com"))["mfa_token"]
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": next_code(h, secret)})
    other = r.json()
    auth = bearer(session["access_token"])
    r = await h.client.request("DELETE", TOTP, json={"code": code_at(h, secret, 600)}, headers=auth)
    assert_problem(r, 401, "invalid_mfa_code")
    r = await h.client.request("DELETE", TOTP, json={"code": codes[3]}, headers=auth)
    assert r.status_code == 204, r.text
    assert (await h.client.get(ME, headers=auth)).status_code == 200  # this session stays
    assert_problem(await h.client.get(ME, headers=bearer(other["access_token"])), 401)
    assert (await h.client.get(MFA, headers=auth)).json() == {
        "totp": False,
        "passkeys": [],
        "recovery_codes_left": 0,
    }
    assert "mfa_disabled" in await mail_kinds(h, "off@example.com")
    # the password alone signs in again
    assert set(await login(h, "off@example.com")) == SESSION_KEYS


# -- bad inputs -------------------------------------------------------------------------------
async def test_malformed_codes_and_tokens_are_422(harness):
    h = harness
    session, secret, _ = await enrolled(h, "malformed@example.com")
    auth = bearer(session["access_token"])
    token = (await password_step(h, "malformed@example.com"))["mfa_token"]
    for bad in ("12345", "1234567", "abcdef", "k7qm-3xth", "0000-0000-0000", "", "１２３４５６"):
        r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": bad})
        body = assert_problem(r, 422, "invalid_input")
        assert [e["field"] for e in body["errors"]] == ["code"], body
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": "abcdef"})
    assert r.json()["errors"][0]["code"] == "invalid_mfa_code_format"
    r = await h.client.post(SESSIONS_MFA, json={"code": "123456"})
    assert_problem(r, 422) and r.json()["errors"][0]["field"] == "mfa_token"
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": "x" * 257, "code": "123456"})
    assert_problem(r, 422)
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": 123456})
    assert_problem(r, 422)
    r = await h.client.post(VERIFY, json={"code": "k7qm-3xth-9wpa"}, headers=auth)
    assert_problem(r, 422) and r.json()["errors"][0]["code"] == "invalid_code_format"
    r = await h.client.request("DELETE", TOTP, json={"code": "nope"}, headers=auth)
    assert_problem(r, 422)
    r = await h.client.post(RECOVERY, json={}, headers=auth)
    assert_problem(r, 422)
    r = await h.client.post(TOTP, json={"password": ""}, headers=auth)
    assert_problem(r, 422)
    # none of that cost the token an attempt (five wrong codes would have killed it)
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": next_code(h, secret)})
    assert r.status_code == 200, r.text


# -- at rest ----------------------------------------------------------------------------------
async def test_secrets_codes_and_tokens_are_not_stored_in_clear(harness):
    h = harness
    _, secret, codes = await enrolled(h, "atrest@example.com")
    token = (await password_step(h, "atrest@example.com"))["mfa_token"]
    async with h.services.db.read() as s:
        factor = (await s.execute(select(TotpFactor))).scalars().one()
        hashes = [r.code_hash for r in (await s.execute(select(RecoveryCode))).scalars()]
        challenge = (await s.execute(select(MfaChallenge))).scalars().one()
    assert factor.secret_sealed.startswith("enc1:") and secret not in factor.secret_sealed
    assert len(hashes) == 10 and not any(c.replace("-", "") in "".join(hashes) for c in codes)
    assert challenge.token_hash != token and token not in challenge.token_hash
    key = h.services.settings.data_dir / "keys" / "mfa.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


async def test_a_secret_that_does_not_open_is_a_503_not_a_500(harness):
    h = harness
    _, secret, _ = await enrolled(h, "lostkey@example.com")
    other = SecretSealer([bytes(32)])  # as if data/keys/mfa.key had been replaced
    async with h.services.db.write() as s:
        factor = (await s.execute(select(TotpFactor))).scalars().one()
        factor.secret_sealed = other.seal(secret, f"sproutgate:mfa_totp:v1\x1f{factor.user_id}".encode())
    token = (await password_step(h, "lostkey@example.com"))["mfa_token"]
    r = await h.client.post(SESSIONS_MFA, json={"mfa_token": token, "code": next_code(h, secret)})
    assert_problem(r, 503, "second_factor_unavailable")
