"""Errors of second factors. Codes are stable: never renamed."""

from __future__ import annotations

from sproutgate.domain.accounts.errors import WrongPassword  # noqa: F401 - one class for the code
from sproutgate.domain.errors import Conflict, Unauthorized


class MfaRequired(Unauthorized):
    """The password was right and a second factor is on: no session yet. ``params['mfa_token']``
    is traded with a code for the session (``MfaService.complete_sign_in``);
    ``params['factors']`` names what may complete it (``totp``, ``recovery_code`` ...)."""

    code = "mfa_required"
    public = ("mfa_token", "factors")


class InvalidMfaCode(Unauthorized):
    """A code from the authenticator or a recovery code that is wrong, already used, or replayed
    (one answer for all)."""

    code = "invalid_mfa_code"


class InvalidMfaToken(Unauthorized):
    """An ``mfa_token`` that is unknown, used, expired, or dead after too many wrong codes:
    sign in with the password again."""

    code = "invalid_mfa_token"


class ReauthenticationRequired(Unauthorized):
    """Changing factors needs the current password, or a sign-in within ``recent_auth_seconds``."""

    code = "reauthentication_required"


class MfaAlreadyEnabled(Conflict):
    """An authenticator app is already on: turn it off before enrolling another."""

    code = "mfa_already_enabled"


class MfaNotEnabled(Conflict):
    """No authenticator app is on."""

    code = "mfa_not_enabled"


class NoPendingEnrolment(Conflict):
    """No enrolment waits for a code (never started, expired, or already confirmed)."""

    code = "no_pending_enrolment"
