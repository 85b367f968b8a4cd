"""`sproutgate keys rotate-mfa`: a new key for authenticator secrets, every secret re-sealed under
it in one transaction, the older keys retired to data/keys/retired/; a running server (which read
the keys before) keeps signing people in and seals new enrolments with the new key, without a
restart. The command runs as a process against the test's database, on both engines."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from sproutgate.infra.sealing import (
    SecretSealer,
    UnsealError,
    add_mfa_key,
    load_mfa_keys,
    retire_mfa_keys,
)
from sproutgate.storage.models import TotpFactor
from support.harness import bearer, signup

PASSWORD = "Sprout#2026pw"


def aad(user_id: str) -> bytes:
    return f"sproutgate:mfa_totp:v1\x1f{user_id}".encode()


def key_of(path: Path) -> bytes:
    return bytes.fromhex(path.read_text().strip())


def code_at(h, secret: str, ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(h.clock.now() + timedelta(seconds=30 * ahead))


async def enrol(h, email: str, *, confirm: bool = True) -> tuple[str, str, str]:
    """A user with an authenticator app (or, ``confirm=False``, one waiting for its first code);
    returns the access token, the secret and the user id."""
    token = (await signup(h, email, username=email.split("@")[0]))["access_token"]
    user_id = (await h.client.get("/api/v1/users/me", headers=bearer(token))).json()["id"]
    h.clock.advance((15 - h.clock.now().timestamp() % 30) % 30)
    r = await h.client.post("/api/v1/users/me/mfa/totp", json={}, headers=bearer(token))
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    if confirm:
        r = await h.client.post(
            "/api/v1/users/me/mfa/totp/verify", json={"code": code_at(h, secret)}, headers=bearer(token)
        )
        assert r.status_code == 200, r.text
    return token, secret, user_id


async def sealed_rows(h) -> dict[str, str]:
    async with h.services.db.read() as s:
        return {f.user_id: f.secret_sealed for f in (await s.execute(select(TotpFactor))).scalars()}


def opens(keys: list[bytes], value: str, user_id: str) -> bool:
    try:
        SecretSealer(keys).open(value, aad(user_id))
        return True
    except UnsealError:
        return False


async def rotate(h, *args: str) -> subprocess.CompletedProcess[str]:
    settings = h.services.settings
    env = {
        **os.environ,
        "SPROUTGATE_DATA_DIR": str(settings.data_dir),
        "SPROUTGATE_DATABASE_URL": settings.database_url,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sproutgate", "keys", "rotate-mfa", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def sign_in_with_code(h, email: str, code: str) -> int:
    r = await h.client.post("/api/v1/auth/sessions", json={"email": email, "password": PASSWORD})
    assert r.status_code == 401 and r.json()["code"] == "mfa_required", r.text
    r = await h.client.post(
        "/api/v1/auth/sessions/mfa", json={"mfa_token": r.json()["mfa_token"], "code": code}
    )
    return r.status_code


@pytest.mark.both_engines
async def test_rotating_reseals_every_secret_and_a_running_server_keeps_working(harness):
    h = harness
    keys = h.services.settings.data_dir / "keys"
    _, active, _ = await enrol(h, "rot-active@example.com")
    waiting_token, waiting, _ = await enrol(h, "rot-waiting@example.com", confirm=False)
    old_key = key_of(keys / "mfa.key")
    before = await sealed_rows(h)
    assert len(before) == 2 and all(opens([old_key], v, uid) for uid, v in before.items())

    done = await rotate(h)
    assert done.returncode == 0, done.stderr
    [new_file] = keys.glob("mfa-*.key")
    assert stat.S_IMODE(new_file.stat().st_mode) == 0o600
    assert f"new mfa key {new_file.name}" in done.stdout
    assert "re-sealed 2 authenticator secret(s)" in done.stdout
    assert "retired mfa.key" in done.stdout
    # The old key left the set the servers load, and is kept aside (0700) for old backups.
    assert not (keys / "mfa.key").exists() and key_of(keys / "retired" / "mfa.key") == old_key
    assert stat.S_IMODE((keys / "retired").stat().st_mode) == 0o700
    assert load_mfa_keys(h.services.settings.data_dir) == [key_of(new_file)]  # mfa.key not made anew
    after = await sealed_rows(h)
    assert after.keys() == before.keys()
    for uid, value in after.items():
        assert value != before[uid]
        assert opens([key_of(new_file)], value, uid) and not opens([old_key], value, uid)

    # This server read the keys before the rotation: it opens the re-sealed secrets at once.
    assert await sign_in_with_code(h, "rot-active@example.com", code_at(h, active, 1)) == 200
    assert await sign_in_with_code(h, "rot-active@example.com", code_at(h, active, 1)) == 401  # replay
    r = await h.client.post(
        "/api/v1/users/me/mfa/totp/verify", json={"code": code_at(h, waiting)}, headers=bearer(waiting_token)
    )
    assert r.status_code == 200, r.text  # the waiting enrolment carried over too
    # ... and seals a new enrolment with the new key.
    _, later, _ = await enrol(h, "rot-new@example.com")
    newest = await sealed_rows(h)
    assert len(newest) == 3 and all(opens([key_of(new_file)], v, uid) for uid, v in newest.items())

    # A second rotation retires the first rotation's key the same way.
    again = await rotate(h)
    assert again.returncode == 0, again.stderr
    assert (
        "re-sealed 3 authenticator secret(s)" in again.stdout and f"retired {new_file.name}" in again.stdout
    )
    [newer_file] = keys.glob("mfa-*.key")
    assert newer_file != new_file and (keys / "retired" / new_file.name).exists()
    assert await sign_in_with_code(h, "rot-new@example.com", code_at(h, later, 1)) == 200


@pytest.mark.both_engines
async def test_a_secret_no_key_opens_keeps_the_old_keys_and_fails_the_command(harness):
    h = harness
    keys = h.services.settings.data_dir / "keys"
    _, fine, _ = await enrol(h, "rot-fine@example.com")
    _, lost, lost_id = await enrol(h, "rot-lost@example.com")
    # One secret as if sealed with a key that is gone.
    async with h.services.db.write() as s:
        victim = (await s.execute(select(TotpFactor).where(TotpFactor.user_id == lost_id))).scalar_one()
        victim.secret_sealed = SecretSealer([bytes(32)]).seal(lost, aad(lost_id))
    done = await rotate(h)
    assert done.returncode == 1
    assert "1 secret(s) open with no mfa key" in done.stderr and lost_id in done.stderr
    assert "re-sealed 1 authenticator secret(s)" in done.stdout
    # Nothing retired: the older key stays where every server loads it.
    assert (keys / "mfa.key").exists() and not (keys / "retired").exists()
    [new_file] = keys.glob("mfa-*.key")
    after = await sealed_rows(h)
    assert [uid for uid, v in after.items() if opens([key_of(new_file)], v, uid)] == [
        uid for uid in after if uid != lost_id
    ]
    assert await sign_in_with_code(h, "rot-fine@example.com", code_at(h, fine, 1)) == 200
    # --keep-old re-seals and leaves every key where it is.
    kept = await rotate(h, "--keep-old")
    assert kept.returncode == 1 and "re-sealed 1 authenticator secret(s)" in kept.stdout
    assert (keys / "mfa.key").exists() and len(list(keys.glob("mfa-*.key"))) == 2


def test_a_sealer_that_rereads_seals_with_the_newest_key_and_opens_after_a_miss(tmp_path):
    first = load_mfa_keys(tmp_path)
    reading = SecretSealer(first, reload=lambda: load_mfa_keys(tmp_path))
    stale = SecretSealer(first, reload=lambda: load_mfa_keys(tmp_path))
    old = reading.seal("JBSWY3DPEHPK3PXP", aad("u1"))
    name = add_mfa_key(tmp_path)
    new = reading.seal("JBSWY3DPEHPK3PXP", aad("u2"))
    newest = key_of(tmp_path / "keys" / name)
    assert opens([newest], new, "u2") and not opens(first, new, "u2")
    assert reading.sealed_with_newest(new, aad("u2")) and not reading.sealed_with_newest(old, aad("u1"))
    assert stale.open(new, aad("u2")) == "JBSWY3DPEHPK3PXP"  # re-read on the miss
    assert stale.open(old, aad("u1")) == "JBSWY3DPEHPK3PXP"  # the old key opens until retired
    with pytest.raises(UnsealError):
        stale.open(new, aad("u1"))  # bound to its user
    assert retire_mfa_keys(tmp_path, keep=name) == ["mfa.key"]
    assert load_mfa_keys(tmp_path) == [newest]
    fresh = SecretSealer(load_mfa_keys(tmp_path))
    with pytest.raises(UnsealError):
        fresh.open(old, aad("u1"))
