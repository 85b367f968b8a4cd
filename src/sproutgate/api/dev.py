"""The dev mailbox: mail that would have gone out, readable while no SMTP host is configured.
Loopback clients only."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from sproutgate.api.deps import api_hooks, get_services
from sproutgate.domain.errors import NotFound
from sproutgate.domain.registry import DomainServices

router = APIRouter()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip().strip('[]"')).is_loopback
    except ValueError:
        return host in ("testclient", "localhost")


def is_loopback_peer(request: Request) -> bool:
    """A client on this machine: a loopback socket peer that forwards for nobody else.

    A reverse proxy on the same host connects from loopback too; the addresses it forwards
    (X-Forwarded-For, X-Real-IP, Forwarded: for=) must then be loopback as well, trusted
    proxy or not, or the mailbox would be open to whoever reaches the proxy."""
    host = request.client.host if request.client else ""
    if not _is_loopback(host):
        return False
    hops = request.headers.get("x-forwarded-for", "").split(",")
    hops.append(request.headers.get("x-real-ip", ""))
    for element in request.headers.get("forwarded", "").replace(",", ";").split(";"):
        name, _, value = element.strip().partition("=")
        if name.lower() == "for":
            hops.append(value.rsplit(":", 1)[0] if value.count(":") == 1 else value)
    return all(_is_loopback(h) for h in hops if h.strip())


def require_dev_mailbox(request: Request, services: DomainServices) -> None:
    if not services.settings.dev_mailbox_enabled or not is_loopback_peer(request):
        raise NotFound("route_not_found")


@router.get("/dev/mailbox", include_in_schema=False)
async def dev_mailbox(
    request: Request, to: str | None = None, services: DomainServices = Depends(get_services)
) -> Response:
    """Messages the dev mailbox holds, newest first (JSON; the pages' HTML for a browser)."""
    require_dev_mailbox(request, services)
    rows = await services.mail_outbox.dev_mailbox(to)
    page = api_hooks(request).mailbox_page
    if page is not None and "text/html" in request.headers.get("accept", ""):
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
