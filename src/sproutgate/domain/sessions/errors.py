"""Errors of sessions and tokens. Codes are stable: never renamed."""

from __future__ import annotations

from sproutgate.domain.errors import NotAuthenticated, Unauthorized

__all__ = ["InvalidRefreshToken", "NotAuthenticated"]


class InvalidRefreshToken(Unauthorized):
    """A refresh token that is unknown, expired, of an ended session, or reused after its grace
    window (``params['reused']`` is True then, and the session has been revoked)."""

    code = "invalid_refresh_token"
