"""Rules of passkeys, as pure functions over the ``webauthn`` library (py_webauthn): the relying
party, the ceremonies' options in the WebAuthn Level 3 JSON serialization, and what a response
must prove before it counts.

Spec references are to Web Authentication Level 3 (W3C): §5.4 (creation options), §5.5 (request
options), §6.1.1 (signature counter), §6.3.3 (backup flags BE/BS), §7.1 (registration) and §7.2
(authentication). The library does the parsing and the cryptography (clientDataJSON, origin, RP
ID hash, UP/UV flags, attestation, signature); the checks that depend on what we stored (the
counter, BE, the owner's user handle) are here, before the library is asked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from sproutgate.domain.errors import InvalidInput
from sproutgate.domain.passkeys.errors import PasskeyRegistrationFailed, PasskeyRejected

log = logging.getLogger(__name__)


class Ceremony(StrEnum):
    """What a stored challenge is for (``passkey_challenges.purpose``)."""

    REGISTRATION = "registration"  # adding a passkey, bound to the signed-in user
    SIGN_IN = "sign_in"  # signing in with a passkey alone, bound to the browser that asked
    SECOND_STEP = "second_step"  # a passkey after the password, bound to that password step


RP_NAME = "SproutGate"
# How long a challenge may be answered: WebAuthn L3 §15.1 recommends 300 s (the default of its
# 5-10 minute range) when user verification is required. Browsers get the same as ``timeout``.
CHALLENGE_TTL_SECONDS = 300
CHALLENGE_BYTES = 32  # §13.4.3: at least 16 random bytes
MAX_PASSKEYS_PER_USER = 20
PASSKEY_NAME_MAX = 64
MAX_CREDENTIAL_ID_CHARS = 1366  # base64url of the 1023 bytes §5.8.3 allows
# Ed25519, ES256, RS256: what authenticators in use sign with (§5.8.2; COSE algorithm ids).
ALGORITHMS = [
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who the ceremonies are for: ``id`` the RP ID (the host of ``SPROUTGATE_PUBLIC_URL``,
    §5.1.2), ``origin`` the only origin a response may come from (scheme, host and port of it)."""

    id: str
    origin: str
    name: str = RP_NAME

    @classmethod
    def from_public_url(cls, public_url: str) -> RelyingParty:
        """The relying party of a deployment served at ``public_url``. Raises ValueError when
        it names no host."""
        parts = urlsplit(public_url.strip())
        if not parts.scheme or not parts.hostname:
            raise ValueError(f"SPROUTGATE_PUBLIC_URL has no host: {public_url!r}")
        return cls(id=parts.hostname, origin=f"{parts.scheme.lower()}://{parts.netloc.lower()}")


# -- values -----------------------------------------------------------------------------------
def b64url(raw: bytes) -> str:
    """Unpadded base64url, as WebAuthn's JSON serialization spells bytes."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes | None:
    """The bytes of base64url ``text`` (padded or not), or None when it is not base64url."""
    if not isinstance(text, str) or not _B64URL.match(text):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def new_challenge() -> bytes:
    """``CHALLENGE_BYTES`` random bytes from ``secrets``."""
    return secrets.token_bytes(CHALLENGE_BYTES)


def hash_challenge(challenge: bytes) -> str:
    """SHA-256 hex of a challenge: the only form stored (256 random bits need no key)."""
    return hashlib.sha256(challenge).hexdigest()


def new_user_handle() -> str:
    """A user handle (WebAuthn ``user.id``, §5.4.3): 32 random bytes, base64url; it says
    nothing about the user."""
    return b64url(secrets.token_bytes(32))


def new_binding() -> str:
    """The random handle a browser keeps (in a cookie) for a passwordless sign-in it started."""
    return secrets.token_urlsafe(32)


def hash_binding(binding: str) -> str:
    """SHA-256 hex of a browser's sign-in handle, the only form stored."""
    return hashlib.sha256(binding.encode()).hexdigest()


def require_passkey_name(name: str, field: str = "name") -> str:
    """A passkey's name as its owner typed it, trimmed: 1 to ``PASSKEY_NAME_MAX`` characters,
    no control characters. Raises InvalidInput({field: "invalid_length" | "invalid_value"})."""
    trimmed = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(trimmed) <= PASSKEY_NAME_MAX:
        raise InvalidInput({field: "invalid_length"})
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in trimmed):
        raise InvalidInput({field: "invalid_value"})
    return trimmed


def credential_id_of(credential: Mapping[str, Any]) -> str | None:
    """The credential id a response names (its ``id``, base64url), or None when it has none
    that could be one."""
    value = credential.get("id") if isinstance(credential, Mapping) else None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CREDENTIAL_ID_CHARS:
        return None
    return value if from_b64url(value) is not None else None


def challenge_of(credential: Mapping[str, Any]) -> bytes | None:
    """The challenge a response answers (from its clientDataJSON), or None when the response is
    malformed. Only to find the stored challenge: the library checks it again."""
    response = credential.get("response") if isinstance(credential, Mapping) else None
    if not isinstance(response, Mapping):
        return None
    raw = from_b64url(response.get("clientDataJSON", ""))
    if raw is None or len(raw) > 8192:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    challenge = data.get("challenge") if isinstance(data, dict) else None
    decoded = from_b64url(challenge) if isinstance(challenge, str) else None
    return decoded or None


# -- options (the browser's input) --------------------------------------------------------------
def _descriptors(credentials: list[tuple[str, list[str]]]) -> list[PublicKeyCredentialDescriptor]:
    out = []
    for credential_id, transports in credentials:
        raw = from_b64url(credential_id)
        if raw is None:
            continue
        known = [AuthenticatorTransport(t) for t in transports if t in _TRANSPORTS]
        out.append(PublicKeyCredentialDescriptor(id=raw, transports=known or None))
    return out


def creation_options(
    rp: RelyingParty,
    *,
    challenge: bytes,
    user_handle: str,
    account: str,
    display_name: str,
    exclude: list[tuple[str, list[str]]],
) -> str:
    """``PublicKeyCredentialCreationOptionsJSON`` (§5.4, L3 JSON serialization) for adding a
    passkey: a discoverable credential (``residentKey: required``) with user verification
    required, no attestation, and the user's existing credentials (id, transports) excluded so
    one authenticator is not registered twice."""
    handle = from_b64url(user_handle)
    assert handle is not None  # made by new_user_handle
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=handle,
        user_name=account,
        user_display_name=display_name or account,
        challenge=challenge,
        timeout=CHALLENGE_TTL_SECONDS * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(exclude),
        supported_pub_key_algs=ALGORITHMS,
    )
    return options_to_json(options)


def request_options(rp: RelyingParty, *, challenge: bytes, allow: list[tuple[str, list[str]]]) -> str:
    """``PublicKeyCredentialRequestOptionsJSON`` (§5.5): user verification required; ``allow``
    empty for a discoverable sign-in (the authenticator offers its passkeys for this RP ID),
    else the credentials (id, transports) of the user whose password was right."""
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=CHALLENGE_TTL_SECONDS * 1000,
        allow_credentials=_descriptors(allow),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options)


# -- responses ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewCredential:
    """A verified registration: what is stored of the new passkey (public parts only)."""

    credential_id: str
    public_key: bytes  # COSE_Key
    sign_count: int
    backup_eligible: bool
    backup_state: bool
    aaguid: str
    transports: list[str]


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """What an assertion is checked against: a passkey as stored."""

    credential_id: str
    public_key: bytes
    sign_count: int
    backup_eligible: bool
    user_handle: str


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """A verified assertion: the new signature counter and backup state to store."""

    sign_count: int
    backup_state: bool


def verify_registration(rp: RelyingParty, credential: Mapping[str, Any], challenge: bytes) -> NewCredential:
    """Check a registration response (§7.1) to ``challenge``: type ``webauthn.create``, our
    origin and RP ID, user present and verified, an allowed algorithm, a valid attestation
    statement of whatever format the browser sent. Raises PasskeyRegistrationFailed."""
    try:
        parsed: RegistrationCredential = _parse_registration(credential)
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_presence=True,
            require_user_verification=True,
            supported_pub_key_algs=ALGORITHMS,
        )
    except _MALFORMED as exc:
        log.info("passkey registration refused: %s", exc)
        raise PasskeyRegistrationFailed() from None
    transports = [t.value for t in (parsed.response.transports or [])]
    return NewCredential(
        credential_id=b64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backup_state=verified.credential_backed_up,
        aaguid=verified.aaguid,
        transports=transports,
    )


def sign_count_acceptable(stored: int, presented: int) -> bool:
    """§6.1.1: when either counter is not zero, the presented one must be greater than the
    stored one; else the credential may have been cloned, and the assertion is refused. Two
    zeros (authenticators that keep no counter, synced passkeys) pass."""
    if stored == 0 and presented == 0:
        return True
    return presented > stored


def verify_assertion(
    rp: RelyingParty, credential: Mapping[str, Any], challenge: bytes, stored: StoredCredential
) -> VerifiedAssertion:
    """Check an authentication response (§7.2) by the stored credential to ``challenge``.

    Ours, before the library: the response names the stored credential; its ``userHandle``, when
    present, is the owner's (§7.2 step 6; the discoverable sign-in requires it, see
    ``require_user_handle``); the signature counter moved forward (``sign_count_acceptable``);
    BE is what it was at registration and BS is not set without BE (§6.3.3). The library's: type
    ``webauthn.get``, our origin and RP ID hash, user present and verified, the signature over
    authenticatorData and the clientDataJSON hash by the stored public key.

    Raises PasskeyRejected."""
    try:
        parsed: AuthenticationCredential = _parse_authentication(credential)
    except _MALFORMED as exc:
        log.info("passkey assertion refused: %s", exc)
        raise PasskeyRejected() from None
    if b64url(parsed.raw_id) != stored.credential_id:
        raise PasskeyRejected()
    if parsed.response.user_handle is not None and b64url(parsed.response.user_handle) != stored.user_handle:
        log.info("passkey assertion refused: the user handle is not the credential owner's")
        raise PasskeyRejected()
    try:
        flags_and_count = parse_authenticator_data(parsed.response.authenticator_data)
    except _MALFORMED as exc:
        log.info("passkey assertion refused: %s", exc)
        raise PasskeyRejected() from None
    if not sign_count_acceptable(stored.sign_count, flags_and_count.sign_count):
        log.warning(
            "passkey assertion refused: signature counter %d after %d (a cloned authenticator?)",
            flags_and_count.sign_count,
            stored.sign_count,
        )
        raise PasskeyRejected()
    be, bs = bool(flags_and_count.flags.be), bool(flags_and_count.flags.bs)
    if be != stored.backup_eligible or (bs and not be):
        log.warning("passkey assertion refused: backup eligibility changed (BE=%s, BS=%s)", be, bs)
        raise PasskeyRejected()
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=stored.public_key,
            credential_current_sign_count=stored.sign_count,
            require_user_verification=True,
        )
    except _MALFORMED as exc:
        log.info("passkey assertion refused: %s", exc)
        raise PasskeyRejected() from None
    return VerifiedAssertion(sign_count=verified.new_sign_count, backup_state=verified.credential_backed_up)


def require_user_handle(credential: Mapping[str, Any]) -> str:
    """The ``userHandle`` of an assertion for a discoverable sign-in, where nobody was named
    before the ceremony: §7.2 step 6 requires it. Raises PasskeyRejected when absent."""
    response = credential.get("response") if isinstance(credential, Mapping) else None
    handle = response.get("userHandle") if isinstance(response, Mapping) else None
    if not isinstance(handle, str) or from_b64url(handle) is None:
        raise PasskeyRejected()
    return handle


def passkey_amr(backup_eligible: bool) -> list[str]:
    """RFC 8176 ``amr`` of a sign-in by a passkey with user verification: a key held in
    hardware (``hwk``: a device-bound credential) or in software that syncs (``swk``: backup
    eligible), plus ``mfa``: the key and the verified user are two factors."""
    return ["swk" if backup_eligible else "hwk", "mfa"]


# What the library raises on a response it cannot use: its own exceptions, and the plain ones
# its parsers let through on odd input (a wrong type where bytes were expected, a bad CBOR map).
_MALFORMED = (WebAuthnException, ValueError, TypeError, KeyError, IndexError, AttributeError)


def _parse_registration(credential: Mapping[str, Any]) -> RegistrationCredential:
    return parse_registration_credential_json(dict(credential))


def _parse_authentication(credential: Mapping[str, Any]) -> AuthenticationCredential:
    return parse_authentication_credential_json(dict(credential))
