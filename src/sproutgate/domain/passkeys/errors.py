"""Errors of passkeys. Codes are stable: never renamed."""

from __future__ import annotations

from sproutgate.domain.errors import Conflict, DomainError, NotFound, Unauthorized


class PasskeyRejected(Unauthorized):
    """An assertion that does not verify: a wrong signature (another authenticator), another
    origin or relying party, no user verification, a signature counter that went back, a backup
    eligibility that changed, or a user handle that is not the credential's owner's."""

    code = "passkey_rejected"


class PasskeyNotRecognized(Unauthorized):
    """An assertion by a credential that is not registered here (never, or removed since)."""

    code = "passkey_not_recognized"


class PasskeyChallengeInvalid(Unauthorized):
    """A response to a challenge that is unknown, already used, expired, or was issued to another
    browser, user or sign-in: start the ceremony again."""

    code = "passkey_challenge_invalid"


class PasskeyRegistrationFailed(DomainError):
    """A registration response that does not verify (malformed, another origin, no user
    verification, an unsupported algorithm). A 400."""

    code = "passkey_registration_failed"


class PasskeyAlreadyRegistered(Conflict):
    """The authenticator's credential is registered already (to this or another account)."""

    code = "passkey_already_registered"


class TooManyPasskeys(Conflict):
    """The user has ``MAX_PASSKEYS_PER_USER`` passkeys: remove one before adding another."""

    code = "too_many_passkeys"


class PasskeyNotFound(NotFound):
    """No passkey of the caller's has this id."""

    code = "passkey_not_found"


class NoPasskeys(Conflict):
    """A passkey was asked for as the second step, but the user has none."""

    code = "no_passkeys"
