"""Second factors across the faces, in-process and against a real server: the SproutGate login
and the runtime sign-in of a user with an authenticator app, the admin's view and reset of a
user's factors (API and `sproutgate user reset-mfa`), and users without a factor seeing nothing new.

On the real server the clock is the machine's: codes are computed with pyotp for the step after
the current one (accepted as one step of drift, and later than the step the enrolment used)."""

# ruff: noqa: F811 - pytest fixtures imported from gate_support are redefined as arguments

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pyotp
import pytest
from gate_support import (
    PASSWORD,
    assert_problem,
    bearer,
    email_of,
    face,  # noqa: F401 - fixture
    gate_login,
    gate_server,  # noqa: F401 - fixture
    register,
    server_env,
    uniq,
    valid,
)

pytestmark = pytest.mark.both_engines

USERS = "/api/admin/users"


def step_code(secret: str, steps_ahead: int) -> str:
    """The code of the step ``steps_ahead`` after the current one (machine time)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


async def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sproutgate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def enrol(t, token: str) -> tuple[str, list[str]]:
    """Turn an authenticator on for the owner of ``token`` (any face's token); (secret, codes)."""
    r = await t.client.post("/api/v1/users/me/mfa/totp", json={"password": PASSWORD}, headers=bearer(token))
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = await t.client.post(
        "/api/v1/users/me/mfa/totp/verify", json={"code": step_code(secret, 0)}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    return secret, r.json()["recovery_codes"]


async def test_gate_login_asks_for_the_code_then_answers_the_unified_token(face):
    account = uniq()
    await register(face, account)
    secret, codes = await enrol(face, (await gate_login(face, account))["token"])

    r = await face.client.post("/api/auth/login", json={"account": account, "password": PASSWORD})
    body = assert_problem(r, 401, "mfa_required")
    assert body["factors"] == ["totp", "recovery_code"] and "mfa_token" not in body
    token = body["mfaToken"]
    r = await face.client.post("/api/auth/login/mfa", json={"mfaToken": token, "code": step_code(secret, 5)})
    assert_problem(r, 401, "invalid_mfa_code")
    r = await face.client.post("/api/auth/login/mfa", json={"mfaToken": token, "code": step_code(secret, 1)})
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"token", "expiresAt", "user"} and out["user"]["account"] == account
    assert "mfa" not in out["user"]
    assert await valid(face, out["token"])
    r = await face.client.post("/api/auth/login/mfa", json={"mfaToken": token, "code": codes[0]})
    assert_problem(r, 401, "invalid_mfa_token")
    # by email too, and with a recovery code
    r = await face.client.post("/api/auth/login", json={"account": email_of(account), "password": PASSWORD})
    token = assert_problem(r, 401, "mfa_required")["mfaToken"]
    r = await face.client.post("/api/auth/login/mfa", json={"mfaToken": token, "code": codes[0]})
    assert r.status_code == 200, r.text
    # malformed input: 422 in the face's spelling
    r = await face.client.post("/api/auth/login/mfa", json={"code": "123456"})
    assert_problem(r, 422, "invalid_input")
    assert [e["field"] for e in r.json()["errors"]] == ["mfaToken"]
    r = await face.client.post("/api/auth/login/mfa", json={"mfaToken": token, "code": "12-34"})
    assert_problem(r, 422) and r.json()["errors"][0]["code"] == "invalid_mfa_code_format"


async def test_runtime_sign_in_of_a_user_registered_on_the_gate_face(face):
    account = uniq()
    await register(face, account)
    secret, codes = await enrol(face, (await gate_login(face, account))["token"])
    r = await face.client.post(
        "/api/v1/auth/sessions", json={"email": email_of(account), "password": PASSWORD}
    )
    body = assert_problem(r, 401, "mfa_required")
    assert "mfaToken" not in body
    used = step_code(secret, 1)
    r = await face.client.post(
        "/api/v1/auth/sessions/mfa", json={"mfa_token": body["mfa_token"], "code": used}
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"access_token", "refresh_token", "expires_in", "token_type", "user"}
    # an mfaToken of the SproutGate login opens no runtime session, and stays good for its own face
    r = await face.client.post("/api/auth/login", json={"account": account, "password": PASSWORD})
    gate_token = assert_problem(r, 401, "mfa_required")["mfaToken"]
    r = await face.client.post(
        "/api/v1/auth/sessions/mfa", json={"mfa_token": gate_token, "code": step_code(secret, 1)}
    )
    assert_problem(r, 401, "invalid_mfa_token")
    # The very code the runtime sign-in used: a replay. (Not the next step's code computed anew:
    # once the machine's clock crossed into the next 30-second step that is a fresh code.)
    r = await face.client.post("/api/auth/login/mfa", json={"mfaToken": gate_token, "code": used})
    assert_problem(r, 401, "invalid_mfa_code")
    r = await face.client.post("/api/auth/login/mfa", json={"mfaToken": gate_token, "code": codes[0]})
    assert r.status_code == 200, r.text


async def test_users_without_a_factor_see_nothing_new(face):
    account = uniq()
    user = await register(face, account)
    assert "mfa" not in user
    out = await gate_login(face, account)
    assert set(out) == {"token", "expiresAt", "user"}
    r = await face.client.get("/api/v1/users/me/mfa", headers=bearer(out["token"]))
    assert r.json() == {"totp": False, "passkeys": [], "recovery_codes_left": 0}


async def test_admin_sees_factors_and_resets_them(face):
    account = uniq()
    await register(face, account)
    token = (await gate_login(face, account))["token"]
    admin = {"X-Admin-Token": face.admin_token}
    r = await face.client.get(USERS, params={"q": account}, headers=admin)
    assert r.json()["users"][0]["mfa"] == {"totp": False, "passkeys": 0}
    secret, _ = await enrol(face, token)
    r = await face.client.get(USERS, params={"q": account}, headers=admin)
    user = r.json()["users"][0]
    assert user["mfa"] == {"totp": True, "passkeys": 0}
    assert not any(secret in str(v) for v in user.values())

    for bad in ("yes", 1, "true"):
        r = await face.client.put(f"{USERS}/{account}", json={"resetMfa": bad}, headers=admin)
        assert_problem(r, 422)
        assert [e["field"] for e in r.json()["errors"]] == ["resetMfa"]
    r = await face.client.put(f"{USERS}/{account}", json={"resetMfa": True}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["mfa"] == {"totp": False, "passkeys": 0}
    assert not await valid(face, token)  # every session ended
    kinds = [m["kind"] for m in await face.mailbox(email_of(account))]
    assert "mfa_reset" in kinds
    assert set(await gate_login(face, account)) == {"token", "expiresAt", "user"}
    r = await face.client.post(
        USERS,
        json={"account": uniq(), "email": "x@example.com", "password": PASSWORD, "resetMfa": True},
        headers=admin,
    )
    assert_problem(r, 422)


async def test_reset_mfa_on_the_command_line(face):
    if face.harness is not None:
        pytest.skip("the command line runs against the real server's data dir")
    account = uniq()
    await register(face, account)
    await enrol(face, (await gate_login(face, account))["token"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPROUTGATE_")}
    env.update({k: v for k, v in server_env(face.data_dir).items() if v is not None})
    done = await cli(env, "user", "reset-mfa", email_of(account))
    assert done.returncode == 0, done.stderr
    assert "second factors off" in done.stdout
    assert set(await gate_login(face, account)) == {"token", "expiresAt", "user"}
    assert "mfa_reset" in [m["kind"] for m in await face.mailbox(email_of(account))]
    done = await cli(env, "user", "reset-mfa", "nobody-here@example.com")
    assert done.returncode == 1 and "no user" in done.stderr
    done = await cli(env, "audit", "--json")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert any(
        e["action"] == "user.mfa.reset" and e["target"] == account and e["actor"] == "cli" for e in events
    )
