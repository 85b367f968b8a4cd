"""Errors of the OpenID Connect provider. Each carries the OAuth 2.0 error code it is answered
with (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; OpenID Connect Core 1.0 §3.1.2.6): stable,
never renamed."""

from __future__ import annotations

from sproutgate.domain.errors import DomainError


class OAuthError(DomainError):
    """An OAuth 2.0 error answer. ``code`` is the RFC's ``error`` value (``invalid_request``,
    ``invalid_grant``, ``invalid_client``, ``unsupported_grant_type``, ``invalid_scope``,
    ``unauthorized_client``, ``login_required``, ``consent_required``, ``access_denied``,
    ``invalid_token``, ``insufficient_scope``, ``unsupported_token_type`` ...); ``description``
    is a short English text for developers (``error_description``), never a secret."""

    code = "invalid_request"

    def __init__(self, code: str | None = None, description: str = "") -> None:
        super().__init__(code or self.code, description=description)
        self.description = description


class InvalidClientError(OAuthError):
    """Client authentication failed (RFC 6749 §5.2): answered 401 with ``WWW-Authenticate``."""

    code = "invalid_client"


class InvalidGrant(OAuthError):
    """The code or refresh token is unknown, used, expired, of another client or redirect URI,
    or its PKCE verifier does not match (RFC 6749 §5.2)."""

    code = "invalid_grant"


class InvalidAccessToken(OAuthError):
    """A bearer token the userinfo endpoint cannot accept (RFC 6750 §3.1 ``invalid_token``)."""

    code = "invalid_token"


class UnsafeAuthorizationRequest(OAuthError):
    """An authorization request whose client or redirect URI cannot be trusted (unknown
    client, missing or unregistered ``redirect_uri``): RFC 6749 §4.1.2.1 forbids redirecting,
    so the person sees an error page instead."""


class AuthorizationError(OAuthError):
    """An authorization request refused after its redirect URI was verified: the error goes
    back to the client by redirect, with ``state`` (RFC 6749 §4.1.2.1)."""

    def __init__(self, code: str, description: str, *, redirect_uri: str, state: str | None) -> None:
        super().__init__(code, description)
        self.redirect_uri = redirect_uri
        self.state = state
