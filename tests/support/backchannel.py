"""A real back-channel logout receiver for the tests: a small HTTP server (the standard
library's) on a loopback port, as a client application would run one, and the checks a client
makes of a logout token (OpenID Connect Back-Channel Logout 1.0 §2.6), written from the spec
with PyJWT, not with SproutGate's code.

``LogoutReceiver`` keeps every POST it got; ``stop()`` and ``start()`` take it down and bring it
back on the same port (a client that is away), ``answer_status`` makes it refuse."""

from __future__ import annotations

import atexit
import json
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

from support.servers import LOOPBACK, free_port
from support.waiting import wait_until

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass(frozen=True)
class ReceivedLogout:
    path: str
    content_type: str
    form: dict[str, list[str]]

    @property
    def token(self) -> str:
        return self.form["logout_token"][0]


class LogoutReceiver:
    """POST /backchannel answers ``answer_status`` (200 by default) and records the request."""

    def __init__(self) -> None:
        self.port = free_port()
        self.answer_status = 200
        self._received: list[ReceivedLogout] = []
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        atexit.register(self.stop)

    @property
    def uri(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/backchannel"

    @property
    def received(self) -> list[ReceivedLogout]:
        with self._cond:
            return list(self._received)

    def start(self) -> LogoutReceiver:
        if self._server is not None:
            return self
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                got = ReceivedLogout(
                    self.path,
                    self.headers.get("Content-Type", ""),
                    urllib.parse.parse_qs(body, keep_blank_values=True),
                )
                status = receiver.answer_status
                self.send_response(status)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "0")
                self.end_headers()
                if 200 <= status < 300:
                    with receiver._cond:
                        receiver._received.append(got)
                        receiver._cond.notify_all()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    async def wait_for(self, count: int, within: float = 15.0) -> list[ReceivedLogout]:
        """Wait (without blocking the event loop: the server under test may run on it) until
        ``count`` logouts were accepted; all of them."""
        return await wait_until(
            lambda: (got := self.received) and len(got) >= count and got,
            within=within,
            what=f"{count} back-channel logouts",
        )

    def __enter__(self) -> LogoutReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def validate_logout_token(token: str, jwks: dict[str, Any], issuer: str, client_id: str) -> dict[str, Any]:
    """What a client checks (§2.6), raising AssertionError or PyJWT's errors: explicitly typed
    ``logout+jwt``; signed with a key of the JWKS with the algorithm it names (not ``none``);
    ``iss``, ``aud``, ``iat``, ``exp`` valid; ``jti`` present; ``sub`` and/or ``sid``; an
    ``events`` object with the back-channel logout member holding a JSON object; no ``nonce``.
    Returns the claims."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "logout+jwt", header
    assert header["alg"] == "ES256", header
    keys = {k["kid"]: k for k in jwks["keys"]}
    assert header["kid"] in keys, (header, list(keys))
    key = jwt.PyJWK.from_dict(keys[header["kid"]])
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["ES256"],
        audience=client_id,
        issuer=issuer,
        options={"require": ["iss", "aud", "iat", "exp", "jti"]},
        leeway=5,
    )
    assert claims.get("sub") or claims.get("sid"), claims
    assert isinstance(claims["events"], dict), claims
    assert claims["events"].get(EVENT) == {}, claims
    assert "nonce" not in claims, claims
    assert 0 < claims["exp"] - claims["iat"] <= 300, claims  # short-lived
    return claims


def jwks_of(text: str) -> dict[str, Any]:
    return json.loads(text)
