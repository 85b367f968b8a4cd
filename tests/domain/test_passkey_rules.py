"""The pure rules of passkeys (domain/passkeys/rules.py): the relying party, names, the
signature counter (WebAuthn L3 §6.1.1), what a response names, amr; and a passkey's place among
the second factors (domain/mfa/rules.py)."""

from __future__ import annotations

import base64
import json

import pytest

from sproutgate.domain.errors import InvalidInput
from sproutgate.domain.mfa.rules import Factor, sign_in_factors
from sproutgate.domain.passkeys.rules import (
    CHALLENGE_BYTES,
    PASSKEY_NAME_MAX,
    RelyingParty,
    challenge_of,
    credential_id_of,
    from_b64url,
    hash_challenge,
    new_challenge,
    new_user_handle,
    passkey_amr,
    require_passkey_name,
    sign_count_acceptable,
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("url", "rp_id", "origin"),
    [
        ("https://id.example.com", "id.example.com", "https://id.example.com"),
        ("https://ID.Example.com:8443/base/", "id.example.com", "https://id.example.com:8443"),
        ("http://localhost:8000", "localhost", "http://localhost:8000"),
    ],
)
def test_the_relying_party_is_the_public_urls_host_and_origin(url, rp_id, origin):
    rp = RelyingParty.from_public_url(url)
    assert (rp.id, rp.origin, rp.name) == (rp_id, origin, "SproutGate")


def test_a_public_url_without_a_host_names_no_relying_party():
    with pytest.raises(ValueError):
        RelyingParty.from_public_url("not a url")


@pytest.mark.parametrize(
    ("stored", "presented", "ok"),
    [(0, 0, True), (0, 1, True), (5, 6, True), (5, 5, False), (5, 4, False), (5, 0, False), (0, 0, True)],
)
def test_the_signature_counter_only_moves_forward_unless_both_are_zero(stored, presented, ok):
    assert sign_count_acceptable(stored, presented) is ok


def test_names_are_trimmed_bounded_and_printable():
    assert require_passkey_name("  My phone ") == "My phone"
    assert require_passkey_name("我的手机") == "我的手机"
    for bad, code in (
        ("", "invalid_length"),
        ("   ", "invalid_length"),
        ("x" * (PASSKEY_NAME_MAX + 1), "invalid_length"),
        ("a\x00b", "invalid_value"),
        ("a\u202eb", "invalid_value"),
    ):
        with pytest.raises(InvalidInput) as caught:
            require_passkey_name(bad)
        assert caught.value.fields == {"name": code}


def test_challenges_and_handles_are_random_and_only_hashes_are_kept():
    a, b = new_challenge(), new_challenge()
    assert len(a) == CHALLENGE_BYTES and a != b
    assert len(hash_challenge(a)) == 64 and hash_challenge(a) != hash_challenge(b)
    handle = new_user_handle()
    assert len(from_b64url(handle) or b"") == 32 and handle != new_user_handle()


def test_what_a_response_names_is_read_defensively():
    challenge = new_challenge()
    client_data = _b64(json.dumps({"type": "webauthn.get", "challenge": _b64(challenge)}).encode())
    assert challenge_of({"response": {"clientDataJSON": client_data}}) == challenge
    for bad in (
        {},
        {"response": []},
        {"response": {"clientDataJSON": "!!"}},
        {"response": {"clientDataJSON": _b64(b"[1]")}},
        {"response": {"clientDataJSON": _b64(b'{"challenge": 5}')}},
    ):
        assert challenge_of(bad) is None
    assert credential_id_of({"id": "AbC-_1"}) == "AbC-_1"
    for bad_id in (None, "", "a b", "@@", "x" * 2000, 7):
        assert credential_id_of({"id": bad_id}) is None


def test_a_passkey_sign_in_counts_as_two_factors():
    assert passkey_amr(backup_eligible=False) == ["hwk", "mfa"]
    assert passkey_amr(backup_eligible=True) == ["swk", "mfa"]


def test_a_passkey_is_offered_as_a_second_step_only_besides_an_authenticator_app():
    assert sign_in_factors(False, has_passkey=True) == []
    assert sign_in_factors(True, has_passkey=False) == [Factor.TOTP, Factor.RECOVERY_CODE]
    assert sign_in_factors(True, has_passkey=True) == [Factor.TOTP, Factor.RECOVERY_CODE, Factor.PASSKEY]
