"""The dev mailbox: mail that would have gone out, readable while no SMTP host is configured.
Loopback clients naming the machine by a loopback name only."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from sproutgate.api.deps import api_hooks, client_ip, get_services
from sproutgate.domain.errors import NotFound
from sproutgate.domain.registry import DomainServices

router = APIRouter()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip().strip('[]"')).is_loopback
    except ValueError:
        return host in ("testclient", "localhost")


def _named_clients(request: Request) -> list[str]:
    """Every address a forwarding header names (X-Forwarded-For, X-Real-IP, Forwarded: for=),
    trusted or not. Not a client-address resolution (that is ``request.client.host``): only
    "does this request speak for anyone else"."""
    named = request.headers.get("x-forwarded-for", "").split(",")
    named.append(request.headers.get("x-real-ip", ""))
    for element in request.headers.get("forwarded", "").replace(",", ";").split(";"):
        name, _, value = element.strip().partition("=")
        if name.lower() == "for":
            named.append(value.rsplit(":", 1)[0] if value.count(":") == 1 else value)
    return [h for h in named if h.strip()]


def is_loopback_peer(request: Request) -> bool:
    """A client on this machine: the client (``request.client.host``, resolved once by
    api.middleware.ProxyHeaders) is loopback, and the request forwards for nobody else.

    A reverse proxy on the same host that is not in SPROUTGATE_TRUSTED_PROXIES connects from
    loopback too; the addresses it forwards must then be loopback as well, or the mailbox would
    be open to whoever reaches the proxy."""
    if not _is_loopback(client_ip(request)):
        return False
    return all(_is_loopback(h) for h in _named_clients(request))


def _host_name(header: str) -> str | None:
    """The host of a Host header, lower case, without its port (``[::1]:8080`` -> ``::1``);
    None when the header is malformed."""
    header = header.strip().lower()
    if header.startswith("["):
        name, bracket, port = header[1:].partition("]")
        if not bracket:
            return None
    else:
        name, colon, digits = header.partition(":")
        port = colon + digits
    if port and not (port.startswith(":") and port[1:].isdigit()):
        return None
    return name or None


def is_loopback_host(request: Request) -> bool:
    """The request names this machine by a loopback name: ``localhost``, a loopback address
    (``127.0.0.1``, ``[::1]``), with any port.

    A page that rebinds its own DNS name to 127.0.0.1 makes the victim's browser send that name
    as the Host header; it cannot make it one of these, so it never reads the mailbox."""
    name = _host_name(request.headers.get("host", ""))
    if name is None:
        return False
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def dev_mailbox_open(request: Request, services: DomainServices) -> bool:
    """Whether this request may read the dev mailbox: it is on (no SMTP), the client is on this
    machine, and it names the machine by a loopback name."""
    return services.settings.dev_mailbox_enabled and is_loopback_peer(request) and is_loopback_host(request)


@router.get("/dev/mailbox", include_in_schema=False)
async def dev_mailbox(
    request: Request, to: str | None = None, services: DomainServices = Depends(get_services)
) -> Response:
    """Messages the dev mailbox holds, newest first (JSON; the pages' HTML for a browser)."""
    page = api_hooks(request).mailbox_page
    if "text/html" not in request.headers.get("accept", ""):
        page = None
    if not dev_mailbox_open(request, services):
        # A browser gets the pages' 404 page (given None), anything else problem+json.
        if page is not None:
            return await page(request, None)
        raise NotFound("route_not_found")
    rows = await services.mail_outbox.dev_mailbox(to)
    if page is not None:
        return await page(request, rows)
    return JSONResponse(
        [
            {
                "id": r.id,
                "message_id": r.message_id,
                "to": r.to_addr,
                "subject": r.subject,
                "text": r.text_body,
                "kind": r.kind,
                "status": r.status,
                "time": r.created_at.isoformat().replace("+00:00", "Z"),
            }
            for r in rows
        ],
        headers={"Cache-Control": "no-store"},
    )
