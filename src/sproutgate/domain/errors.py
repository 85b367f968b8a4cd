"""The shared kernel of domain errors: one base class per kind of answer (bad input, not
authenticated, forbidden, not found, conflict, rate limited, unavailable). Each aggregate's
``errors.py`` adds its specific errors as subclasses. Each error carries a stable
machine-readable ``code`` that never changes once shipped; each face maps the base classes to
its status and localised text in one place."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"
    # Names of ``params`` that belong in the error body (an mfa_token, say); each face renders
    # them under its own spelling of the name. Every other param stays off the wire.
    public: tuple[str, ...] = ()

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


class Unauthorized(DomainError):
    """The caller did not prove who they are (a 401 on every face)."""

    code = "unauthorized"


class NotAuthenticated(Unauthorized):
    """No valid bearer credential: missing, malformed, expired or revoked."""

    code = "not_authenticated"


class Forbidden(DomainError):
    code = "forbidden"


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
