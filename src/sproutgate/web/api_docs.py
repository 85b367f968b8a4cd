"""``/docs`` (Swagger UI) and ``/redoc``: the browsable OpenAPI document, with every asset from
this origin. The viewers' scripts and styles are the ones the ``fastapi-offline`` package ships
(docs/decisions/offline-api-docs.md); the few lines that start them are our own static file, so
the pages keep the same Content-Security-Policy as the others (no inline script, no CDN)."""

from __future__ import annotations

import secrets
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from sproutgate.api.shared_routes import include_router
from sproutgate.web import security
from sproutgate.web.rendering import static_url

ASSETS_PATH = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Serve the viewers' files under ``/docs-assets`` and the two pages."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    include_router(app, router)


def _page(
    request: Request,
    title: str,
    body: str,
    styles: tuple[str, ...] = (),
    style_nonce: str | None = None,
    blob_workers: bool = False,
) -> HTMLResponse:
    openapi_url = request.app.openapi_url or "/openapi.json"
    links = "".join(f'<link rel="stylesheet" href="{href}">' for href in styles)
    nonce = f' data-style-nonce="{style_nonce}"' if style_nonce else ""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} · SproutGate</title>"
        f'<link rel="icon" href="{static_url("favicon.svg")}" type="image/svg+xml">{links}'
        f'</head><body data-openapi-url="{openapi_url}"{nonce}>{body}'
        f'<script src="{static_url("api-docs.js")}"></script></body></html>'
    )
    response = HTMLResponse(html)
    response.headers["Content-Security-Policy"] = security.content_security_policy(
        request, style_nonce, own_images_only=True, blob_workers=blob_workers
    )
    response.headers["Cache-Control"] = "no-store"  # the nonce is new on every response
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """The OpenAPI document in Swagger UI."""
    return _page(
        request,
        "API (Swagger UI)",
        f'<div id="swagger-ui"></div><script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>',
        (f"{ASSETS_PATH}/swagger-ui.css",),
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """The OpenAPI document in Redoc."""
    # Redoc (styled-components) writes its styles into <style> elements: they carry this nonce.
    return _page(
        request,
        "API (Redoc)",
        f'<div id="redoc"></div><script src="{ASSETS_PATH}/redoc.standalone.js"></script>',
        style_nonce=secrets.token_urlsafe(18),
        blob_workers=True,  # its search index is built in a worker made from a blob
    )
