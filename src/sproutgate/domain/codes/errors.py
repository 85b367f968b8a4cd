"""Errors of one-time codes. Codes are stable: never renamed."""

from __future__ import annotations

from sproutgate.domain.errors import Unauthorized


class InvalidCode(Unauthorized):
    """A code that is wrong, expired, used up or was never issued (one answer for all four)."""

    code = "invalid_code"
