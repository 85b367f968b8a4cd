"""Pure ASGI middleware, one layer: body size limit, security headers, and an access log that never writes
query strings (they may carry the admin token). The caller's language needs none: it is
negotiated where it is used (api.problems.lang_of)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sproutgate import i18n

access_log = logging.getLogger("sproutgate.access")

Scope = dict[str, Any]


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class EdgeMiddleware:
    """The one middleware every HTTP request passes: bodies over ``max_bytes`` (declared or
    streamed) answer 413 problem+json, every response gets the baseline security headers, and
    the access log gets a line without the query string. One layer rather than two: each
    layer wraps ``send`` again, on every request."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_with_headers(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                existing = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in existing]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._limit_body(scope, receive, send_with_headers)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                access_log.info(
                    '%s "%s %s" %d %.1fms',
                    client[0],
                    scope.get("method", "-"),
                    scope.get("path", "-"),  # path only: queries may hold secrets
                    status,
                    (time.perf_counter() - start) * 1000,
                )

    async def _limit_body(self, scope: Scope, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is None and b"transfer-encoding" not in headers:
            # No body (HTTP/1.1 has one only with either header): nothing to count.
            await self.app(scope, receive, send)
            return
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await self._reject(scope, send)
                return
        received = 0
        response_started = False
        exceeded = False

        async def limited_receive() -> Any:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _TooLarge()
            return message

        async def tracking_send(message: Any) -> None:
            # The framework may turn _TooLarge into its own error response (FastAPI answers
            # 400 for any failure while reading the body); answer 413 in its place.
            nonlocal response_started
            if exceeded:
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await self._reject(scope, send)
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        lang = i18n.negotiate(headers.get(b"accept-language", b"").decode("latin-1"))
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Payload Too Large",
                "status": 413,
                "detail": i18n.t("payload_too_large", lang),
                "instance": scope.get("path", ""),
                "code": "payload_too_large",
            },
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
