"""Session rules: the kinds of session each face opens, when a session is active, and how
refresh tokens are stored.

A face never passes lifetimes or refresh flags of its own: it names a ``SessionKind`` and
``session_policy`` turns it into numbers from the one ``Settings``."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sproutgate.config import Settings


class TokenAudience(StrEnum):
    """Who an access token is for (its ``aud`` claim); each surface accepts only its own."""

    API = "sproutgate:api"  # both API faces (runtime access token and the unified token)
    PAGES = "sproutgate:pages"  # the hosted pages' session cookie, never a bearer token


# The JOSE ``typ`` header each audience's tokens carry: API tokens are access tokens in the
# sense of RFC 9068 §2.1 ("at+jwt"); the pages' cookie is a session of its own kind.
TOKEN_TYPES = {TokenAudience.API: "at+jwt", TokenAudience.PAGES: "sproutgate-session+jwt"}


# How a person proved who they are, as Authentication Method Reference values (RFC 8176 §2),
# recorded on the session a sign-in opens and named by the ID tokens of apps signed in by it.
AMR_PASSWORD = ("pwd",)
AMR_PASSWORD_AND_TOTP = ("pwd", "otp", "mfa")
AMR_PASSWORD_AND_RECOVERY_CODE = ("pwd", "mfa")


class SessionKind(StrEnum):
    """Who a session is for; the value is stored on the session row (``auth_sessions.kind``)."""

    RUNTIME = "runtime"  # /api/v1: 1-hour access token + rotating refresh token
    GATE = "gate"  # /api: the unified token (7 days by default), no refresh token
    WEB = "web"  # the hosted pages' cookie session, no refresh token
    # A grant to an app through the OpenID Connect provider (domain/oidc): its lifetimes and
    # tokens are the provider's (domain/oidc/rules.py), not a SessionPolicy.
    OIDC = "oidc"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """What a kind of session gets.

    ``access_ttl_seconds``: lifetime of each access token (seconds); ``lifetime_seconds``: how
    long the session row lives without refreshing (seconds); ``refresh``: whether a rotating
    refresh token is issued; ``audience``: the ``aud`` its access tokens carry (and so the only
    surface that accepts them)."""

    kind: SessionKind
    access_ttl_seconds: int
    lifetime_seconds: int
    refresh: bool
    audience: TokenAudience

    @property
    def token_type(self) -> str:
        """The ``typ`` header of this kind's access tokens."""
        return TOKEN_TYPES[self.audience]


def session_policy(kind: SessionKind, settings: Settings) -> SessionPolicy:
    """The policy for ``kind`` under ``settings``. Raises ValueError for ``OIDC`` (its grants
    are opened by ``OidcService``)."""
    if kind is SessionKind.OIDC:
        raise ValueError("OpenID Connect grants have no SessionPolicy")
    if kind is SessionKind.RUNTIME:
        access = settings.access_token_ttl_seconds
        return SessionPolicy(
            kind, access, max(settings.refresh_token_ttl_seconds, access), True, TokenAudience.API
        )
    if kind is SessionKind.GATE:
        ttl = settings.gate_token_ttl_seconds
        return SessionPolicy(kind, ttl, ttl, False, TokenAudience.API)
    ttl = settings.web_session_ttl_seconds
    return SessionPolicy(kind, ttl, ttl, False, TokenAudience.PAGES)


def session_is_active(
    revoked_at: datetime | None,
    expires_at: datetime,
    user_disabled: bool,
    now: datetime,
    *,
    last_used_at: datetime,
    idle_timeout: timedelta,
) -> bool:
    """The one answer to "does this session still count?": not revoked, not expired (active
    until the instant ``expires_at``, exclusive), not idle (active until the instant
    ``last_used_at + idle_timeout``, exclusive: ``SPROUTGATE_SESSION_IDLE_TIMEOUT_SECONDS``)
    and its user not disabled.

    ``last_used_at`` is the stored ``sessions.last_seen_at``: the refusal is exact with respect
    to it. That value is written at issue, at every refresh, and by an access-token check at
    most once per ``last_used_granularity`` (so it may lag the real last use by that much, and
    an idle session may be refused up to that much early; docs/security.md, "Sessions").

    Every check uses it: access tokens (``SessionService.authenticate``, so the API faces, the
    pages' cookie, the admin guard and the agent), refresh-token rotation, and the list of a
    user's sessions. Storage only looks rows up by key, or pre-filters by index where a list is
    read, and this function decides."""
    return revoked_at is None and now < expires_at and now < last_used_at + idle_timeout and not user_disabled


# How stale the stored last use of a session may get before an access-token check writes it
# again (seconds): one write per session per minute at most, instead of one per request.
LAST_USED_GRANULARITY_SECONDS = 60


def last_used_granularity(idle_timeout: timedelta) -> timedelta:
    """How long after the stored last use an access-token check records a new one: a minute,
    or a quarter of the idle timeout when that is shorter (at least one second), so that the
    early refusal this lag allows stays a small part of the timeout."""
    seconds = min(LAST_USED_GRANULARITY_SECONDS, max(1, int(idle_timeout.total_seconds()) // 4))
    return timedelta(seconds=seconds)


def last_use_is_stale(last_used_at: datetime, now: datetime, idle_timeout: timedelta) -> bool:
    """Whether a check at ``now`` should record a new last use (``last_used_granularity``)."""
    return now - last_used_at >= last_used_granularity(idle_timeout)


class SessionEndReason(StrEnum):
    """Why a session ended: stored in ``sessions.revoked_reason`` (32 characters at most), so
    values never change. Every end goes through ``sessions.service.end_sessions``."""

    LOGOUT = "logout"  # signed out (either API's sign-out, the pages, "sign out everywhere")
    REVOKED = "revoked"  # the user ended it from their list of sessions
    REVOKED_OTHERS = "revoked_others"  # the user ended all their other sessions
    ADMIN_REVOKED = "admin_revoked"  # an administrator ended it (console)
    REFRESH_REUSE = "refresh_token_reuse"  # a refresh token used again after its grace window
    PASSWORD_RESET = "password_reset"
    PASSWORD_CHANGED = "password_changed"
    ADMIN_PASSWORD = "admin_password"
    DISABLED = "disabled"
    MFA_DISABLED = "mfa_disabled"
    MFA_RESET = "mfa_reset"
    PASSKEY_REMOVED = "passkey_removed"
    IMPORT_UPDATE = "import_update"
    ACCOUNT_DELETED = "account_deleted"
    CODE_REUSE = "code_reuse"  # an app's authorization code used twice (RFC 6749 §4.1.2)
    APP_REVOKED = "app_revoked"  # the app's token revoked (RFC 7009) or the app disconnected
    END_SESSION = "end_session"  # an app signed the person out (/oauth2/logout, RP-Initiated Logout)
    APP_NOW_THIRD_PARTY = "app_now_third_party"  # a grant made without consent, its app no longer first-party


def hash_refresh_token(token: str) -> str:
    """SHA-256 hex of a refresh token, the only form stored.

    Refresh tokens carry 256 bits of entropy, so a fast unkeyed hash is enough to make a stolen
    database useless; lookups by hash are constant-time with respect to the secret."""
    return hashlib.sha256(token.encode()).hexdigest()


def successor_refresh_token(key: bytes, presented: str) -> str:
    """The refresh token that replaces ``presented``: HMAC-SHA256 under the server's chain key,
    URL-safe base64 (43 characters, like the first token of a session).

    Deterministic, so a token used twice inside its grace window yields one successor instead
    of forking the session; unpredictable without the key, and nothing but its hash is stored."""
    mac = hmac.new(key, b"refresh-successor\x00" + presented.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
