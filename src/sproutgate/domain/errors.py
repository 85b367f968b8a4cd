"""Domain errors. Each carries a stable machine-readable ``code`` that never changes once
shipped; each API face maps codes to HTTP status and localised text in one place."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"

    def __init__(self, code: str | None = None, **params: Any) -> None:
        if code:
            self.code = code
        self.params = params
        super().__init__(self.code)


class InvalidInput(DomainError):
    """A field breaks a rule. ``fields`` maps field name -> error code."""

    code = "invalid_input"

    def __init__(self, fields: dict[str, str], code: str | None = None) -> None:
        super().__init__(code or "invalid_input", fields=fields)
        self.fields = fields


class InvalidCredentials(DomainError):
    code = "invalid_credentials"


class InvalidCode(DomainError):
    code = "invalid_code"


class InvalidRefreshToken(DomainError):
    code = "invalid_refresh_token"


class NotAuthenticated(DomainError):
    code = "not_authenticated"


class AccountDisabled(DomainError):
    code = "account_disabled"


class Forbidden(DomainError):
    code = "forbidden"


class RecentAuthRequired(Forbidden):
    code = "recent_auth_required"


class WrongCurrentPassword(Forbidden):
    """The ``currentPassword`` given with a password change is wrong. A 403, not a 401: the
    caller's token is fine, and clients sign users out on 401."""

    code = "wrong_current_password"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after=retry_after)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailable(DomainError):
    code = "service_unavailable"
