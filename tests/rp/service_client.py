"""A backend service calling another app of the family with a token of its own (the client
credentials grant, RFC 6749 §4.4: ``sub`` is the client, no person involved), using Authlib; and
the receiving app checking it, locally with the JWKS (RFC 9068) or by introspection (RFC 7662).
docs/oidc.md quotes it; tests/rp/test_rp_authlib.py runs it."""

# --8<-- [start:service]
from typing import Any

import httpx
import jwt  # PyJWT
from authlib.integrations.httpx_client import OAuth2Client


def service_token(issuer: str, client_id: str, client_secret: str, scope: str) -> dict[str, Any]:
    """The calling service: an access token for itself (``access_token``, ``expires_in``,
    ``scope``: among those registered for the client)."""
    metadata = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    with OAuth2Client(client_id, client_secret, scope=scope) as client:  # client_secret_basic
        return dict(client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials"))


def check_access_token(issuer: str, token: str, callers: list[str]) -> dict[str, Any]:
    """The receiving app, offline: signature (ES256, the JWKS), issuer, expiry, the access
    token type (RFC 9068 §2.1) and the caller: a SproutGate access token's ``aud`` is the client
    it was issued to, so ``callers`` lists the client ids this app takes calls from. Does not
    see a revocation or a session that ended."""
    if jwt.get_unverified_header(token).get("typ") != "at+jwt":
        raise jwt.InvalidTokenError("not an access token")
    signing_key = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json").get_signing_key_from_jwt(token)
    return jwt.decode(token, signing_key, algorithms=["ES256"], issuer=issuer, audience=callers)


def introspect(issuer: str, client_id: str, client_secret: str, token: str) -> dict[str, Any]:
    """The receiving app, online (a confidential client of its own): ``{"active": false}`` as
    soon as the token is revoked or its session ends."""
    metadata = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    with OAuth2Client(client_id, client_secret, token_endpoint_auth_method="client_secret_basic") as client:
        return client.introspect_token(metadata["introspection_endpoint"], token=token).json()


# --8<-- [end:service]
