"""OpenID Connect provider endpoints spoken by apps, not people: discovery
(``/.well-known/openid-configuration``), ``/oauth2/token``, ``/oauth2/userinfo``,
``/oauth2/revoke`` (RFC 7009) and ``/oauth2/introspect`` (RFC 7662).

Thin: each parses the OAuth wire format (form-encoded parameters, client authentication by
``client_secret_basic`` or ``client_secret_post``, bearer tokens) and calls ``OidcService``.
Errors are OAuth's own JSON (RFC 6749 §5.2, RFC 6750 §3), not problem+json: that is what stock
client libraries read. These endpoints use no cookies, so any origin may call them (a
single-page app's token requests): ``Access-Control-Allow-Origin: *`` without credentials."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from sproutgate.api.deps import bearer_token, context_of, get_services
from sproutgate.domain.errors import RateLimited
from sproutgate.domain.oidc.errors import InvalidAccessToken, InvalidClientError, OAuthError
from sproutgate.domain.oidc.rules import provider_metadata
from sproutgate.domain.oidc.service import ClientCredentials
from sproutgate.domain.registry import DomainServices

# Not in /openapi.json: these endpoints speak OAuth's wire format (form bodies, RFC 6749 JSON
# errors rather than problem+json), described by the standards and by the discovery document.
router = APIRouter(tags=["oidc"], include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}
FORM = "application/x-www-form-urlencoded"


def _error(exc: OAuthError | RateLimited, bearer: bool = False) -> JSONResponse:
    """The OAuth error answer for ``exc``: 400 JSON (RFC 6749 §5.2), ``invalid_client`` 401
    with ``WWW-Authenticate: Basic``, bearer-token errors 401/403 with ``WWW-Authenticate:
    Bearer`` (RFC 6750 §3), a rate limit 429 with ``Retry-After``."""
    headers = {**NO_STORE, "Access-Control-Allow-Origin": "*"}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        body = {"error": "temporarily_unavailable", "error_description": "too many requests"}
        return JSONResponse(body, status_code=429, headers=headers)
    body = {"error": exc.code}
    if exc.description:
        body["error_description"] = exc.description
    status = 400
    if isinstance(exc, InvalidClientError):
        status = 401
        headers["WWW-Authenticate"] = 'Basic realm="sproutgate"'
    elif bearer or isinstance(exc, InvalidAccessToken):
        status = 403 if exc.code == "insufficient_scope" else 401
        headers["WWW-Authenticate"] = f'Bearer realm="sproutgate", error="{exc.code}"'
    return JSONResponse(body, status_code=status, headers=headers)


async def _form(request: Request) -> dict[str, str]:
    """The form-encoded body, each parameter once (RFC 6749 §3.2). Raises OAuthError."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise OAuthError("invalid_request", f"the body must be {FORM}")
    form = await request.form()
    out: dict[str, str] = {}
    for key in form:
        values = form.getlist(key)
        if len(values) != 1 or not isinstance(values[0], str):
            raise OAuthError("invalid_request", f"{key} must be given once")
        out[key] = values[0]
    return out


def _client_credentials(request: Request, form: dict[str, str]) -> ClientCredentials | None:
    """The client's credentials (RFC 6749 §2.3.1): HTTP Basic with the form-encoded id and
    secret, or ``client_id``/``client_secret`` in the body, never both; a public client names
    itself with ``client_id`` alone. Raises OAuthError, InvalidClientError."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        if "client_secret" in form:
            raise OAuthError("invalid_request", "use one client authentication method")
        try:
            # ValueError too: b64decode refuses a str with non-ASCII characters that way (a
            # header byte 0xE9 arrives as "é"), and it is the caller's header.
            raw = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidClientError(description="malformed Basic credentials") from None
        client_id, sep, secret = raw.partition(":")
        if not sep:
            raise InvalidClientError(description="malformed Basic credentials")
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        if form.get("client_id") not in (None, client_id):
            raise OAuthError("invalid_request", "client_id differs from the authenticated client")
        return ClientCredentials(client_id, secret, "client_secret_basic")
    if "client_id" not in form:
        return None
    if "client_secret" in form:
        return ClientCredentials(form["client_id"], form["client_secret"], "client_secret_post")
    return ClientCredentials(form["client_id"], None, "none")


@router.get("/.well-known/openid-configuration")
async def openid_configuration(services: DomainServices = Depends(get_services)) -> JSONResponse:
    """OpenID Provider metadata (OpenID Connect Discovery 1.0 §3)."""
    return JSONResponse(
        provider_metadata(services.oidc.issuer),
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


@router.options("/.well-known/openid-configuration", include_in_schema=False)
@router.options("/oauth2/token", include_in_schema=False)
@router.options("/oauth2/userinfo", include_in_schema=False)
@router.options("/oauth2/revoke", include_in_schema=False)
@router.options("/oauth2/introspect", include_in_schema=False)
async def preflight() -> Response:
    """CORS preflight of the endpoints single-page apps call."""
    return Response(status_code=204, headers=CORS)


@router.post("/oauth2/token")
async def token(request: Request, services: DomainServices = Depends(get_services)) -> JSONResponse:
    """Token endpoint (RFC 6749 §3.2): authorization_code with PKCE, refresh_token,
    client_credentials."""
    try:
        form = await _form(request)
        answer = await services.oidc.token(form, _client_credentials(request, form), context_of(request))
    except (OAuthError, RateLimited) as exc:
        return _error(exc)
    body: dict[str, Any] = {
        "access_token": answer.access_token,
        "token_type": answer.token_type,
        "expires_in": answer.expires_in,
        "scope": answer.scope,
    }
    if answer.refresh_token:
        body["refresh_token"] = answer.refresh_token
    if answer.id_token:
        body["id_token"] = answer.id_token
    return JSONResponse(body, headers={**NO_STORE, "Access-Control-Allow-Origin": "*"})


@router.api_route("/oauth2/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request, services: DomainServices = Depends(get_services)) -> JSONResponse:
    """UserInfo endpoint (OpenID Connect Core §5.3): the claims of the access token's scopes."""
    token_value = bearer_token(request)
    if token_value is None:
        # RFC 6750 §3.1: no credentials, no error code.
        headers = {
            **NO_STORE,
            "WWW-Authenticate": 'Bearer realm="sproutgate"',
            "Access-Control-Allow-Origin": "*",
        }
        return JSONResponse({"error": "invalid_request"}, status_code=401, headers=headers)
    try:
        claims = await services.oidc.userinfo(token_value)
    except OAuthError as exc:
        return _error(exc, bearer=True)
    return JSONResponse(claims, headers={**NO_STORE, "Access-Control-Allow-Origin": "*"})


@router.post("/oauth2/revoke")
async def revoke(request: Request, services: DomainServices = Depends(get_services)) -> Response:
    """Token revocation (RFC 7009): ends the grant the token belongs to."""
    try:
        form = await _form(request)
        await services.oidc.revoke(
            form.get("token", ""),
            form.get("token_type_hint"),
            _client_credentials(request, form),
            context_of(request),
        )
    except (OAuthError, RateLimited) as exc:
        return _error(exc)
    return Response(status_code=200, headers={**NO_STORE, "Access-Control-Allow-Origin": "*"})


@router.post("/oauth2/introspect")
async def introspect(request: Request, services: DomainServices = Depends(get_services)) -> JSONResponse:
    """Token introspection (RFC 7662), for confidential clients."""
    try:
        form = await _form(request)
        answer = await services.oidc.introspect(
            form.get("token", ""), _client_credentials(request, form), context_of(request)
        )
    except (OAuthError, RateLimited) as exc:
        return _error(exc)
    return JSONResponse(answer, headers=NO_STORE)
