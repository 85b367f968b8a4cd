"""infra.tokens.JwtSigner reads the process's one clock, for signing and for checking expiry."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt
import pytest

from sproutgate.domain.clock import FrozenClock
from sproutgate.infra.keys import load_signing_keys
from sproutgate.infra.tokens import InvalidToken, JwtSigner

START = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def signer(tmp_path, clock) -> JwtSigner:
    return JwtSigner(load_signing_keys(tmp_path), "sproutgate", clock=clock)


def test_iat_and_exp_come_from_the_clock(signer, clock):
    token, exp = signer.issue("user-1", "session-1", 600, audience="sproutgate:api", token_type="at+jwt")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iat"] == int(START.timestamp()) and claims["exp"] == exp == claims["iat"] + 600


def test_expiry_is_checked_against_the_clock(signer, clock):
    token, _ = signer.issue("user-1", "session-1", 600, audience="sproutgate:api", token_type="at+jwt")
    clock.advance(599)
    assert signer.verify(token, audience="sproutgate:api", token_type="at+jwt").session_id == "session-1"
    clock.advance(1)
    with pytest.raises(InvalidToken):
        signer.verify(token, audience="sproutgate:api", token_type="at+jwt")


def test_a_token_from_the_clocks_future_is_not_yet_valid(signer, clock):
    token, _ = signer.issue("user-1", "session-1", 600, audience="sproutgate:api", token_type="at+jwt")
    clock.advance(-1)
    with pytest.raises(InvalidToken):
        signer.verify(token, audience="sproutgate:api", token_type="at+jwt")
