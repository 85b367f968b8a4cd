"""Registers the hosted pages on the app: routers, static files and the pages' own error
handling; answers the hooks the pages lend the API (the dev mailbox page, the session cookie
for same-origin API calls), which create_app hands to the API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from sproutgate import i18n
from sproutgate.api.deps import ApiHooks
from sproutgate.api.problems import http_error_response
from sproutgate.api.shared_routes import include_router
from sproutgate.domain.registry import DomainServices
from sproutgate.web import (
    account_pages,
    admin_client_pages,
    admin_pages,
    api_docs,
    auth_pages,
    chat_pages,
    logout_pages,
    mfa_pages,
    oidc_pages,
    passkey_pages,
)
from sproutgate.web.mailbox_page import render_mailbox
from sproutgate.web.page import CsrfRejected, PagesState, SignInRequired, page_context
from sproutgate.web.rendering import STATIC_DIR, make_environment
from sproutgate.web.security import PageCookiePrincipal, WebGuard


def install(app: FastAPI, services: DomainServices, cookie_key: bytes) -> ApiHooks:
    """Add the pages to ``app``. ``cookie_key``: the secret behind the pages' CSRF tokens and
    console cookie (``security.COOKIE_KEY_FILE``). Returns what the pages lend the API."""
    guard = WebGuard(services, cookie_key)
    app.state.pages = PagesState(guard=guard, env=make_environment())

    for module in (
        auth_pages,
        account_pages,
        mfa_pages,
        admin_pages,
        admin_client_pages,
        chat_pages,
        passkey_pages,
        oidc_pages,
        logout_pages,
    ):
        include_router(app, module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    api_docs.install(app)

    @app.exception_handler(CsrfRejected)
    async def _csrf_rejected(request: Request, exc: CsrfRejected) -> Response:
        page = await page_context(request)
        return page.render(
            "message.html",
            status=403,
            title=page.t("error.csrf_title"),
            message=i18n.t("csrf_failed", page.lang),
            back=_section_of(request.url.path),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _no_such_page(request: Request, exc: StarletteHTTPException) -> Response:
        # A browser that followed a wrong link gets a page in its language; API clients (and
        # everything under /api) keep problem+json.
        if exc.status_code in (404, 405) and wants_page(request):
            # 405: a form's address typed into the address bar (GET /logout) is no page either.
            response = (await page_context(request)).not_found(exc.status_code)
            response.headers.update(exc.headers or {})
            return response
        return http_error_response(request, exc)

    @app.exception_handler(SignInRequired)
    async def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
        page = await page_context(request)
        return page.redirect("/login", next=exc.next_path)

    return ApiHooks(cookie_principal=PageCookiePrincipal(services, guard), mailbox_page=render_mailbox)


def wants_page(request: Request) -> bool:
    """A browser navigating to a page: GET or HEAD, HTML accepted, outside the APIs."""
    path = request.url.path
    if request.method not in ("GET", "HEAD") or path == "/api" or path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def _section_of(path: str) -> str:
    """A page to go back to after a refused form: the first path segment (/account/password ->
    /account), which is always a page."""
    first = path.strip("/").split("/")[0]
    return f"/{first}" if first and first != "logout" else "/"
