"""Rules of second factors, as pure functions: which factors exist and what they prove (``amr``),
authenticator codes (RFC 6238 through pyotp), recovery codes, and sign-in challenge tokens.

A passkey (WebAuthn, domain/passkeys) is another ``Factor``: ``sign_in_factors`` offers it as a
second step, and the status lists it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from enum import StrEnum

import pyotp

from sproutgate.domain.errors import InvalidInput


class Factor(StrEnum):
    """A way to prove a second thing besides the password. Values are on the wire (the
    ``factors`` of an ``mfa_required`` answer): never renamed."""

    TOTP = "totp"  # a code from an authenticator app
    RECOVERY_CODE = "recovery_code"  # one of the user's single-use recovery codes
    PASSKEY = "passkey"  # WebAuthn (domain/passkeys), on the pages


# RFC 8176 authentication method references: what each factor adds to ``pwd`` in an ``amr``
# claim. A recovery code is a one-time password too; a passkey is a key held in hardware
# ("hwk") or software ("swk"), which its ceremony tells.
AMR = {Factor.TOTP: "otp", Factor.RECOVERY_CODE: "otp", Factor.PASSKEY: "hwk"}


def amr_values(factors: list[Factor], password: bool = True) -> list[str]:
    """The ``amr`` of a sign-in that used the password (when ``password``) and ``factors``, in
    RFC 8176 values: e.g. ``["pwd", "otp", "mfa"]``. Two kinds of proof add ``mfa``."""
    values = ["pwd"] if password else []
    for factor in factors:
        if AMR[factor] not in values:
            values.append(AMR[factor])
    if len(values) >= 2:
        values.append("mfa")
    return values


def sign_in_factors(totp_active: bool, has_passkey: bool = False) -> list[Factor]:
    """What may complete a password sign-in's second step; empty when no authenticator app is
    on (then the password alone opens the session). Recovery codes stand in for the app, so
    they are offered whenever the app is on; a passkey is offered besides when the user has one
    (on the pages: API clients cannot perform its ceremony). A passkey alone never makes the
    password step two-step: it is a sign-in method of its own (domain/passkeys)."""
    if not totp_active:
        return []
    return [Factor.TOTP, Factor.RECOVERY_CODE] + ([Factor.PASSKEY] if has_passkey else [])


# -- authenticator apps (RFC 6238) ----------------------------------------------------------
TOTP_ISSUER = "SproutGate"
TOTP_DIGITS = 6
TOTP_STEP_SECONDS = 30
TOTP_DRIFT_STEPS = 1  # a code of the step before or after the current one is accepted too
TOTP_SECRET_CHARS = 32  # base32: 160 bits, the HMAC-SHA-1 key length RFC 4226 recommends
# An enrolment not confirmed with a code within this long is gone (start again).
ENROLMENT_TTL_SECONDS = 15 * 60
TOTP_CODE_RE = re.compile(r"^[0-9]{6}$")


def new_totp_secret() -> str:
    """A fresh authenticator secret: 32 base32 characters from ``secrets`` (pyotp)."""
    return pyotp.random_base32(length=TOTP_SECRET_CHARS)


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, digest=hashlib.sha1, interval=TOTP_STEP_SECONDS)


def otpauth_uri(secret: str, account: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app scans: issuer "SproutGate", the
    account name as the label (Key Uri Format)."""
    return _totp(secret).provisioning_uri(name=account, issuer_name=TOTP_ISSUER)


def totp_step(at: datetime) -> int:
    """The 30-second step (RFC 6238 ``T``) that ``at`` falls in."""
    return int(at.timestamp()) // TOTP_STEP_SECONDS


def totp_matched_step(secret: str, code: str, at: datetime, last_used_step: int | None) -> int | None:
    """The step whose code ``code`` is, among the step of ``at`` and ``TOTP_DRIFT_STEPS`` on
    either side, when that step is later than ``last_used_step`` (each step is accepted once per
    user, RFC 6238 §5.2); else None. Every candidate is computed and compared in constant time,
    whichever matches."""
    if not TOTP_CODE_RE.match(code):
        return None
    totp = _totp(secret)
    now = totp_step(at)
    matched = None
    for step in range(now - TOTP_DRIFT_STEPS, now + TOTP_DRIFT_STEPS + 1):
        fresh = last_used_step is None or step > last_used_step
        if hmac.compare_digest(totp.generate_otp(step), code) and fresh and matched is None:
            matched = step
    return matched


# -- recovery codes ---------------------------------------------------------------------------
RECOVERY_CODES_PER_SET = 10
RECOVERY_CODES_LOW = 2  # at or below this many left, the mail about a used code says so
# Lower-case letters and digits without look-alikes (0 o, 1 i l): 31 symbols; three groups of
# four make 12 symbols, log2(31**12) = 59.4 bits.
RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
RECOVERY_GROUPS = 3
RECOVERY_GROUP_LENGTH = 4
_RECOVERY_LENGTH = RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH
_RECOVERY_SEPARATORS = re.compile(r"[\s\-_]")


def new_recovery_codes(count: int = RECOVERY_CODES_PER_SET) -> list[str]:
    """``count`` fresh codes such as ``k7qm-3xth-9wpa``, from ``secrets``."""
    codes = []
    for _ in range(count):
        symbols = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        groups = [
            symbols[i : i + RECOVERY_GROUP_LENGTH] for i in range(0, _RECOVERY_LENGTH, RECOVERY_GROUP_LENGTH)
        ]
        codes.append("-".join(groups))
    return codes


def normalize_recovery_code(text: str) -> str | None:
    """The 12 symbols of a recovery code as typed (any case, with or without hyphens or
    spaces between groups), or None when it cannot be one."""
    if len(text) > 32:
        return None
    bare = _RECOVERY_SEPARATORS.sub("", text).lower()
    if len(bare) != _RECOVERY_LENGTH or any(c not in RECOVERY_ALPHABET for c in bare):
        return None
    return bare


def recovery_code_hash(key: bytes, user_id: str, code: str) -> str:
    """HMAC-SHA256 (hex) of a normalized recovery code, keyed with the server's code-hashing
    key and bound to its user: the only form stored."""
    msg = f"recovery_code\x00{user_id}\x00{code}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


# -- the code a person types ------------------------------------------------------------------
def code_factor(code: str) -> Factor | None:
    """What a typed code is: six digits are an authenticator code, a recovery code's shape a
    recovery code; None when it is neither."""
    if TOTP_CODE_RE.match(code):
        return Factor.TOTP
    if normalize_recovery_code(code) is not None:
        return Factor.RECOVERY_CODE
    return None


def require_mfa_code(code: str, field: str = "code") -> Factor:
    """The kind of a typed second-factor code. Raises InvalidInput({field:
    "invalid_mfa_code_format"}), a 422: a malformed code is bad input, not a wrong guess."""
    factor = code_factor(code)
    if factor is None:
        raise InvalidInput({field: "invalid_mfa_code_format"})
    return factor


def require_totp_code(code: str, field: str = "code") -> str:
    """``code`` when it is six digits; raises InvalidInput({field: "invalid_code_format"})."""
    if not TOTP_CODE_RE.match(code):
        raise InvalidInput({field: "invalid_code_format"})
    return code


# -- sign-in challenges -----------------------------------------------------------------------
MFA_TOKEN_MAX_ATTEMPTS = 5  # wrong codes after which an mfa_token is dead


def new_mfa_token() -> str:
    """256 random bits, URL-safe base64 (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def hash_mfa_token(token: str) -> str:
    """SHA-256 hex of an ``mfa_token``, the only form stored (256 random bits need no key)."""
    return hashlib.sha256(token.encode()).hexdigest()
