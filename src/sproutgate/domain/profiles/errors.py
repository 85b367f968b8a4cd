"""Errors of profiles and user look-ups. Codes are stable: never renamed."""

from __future__ import annotations

from sproutgate.domain.errors import NotFound


class UserNotFound(NotFound):
    """No user with that id, account name or address (or not visible to the caller)."""

    code = "user_not_found"
