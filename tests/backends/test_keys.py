"""Signing keys shared through the data dir: a key added by another instance (or by
`sproutgate keys rotate`) is accepted without a restart, a deleted one stops verifying."""

from __future__ import annotations

import jwt
import pytest

from sproutgate.domain.clock import Clock
from sproutgate.infra.keys import generate_signing_key, keys_dir, load_signing_keys
from sproutgate.infra.tokens import InvalidToken, JwtSigner
from support.harness import bearer, signup


def _signer(data_dir, refresh_seconds: float = 60.0) -> JwtSigner:
    return JwtSigner(
        load_signing_keys(data_dir),
        "sproutgate",
        clock=Clock(),
        reload=lambda: load_signing_keys(data_dir, create=False),
        refresh_seconds=refresh_seconds,
    )


async def test_token_signed_with_a_key_added_later_is_accepted_without_restart(harness):
    data_dir = harness.services.settings.data_dir
    session = await signup(harness, "rotating@example.com", username="rotating")
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    kid = generate_signing_key(data_dir)
    # Another instance, started after the rotation, signs with the new key.
    token, _ = _signer(data_dir).issue(
        claims["sub"], claims["sid"], 60, audience="sproutgate:api", token_type="at+jwt"
    )
    assert jwt.get_unverified_header(token)["kid"] == kid
    r = await harness.client.get("/api/v1/users/me", headers=bearer(token))
    assert r.status_code == 200, r.text
    kids = [k["kid"] for k in (await harness.client.get("/.well-known/jwks.json")).json()["keys"]]
    assert kid in kids and len(kids) == 2
    # Older tokens keep working.
    r = await harness.client.get("/api/v1/users/me", headers=bearer(session["access_token"]))
    assert r.status_code == 200


def test_newest_key_signs_and_a_deleted_key_stops_verifying(tmp_path):
    signer = _signer(tmp_path, refresh_seconds=0)
    old_token, _ = signer.issue("user", "session", 60, audience="sproutgate:api", token_type="at+jwt")
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    new_kid = generate_signing_key(tmp_path)
    new_token, _ = signer.issue("user", "session", 60, audience="sproutgate:api", token_type="at+jwt")
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert signer.verify(old_token, audience="sproutgate:api", token_type="at+jwt").user_id == "user"
    (keys_dir(tmp_path) / f"jwt-es256-{old_kid}.pem").unlink()
    with pytest.raises(InvalidToken):
        signer.verify(old_token, audience="sproutgate:api", token_type="at+jwt")
    assert signer.verify(new_token, audience="sproutgate:api", token_type="at+jwt").session_id == "session"
