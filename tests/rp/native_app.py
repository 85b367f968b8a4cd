"""A native (desktop or mobile) app that signs a person in through SproutGate as RFC 8252 asks:
in the system browser, back to a loopback redirect on a port the OS picks (§7.3), with PKCE
(§8.1), using Authlib's OAuth 2.0 client; the ID token is checked with PyJWT against the JWKS.
docs/oidc.md quotes it; tests/rp/test_rp_authlib.py runs it with Chromium as the browser."""

# --8<-- [start:native-app]
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import jwt  # PyJWT
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client


class _Loopback(HTTPServer):
    returned: str | None = None  # the URL the browser came back to


class _Return(BaseHTTPRequestHandler):
    """Answers the browser's return to the loopback redirect URI and keeps its URL."""

    server: _Loopback

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path.startswith("/callback"):
            self.server.returned = f"http://127.0.0.1:{self.server.server_port}{self.path}"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        self.wfile.write(b"Signed in: you can close this window and go back to the app.")

    def log_message(self, *args: Any) -> None:
        pass


def sign_in(
    issuer: str, client_id: str, open_browser: Callable[[str], Any] = webbrowser.open
) -> dict[str, Any]:
    """Sign the person in; returns the tokens (``access_token``, ``refresh_token``, ``id_token``)
    and ``claims``, the checked ID token's claims. Raises when anything does not match."""
    metadata = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    listener = _Loopback(("127.0.0.1", 0), _Return)  # a free port: any port matches (RFC 8252 §7.3)
    redirect_uri = f"http://127.0.0.1:{listener.server_port}/callback"
    nonce, verifier = generate_token(24), generate_token(48)
    with OAuth2Client(
        client_id,  # a public client: no secret in an app people download
        scope="openid profile offline_access",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    ) as client:
        url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        open_browser(url)
        while listener.returned is None:
            listener.handle_request()
        listener.server_close()
        # Checks the state, then swaps the code and the PKCE verifier for the tokens.
        token = client.fetch_token(
            metadata["token_endpoint"],
            authorization_response=listener.returned,
            state=state,
            code_verifier=verifier,
        )
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token["id_token"])
    claims = jwt.decode(
        token["id_token"], signing_key, algorithms=["ES256"], audience=client_id, issuer=metadata["issuer"]
    )
    if claims.get("nonce") != nonce:
        raise ValueError("the ID token was not issued for this sign-in")
    return {**token, "claims": claims}


def renew(issuer: str, client_id: str, refresh_token: str) -> dict[str, Any]:
    """New tokens for the refresh token (which is rotated: keep the new one)."""
    metadata = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    with OAuth2Client(client_id) as client:
        return dict(client.refresh_token(metadata["token_endpoint"], refresh_token=refresh_token))


# --8<-- [end:native-app]
