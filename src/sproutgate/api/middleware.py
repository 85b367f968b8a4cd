"""Pure ASGI middleware. Outermost, one layer: the request id, body size limit, security headers,
request metrics, and an access log that never writes query strings (they may carry the admin
token). Inside it, ``ProxyHeaders`` (uvicorn's implementation) works out the client address
behind trusted proxies. The caller's language needs none: it is negotiated where it is used
(api.problems.lang_of)."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Protocol, cast

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from sproutgate import i18n

access_log = logging.getLogger("sproutgate.access")

# The id of the request being handled in this context (None outside requests).
REQUEST_ID: ContextVar[str | None] = ContextVar("sproutgate_request_id", default=None)

Scope = dict[str, Any]

# An X-Request-ID a trusted proxy sends is kept when it looks like an id: letters, digits and
# ``._:+=/-``, at most 128 characters (a UUID, a trace id, a load balancer's id all fit). Anything
# else is replaced: it goes into every log line and back out in a header.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")
REQUEST_ID_HEADER = b"x-request-id"
UNMATCHED_ROUTE = "unmatched"


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request: for problem bodies, and
    for every log line (the entry points hand it to ``infra.logs.configure``)."""
    return REQUEST_ID.get()


class RequestMetrics(Protocol):
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (``infra.metrics.PrometheusMetrics``)."""
        ...


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class EdgeMiddleware:
    """The one middleware every HTTP request passes, outermost: it gives the request its id
    (``request_id``; ``current_request_id()`` answers it for every log line and problem body of
    the request, and it goes back in the ``X-Request-ID`` answer header), bodies over
    ``max_bytes`` (declared or streamed) answer 413 problem+json, every response gets the
    baseline security headers, ``metrics`` counts the request by route template, and the access
    log gets a line without the query string. One layer rather than several: each layer wraps
    ``send`` again, on every request.

    ``trusted_proxies``: SPROUTGATE_TRUSTED_PROXIES (addresses or networks). It must see the
    socket peer, so it stays outside any layer that rewrites ``scope["client"]``."""

    def __init__(
        self,
        app: Any,
        max_bytes: int,
        *,
        trusted_proxies: Iterable[str] = (),
        metrics: RequestMetrics | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics
        self._proxies = _networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        request_id = self.request_id(scope)
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        context = REQUEST_ID.set(request_id)

        async def send_with_headers(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                existing = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in existing]
                headers.append(id_header)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._limit_body(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - start
            method = scope.get("method", "-")
            route = route_template(scope)
            if self.metrics is not None and status:
                self.metrics.observe_request(route, method, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                client = (scope.get("client") or ("-", 0))[0]
                path = scope.get("path", "-")  # path only: queries may hold secrets
                duration_ms = round(seconds * 1000, 1)
                access_log.info(
                    '%s "%s %s" %d %.1fms',
                    client,
                    method,
                    path,
                    status,
                    duration_ms,
                    extra={
                        "client": client,
                        "method": method,
                        "path": path,
                        "route": route,
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )
            REQUEST_ID.reset(context)

    def request_id(self, scope: Scope) -> str:
        """The X-Request-ID a trusted proxy sent, when it is well formed; otherwise a new one
        (32 hex digits). A client that is not a trusted proxy cannot choose the id."""
        if self._proxies:
            for name, value in scope.get("headers") or ():
                if name == REQUEST_ID_HEADER:
                    candidate = value.decode("latin-1")
                    peer = (scope.get("client") or ("", 0))[0]
                    if REQUEST_ID_RE.fullmatch(candidate) and _in_networks(peer, self._proxies):
                        return candidate
                    break
        return os.urandom(16).hex()  # 128 random bits, a third of what uuid4() costs

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
                "request_id": REQUEST_ID.get(),
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


def route_template(scope: Scope) -> str:
    """The template of the route that answered (``/api/admin/users/{account}``), or
    ``UNMATCHED_ROUTE``: never the raw path, so metrics have one series per route."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED_ROUTE


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """SPROUTGATE_TRUSTED_PROXIES as networks: each entry an address or a network (host bits
    allowed); entries that are neither are ignored."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue
    return tuple(networks)


def _in_networks(host: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


_PEER = "sproutgate.peer"


class ProxyHeaders:
    """The one place the client address is worked out (docs/decisions/client-ip.md).

    uvicorn's ``ProxyHeadersMiddleware`` does the work: when the socket peer is one of
    ``trusted`` (SPROUTGATE_TRUSTED_PROXIES: addresses or networks), ``scope["client"]`` becomes
    the right-most X-Forwarded-For hop that is not itself trusted (the left-most when every hop
    is), and ``scope["scheme"]`` follows X-Forwarded-Proto. Everything downstream reads
    ``request.client.host``. One check is added: a "hop" that is not an IP address (a proxy
    passing junk along) is not believed, and the socket peer stays the client."""

    def __init__(self, app: Any, trusted: Iterable[str]) -> None:
        self.app = app
        self._resolve: Any = ProxyHeadersMiddleware(
            cast(Any, self._checked), trusted_hosts=trusted_networks(trusted)
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope[_PEER] = scope.get("client")
        await self._resolve(scope, receive, send)

    async def _checked(self, scope: Scope, receive: Any, send: Any) -> None:
        peer = scope.pop(_PEER, None)
        client = scope.get("client")
        if client is not peer and client is not None and not _is_ip_address(client[0]):
            scope["client"] = peer
        await self.app(scope, receive, send)


def trusted_networks(entries: Iterable[str]) -> list[str]:
    """SPROUTGATE_TRUSTED_PROXIES as uvicorn wants them, read by ``_networks`` like everywhere:
    each entry an address or a network (host bits allowed: ``10.1.2.3/8`` means ``10.0.0.0/8``);
    entries that are neither are ignored, ``*`` included (trusting everyone would take the
    left-most, client-written hop)."""
    return [str(n.network_address) if n.num_addresses == 1 else str(n) for n in _networks(entries)]


def _is_ip_address(host: str) -> bool:
    # Longer than any written address (and than the 64 characters stored for it): never
    # cached, so junk cannot pin large keys.
    return len(host) <= 64 and _parses_as_ip_address(host)


@lru_cache(maxsize=4096)
def _parses_as_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
