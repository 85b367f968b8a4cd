"""Back-channel logout rules: what a logout token says, a delivery's statuses, when one is due
and how it is retried. Pure: no I/O.

A delivery's life is the mail outbox's (``domain.mail.rules``): ``pending`` (waiting for
``next_attempt_at``) -> ``sending`` (claimed by one worker until ``locked_until``) ->
``delivered``; a failed attempt goes back to ``pending`` after a backoff, or to ``failed`` once
its attempt budget is spent.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sproutgate.config import Settings
from sproutgate.domain.mail.rules import RetryPolicy

# OpenID Connect Back-Channel Logout 1.0 §2.4: the one event a logout token carries, and the
# JOSE ``typ`` it is explicitly typed with (§2.4, "logout+jwt", RFC 8725 §3.11).
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"
# A logout token is signed at each delivery attempt and is good for this long (seconds): the
# spec recommends a short life (§2.4, "exp ... a few minutes"), enough for clock skew.
LOGOUT_TOKEN_TTL_SECONDS = 120
# The form field the token travels in (§2.5): application/x-www-form-urlencoded.
LOGOUT_TOKEN_FIELD = "logout_token"


class DeliveryStatus(StrEnum):
    """Where a back-channel delivery is; stored with it, so values never change."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"  # the client answered 2xx (§2.8)
    FAILED = "failed"  # out of attempts: kept for operators, never sent again by itself


DUE_WAITING = DeliveryStatus.PENDING
DUE_LEASED = DeliveryStatus.SENDING
BATCH_SIZE = 20  # due deliveries claimed per pass; a full batch means look again at once
DELIVERIES_AT_ONCE = 4  # POSTs in flight per process
LAST_ERROR_MAX = 1000  # characters of a delivery error kept with it
# Delivered and failed deliveries are kept this long for operators, then purged (housekeeping).
DONE_DELIVERY_RETENTION = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class LogoutTarget:
    """One logout token to queue: ``client_id`` (the token's ``aud``) is told at ``uri`` (its
    registered ``backchannel_logout_uri``) that session ``session_id`` (``sid``) of user
    ``user_id`` (``sub``) ended."""

    client_id: str
    uri: str
    user_id: str
    session_id: str


def retry_policy(settings: Settings) -> RetryPolicy:
    """Backoff and budget of deliveries (``SPROUTGATE_BACKCHANNEL_LOGOUT_*``): the mail
    outbox's rule, with numbers of its own."""
    return RetryPolicy(
        settings.backchannel_logout_retry_base_seconds,
        settings.backchannel_logout_retry_max_seconds,
        settings.backchannel_logout_max_attempts,
    )


def lease(timeout_seconds: float) -> timedelta:
    """How long a claimed delivery stays with its worker: three request timeouts, at least a
    minute (a worker that died mid-POST leaves it to another after that)."""
    return timedelta(seconds=max(60.0, timeout_seconds * 3))


def new_jti() -> str:
    """A logout token's ``jti`` (§2.4): 128 random bits, URL-safe. Fixed per delivery, so a
    client that saw the first attempt can recognise a retry (§2.6, replay)."""
    return secrets.token_urlsafe(16)


def logout_token_claims(
    issuer: str, client_id: str, user_id: str, session_id: str, jti: str
) -> dict[str, Any]:
    """The claims of a logout token (OpenID Connect Back-Channel Logout 1.0 §2.4) but its
    times: ``iss``, ``aud`` (the client id), ``jti``, ``sub`` (the user's id), ``sid`` (the
    browser sign-in, as the ID tokens of that client name it) and the ``events`` member naming
    the back-channel logout event with an empty object. The signer adds ``iat`` and ``exp``
    (``LOGOUT_TOKEN_TTL_SECONDS`` later) when it signs, at each attempt. Never a ``nonce``
    (§2.4: its presence makes the token invalid)."""
    return {
        "iss": issuer,
        "aud": client_id,
        "jti": jti,
        "sub": user_id,
        "sid": session_id,
        "events": {LOGOUT_EVENT: {}},
    }


def error_text(exc: BaseException) -> str:
    """A delivery error as kept with it (type and text, bounded)."""
    return f"{type(exc).__name__}: {exc}"[:LAST_ERROR_MAX]
