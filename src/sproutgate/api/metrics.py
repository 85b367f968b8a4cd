"""``GET /metrics``: the Prometheus text format, from ``domain.monitoring``.

Who may read it is the domain's rule (``domain.monitoring.rules.may_scrape``); this face tells
it the bearer token presented, whether the caller is a client on this machine (the dev
mailbox's test, ``api.dev.is_loopback_peer``: a loopback client that forwards for nobody else,
so a reverse proxy on the same host does not open it to the world) and whether it names the
machine by a loopback name (``api.dev.is_loopback_host``: a DNS-rebinding page cannot). Refusals are problems:
401 when SPROUTGATE_METRICS_TOKEN is set, 403 when it is not.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from sproutgate.api.deps import bearer_token, get_services
from sproutgate.api.dev import is_loopback_host, is_loopback_peer
from sproutgate.domain.registry import DomainServices

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: DomainServices = Depends(get_services)) -> Response:
    """Prometheus metrics of this server (and, under ``--workers N``, of all its workers)."""
    services.monitoring.authorize_scrape(
        bearer_token(request), is_loopback_peer(request), loopback_name=is_loopback_host(request)
    )
    scrape = await services.monitoring.scrape()
    return Response(scrape.body, media_type=scrape.content_type, headers={"Cache-Control": "no-store"})
