"""Errors of the account rules (sign-up, sign-in, passwords). Codes are stable: never renamed."""

from __future__ import annotations

from sproutgate.domain.errors import Forbidden, Unauthorized


class InvalidCredentials(Unauthorized):
    """Wrong account/email or password; the same answer for an unknown account."""

    code = "invalid_credentials"


class AccountDisabled(Forbidden):
    """The password was right but an administrator disabled the account."""

    code = "account_disabled"


class RecentAuthRequired(Forbidden):
    """The operation needs the current password or a sign-in within ``recent_auth_seconds``."""

    code = "recent_auth_required"


class WrongCurrentPassword(Forbidden):
    """The ``currentPassword`` given with a password change is wrong. A 403, not a 401: the
    caller's token is fine, and clients sign users out on 401."""

    code = "wrong_current_password"


class WrongPassword(Unauthorized):
    """The password given to re-authenticate (deleting the account, changing second factors)
    is wrong. A 401 like a failed sign-in, and counted like one: it re-authenticates the person
    holding the token, whatever the token's age. (``mfa.errors`` re-exports it.)"""

    code = "wrong_password"
