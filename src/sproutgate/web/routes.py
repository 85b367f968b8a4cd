"""Registers the hosted pages on the app: routers, static files, the dev mailbox page, the
session-cookie hook for same-origin API calls and the pages' own error handling."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from sproutgate import i18n
from sproutgate.services import Services
from sproutgate.web import account_pages, admin_pages, auth_pages, chat_pages
from sproutgate.web.mailbox_page import render_mailbox
from sproutgate.web.page import CsrfRejected, SignInRequired, page_context
from sproutgate.web.rendering import STATIC_DIR, make_environment
from sproutgate.web.security import WebGuard, cookie_principal_hook


def install(app: FastAPI, services: Services) -> None:
    guard = WebGuard(services)
    services.extras["web_guard"] = guard
    services.extras["web_templates"] = make_environment()
    services.extras["mailbox_html"] = render_mailbox
    services.extras["cookie_principal"] = cookie_principal_hook(services, guard)

    for module in (auth_pages, account_pages, admin_pages, chat_pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

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

    @app.exception_handler(SignInRequired)
    async def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
        page = await page_context(request)
        return page.redirect("/login", next=exc.next_path)


def _section_of(path: str) -> str:
    """A page to go back to after a refused form: the first path segment (/account/password ->
    /account), which is always a page."""
    first = path.strip("/").split("/")[0]
    return f"/{first}" if first and first != "logout" else "/"
