"""Request-scoped dependencies shared by every face: the domain services, the caller's address
and language, and the bearer-token principal; and ``ApiHooks``, what another face lends the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request
from starlette.responses import Response

from sproutgate.api.problems import lang_of
from sproutgate.domain.context import CallerContext
from sproutgate.domain.errors import NotAuthenticated
from sproutgate.domain.mail.service import OpenedMail
from sproutgate.domain.registry import DomainServices
from sproutgate.domain.sessions.service import Principal


class CookiePrincipal(Protocol):
    async def __call__(self, request: Request) -> Principal | None:
        """The caller signed in by a browser cookie another face set, or None when there is
        none; may raise a DomainError (a cookie presented without its CSRF token)."""
        ...


class MailboxPage(Protocol):
    async def __call__(self, request: Request, rows: Sequence[OpenedMail] | None) -> Response:
        """The dev mailbox as an HTML page, for a browser asking for one; ``None``: the mailbox
        is not open to this request, answer the pages' 404 page."""
        ...


@dataclass(slots=True)
class ApiHooks:
    """What another face lends the API, wired once by ``create_app`` (``app.state.api_hooks``).
    The API never imports those faces; without a hook it works on its own."""

    # The pages' session cookie, accepted as a principal for same-origin calls made by our own
    # pages (the chat); see web.security.PageCookiePrincipal.
    cookie_principal: CookiePrincipal | None = None
    mailbox_page: MailboxPage | None = None


# Dependencies are ``async def`` even when they never await: FastAPI runs plain ``def``
# dependencies in a worker thread, a thread hop on every request of every route.
async def get_services(request: Request) -> DomainServices:
    """The domain services of this process (all a face may call)."""
    return request.app.state.services


def api_hooks(request: Request) -> ApiHooks:
    """The hooks ``create_app`` wired (none when the app was built without other faces)."""
    hooks: ApiHooks | None = getattr(request.app.state, "api_hooks", None)
    return hooks or ApiHooks()


def client_ip(request: Request) -> str:
    """The caller's address: ``request.client.host``, which ``api.middleware.ProxyHeaders``
    has already resolved behind trusted proxies (the one place that is worked out)."""
    return request.client.host if request.client else "0.0.0.0"  # noqa: S104 - a label


def context_of(request: Request) -> CallerContext:
    return CallerContext(
        ip=client_ip(request), lang=lang_of(request), user_agent=request.headers.get("user-agent")
    )


async def caller_context(request: Request) -> CallerContext:
    """FastAPI dependency: ``context_of`` the request."""
    return context_of(request)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def current_principal(request: Request) -> Principal:
    """The signed-in caller; 401 problem when the token is missing, bad, expired or revoked."""
    # The services straight from the app, not as a sub-dependency: solving one costs about as
    # much as the session lookup, and this runs on every authenticated request.
    services: DomainServices = request.app.state.services
    token = bearer_token(request)
    if token is None:
        cookie_principal = getattr(request.state, "principal", None)
        hook = api_hooks(request).cookie_principal
        if cookie_principal is None and hook is not None:
            cookie_principal = await hook(request)
        if cookie_principal is not None:
            return cookie_principal
        raise NotAuthenticated()
    principal = await services.sessions.authenticate(token)
    request.state.principal = principal
    return principal
