"""create_app(settings): middleware, routers, error handlers. Nothing happens at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from sproutgate.api import dev, metrics
from sproutgate.api.deps import ApiHooks
from sproutgate.api.middleware import EdgeMiddleware, ProxyHeaders
from sproutgate.api.problems import document_problem_responses, install_problem_handlers
from sproutgate.api.shared_routes import include_router
from sproutgate.api.v1.routes import health_router
from sproutgate.api.v1.routes import router as v1_router
from sproutgate.config import Settings
from sproutgate.domain.clock import Clock
from sproutgate.infra.admin_token import generated_notice as admin_token_notice
from sproutgate.infra.keys import load_or_create_secret
from sproutgate.services import Services, build_services

log = logging.getLogger("sproutgate")


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    clock: Clock | None = None,
    run_background: bool = True,
) -> FastAPI:
    settings = settings or (services.settings if services else Settings.load())
    services = services or build_services(settings, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            from sproutgate.storage.migrate import upgrade_async

            await upgrade_async(settings)
        if services.admin_guard.generated:
            # Where the new token is, never the token: this output usually ends up in a log.
            print(admin_token_notice(settings), flush=True)  # noqa: T201
            services.admin_guard.generated = False
        tasks: list[asyncio.Task[Any]] = []
        if run_background:
            services.mail_worker.start()
            services.backchannel_worker.start()
            tasks.append(asyncio.create_task(services.housekeeping.run_forever()))
        try:
            yield
        finally:
            await services.mail_worker.stop()
            await services.backchannel_worker.stop()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await services.aclose()

    app = FastAPI(
        title="SproutGate",
        version="0.1.0",
        description="Self-hosted account and authentication center: the runtime API (/api/v1) and "
        "the SproutGate API (/api) over one user store.",
        lifespan=lifespan,
        # /docs and /redoc are served by the pages (web/api_docs.py), from this origin only.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = services

    install_problem_handlers(app)
    document_problem_responses(app)

    # No language middleware: the caller's language is negotiated where it is used (error
    # bodies, CallerContext) by api.problems.lang_of, not on every request.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Accept-Language", "X-Admin-Token"],
        )
    if settings.trusted_proxies:
        # Inside the edge layer, which must see the socket peer (a trusted proxy's request id);
        # every layer and route after it sees the client's address in request.client.host, and
        # so does the edge's access log, written after the request (docs/decisions/client-ip.md).
        app.add_middleware(ProxyHeaders, trusted=settings.trusted_proxies)
    # Outermost (added last): the request id is set before anything else runs or logs.
    app.add_middleware(
        EdgeMiddleware,
        max_bytes=settings.max_body_bytes,
        trusted_proxies=settings.trusted_proxies,
        metrics=services.metrics,
    )

    include_router(app, v1_router)
    include_router(app, health_router)
    include_router(app, dev.router)
    include_router(app, metrics.router)
    # What the pages lend the API (typed hooks, not a lookup by name): their session cookie as a
    # principal for our own pages' API calls, and the dev mailbox's HTML.
    app.state.api_hooks = _include_optional_faces(app, services)

    @app.get("/.well-known/jwks.json", tags=["infra"])
    async def jwks() -> JSONResponse:
        """Public keys that verify SproutGate access tokens."""
        # Any origin may read the public keys (a single-page app checking an ID token).
        headers = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}
        return JSONResponse(services.signer.jwks(), headers=headers)

    return app


def _include_optional_faces(app: FastAPI, services: Services) -> ApiHooks:
    """The SproutGate face, the agent and the pages register themselves here; answers the
    hooks the pages lend the API."""
    from sproutgate.api.gate.routes import router as gate_router

    include_router(app, gate_router)
    from sproutgate.api.gate.outbox import router as outbox_router

    include_router(app, outbox_router)
    from sproutgate.api.gate.clients import router as clients_router

    include_router(app, clients_router)
    from sproutgate.api.oidc.routes import router as oidc_router

    include_router(app, oidc_router)
    from sproutgate.agent.routes import router as agent_router

    include_router(app, agent_router)
    from sproutgate.web.routes import install as install_pages
    from sproutgate.web.security import COOKIE_KEY_FILE

    return install_pages(app, services, load_or_create_secret(services.settings.data_dir, COOKIE_KEY_FILE))
