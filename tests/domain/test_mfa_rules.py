"""The pure rules of second factors (domain/mfa/rules.py): code shapes, recovery codes, amr."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pyotp
import pytest

from sproutgate.domain.errors import InvalidInput
from sproutgate.domain.mfa.rules import (
    RECOVERY_ALPHABET,
    Factor,
    amr_values,
    code_factor,
    new_recovery_codes,
    new_totp_secret,
    normalize_recovery_code,
    require_mfa_code,
    sign_in_factors,
    totp_matched_step,
    totp_step,
)


def test_recovery_codes_carry_over_50_bits_and_no_look_alikes():
    codes = new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    symbols = len(codes[0].replace("-", ""))
    assert symbols * math.log2(len(RECOVERY_ALPHABET)) >= 50
    assert not set("0o1il") & set(RECOVERY_ALPHABET)
    assert all(normalize_recovery_code(c) == c.replace("-", "") for c in codes)


@pytest.mark.parametrize(
    ("typed", "factor"),
    [
        ("123456", Factor.TOTP),
        ("k7qm-3xth-9wpa", Factor.RECOVERY_CODE),
        ("K7QM 3XTH 9WPA", Factor.RECOVERY_CODE),
        ("k7qm3xth9wpa", Factor.RECOVERY_CODE),
        ("12345", None),
        ("k7qm-3xth-9wp0", None),  # 0 is not in the alphabet
        ("k7qm-3xth", None),
        ("１２３４５６", None),
        ("", None),
    ],
)
def test_what_a_typed_code_is(typed, factor):
    assert code_factor(typed) is factor
    if factor is None:
        with pytest.raises(InvalidInput) as caught:
            require_mfa_code(typed)
        assert caught.value.fields == {"code": "invalid_mfa_code_format"}


def test_a_step_matches_once_within_one_step_of_drift():
    secret = new_totp_secret()
    at = datetime(2026, 1, 1, 12, 0, 15, tzinfo=UTC)
    now = totp_step(at)
    code = pyotp.TOTP(secret).at(at)
    assert totp_matched_step(secret, code, at, None) == now
    assert totp_matched_step(secret, code, at, now) is None  # used already
    ahead = pyotp.TOTP(secret).at(at.timestamp() + 30)
    behind = pyotp.TOTP(secret).at(at.timestamp() - 30)
    assert totp_matched_step(secret, ahead, at, None) == now + 1
    assert totp_matched_step(secret, behind, at, None) == now - 1
    assert totp_matched_step(secret, pyotp.TOTP(secret).at(at.timestamp() + 60), at, None) is None
    assert totp_matched_step(secret, pyotp.TOTP(secret).at(at.timestamp() - 60), at, None) is None


def test_factors_offered_and_amr():
    assert sign_in_factors(False) == []
    assert sign_in_factors(True) == [Factor.TOTP, Factor.RECOVERY_CODE]
    assert amr_values([]) == ["pwd"]
    assert amr_values([Factor.TOTP]) == ["pwd", "otp", "mfa"]
    assert amr_values([Factor.PASSKEY], password=False) == ["hwk"]
