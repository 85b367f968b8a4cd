"""Errors of the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0). Answered with
an error page, never by redirect: a request that cannot be trusted names no place to go."""

from __future__ import annotations

from sproutgate.domain.errors import DomainError


class InvalidLogoutRequest(DomainError):
    """An end-session request the provider refuses (§2, §4): an ``id_token_hint`` it did not
    issue, a ``client_id`` unknown or other than the hint's audience, a parameter repeated.
    ``code`` is the OAuth ``error`` value (``invalid_request``), ``description`` a short
    English text for developers."""

    code = "invalid_request"

    def __init__(self, description: str) -> None:
        super().__init__("invalid_request", description=description)
        self.description = description
