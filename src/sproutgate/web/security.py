"""How the pages keep browser sessions safe.

- The session cookie holds an access token of a ``kind="web"`` session: HttpOnly, SameSite=Lax,
  Secure when served over HTTPS. Nothing is ever put in localStorage.
- CSRF: a random per-browser nonce cookie; every form and every unsafe same-origin API call
  carries ``HMAC(key, nonce | session id)``. An attacker can neither read the nonce nor forge
  the MAC, and a token minted for one session is useless in another. On top of that, unsafe
  requests whose ``Origin`` (or ``Sec-Fetch-Site``) says cross-site are refused.
- The admin console cookie holds a random value naming a console session kept on the server
  (domain/console_sessions/), never the admin token; it is ``__Host-sg_console`` over HTTPS.
- Pages send a strict Content-Security-Policy: scripts and styles from our origin only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from fastapi import Request
from starlette.responses import Response

from sproutgate.domain.errors import DomainError, Forbidden
from sproutgate.domain.registry import DomainServices
from sproutgate.domain.sessions.devices import DEVICE_COOKIE, DEVICE_COOKIE_SECONDS
from sproutgate.domain.sessions.rules import TokenAudience
from sproutgate.domain.sessions.service import IssuedSession, Principal

SESSION_COOKIE = "sg_session"
# Over HTTPS the session cookie is __Host- prefixed like the console's (below): a sibling
# subdomain could otherwise plant its own sg_session (cookie tossing) and sign the browser in
# to another account, which single sign-on would then carry into every app of the family.
SECURE_SESSION_COOKIE = "__Host-sg_session"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CSRF_COOKIE = "sg_csrf"
LANG_COOKIE = "sg_lang"
CONSOLE_COOKIE = "sg_console"
# Over HTTPS: a __Host- cookie is only accepted by browsers when Secure, on Path=/ and without a
# Domain, so a neighbouring subdomain (or plain-HTTP page) cannot plant or overwrite it.
SECURE_CONSOLE_COOKIE = "__Host-sg_console"
# Set for the browser that started an authenticator enrolment (web/mfa_pages.py): only that
# browser is shown the waiting secret again, not another holder of the same session.
ENROLMENT_COOKIE = "sg_mfa_enrolment"
ENROLMENT_COOKIE_PATH = "/account/mfa"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


COOKIE_KEY_FILE = "web-cookies.key"  # in data/keys; loaded by create_app


class WebGuard:
    """Keys and checks for the pages' cookies; one per process. ``key``: the secret of
    ``COOKIE_KEY_FILE`` (32 random bytes, shared by every instance)."""

    def __init__(self, services: DomainServices, key: bytes) -> None:
        self.services = services
        self._key = key

    def _mac(self, *parts: str) -> str:
        msg = "\x1f".join(parts).encode()
        return _b64(hmac.new(self._key, msg, hashlib.sha256).digest())

    # -- CSRF ---------------------------------------------------------------------------------
    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, nonce: str, session_id: str | None) -> str:
        return self._mac("csrf", nonce, session_id or "")

    def csrf_ok(self, nonce: str | None, session_id: str | None, presented: str | None) -> bool:
        if not nonce or not presented:
            return False
        return _same(self.csrf_token(nonce, session_id), presented)

    # -- second-factor enrolment ----------------------------------------------------------------
    def enrolment_ticket(self, session_id: str, started_at: datetime) -> str:
        """The value of ``ENROLMENT_COOKIE`` for the enrolment a session started at
        ``started_at``: that time in microseconds since the epoch and a MAC of it with the
        session's id, so the cookie is only ever had by a browser it was sent to after a
        re-authenticated start, and names that one enrolment, not whichever waits later."""
        micros = str((started_at - _EPOCH) // timedelta(microseconds=1))
        return f"{micros}.{self._mac('mfa-enrolment', session_id, micros)}"

    def enrolment_started(self, session_id: str, presented: str | None) -> datetime | None:
        """When the enrolment a presented ``ENROLMENT_COOKIE`` names was started, if this
        session's browser was given it; None for anything else."""
        micros, _, _mac = (presented or "").partition(".")
        if not micros.isascii() or not micros.isdigit() or len(micros) > 16:  # 16 digits: until the year 2286
            return None
        started_at = _EPOCH + timedelta(microseconds=int(micros))
        if not _same(self.enrolment_ticket(session_id, started_at), presented or ""):
            return None
        return started_at


def _same(expected: str, presented: str) -> bool:
    """Constant-time equality of a MAC we made and one a request brought, compared as bytes:
    ``hmac.compare_digest`` refuses str with non-ASCII characters (a TypeError, so a 500 for
    a form field or header of the caller's choosing)."""
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogatepass"))


# -- request facts ----------------------------------------------------------------------------
def is_https(request: Request) -> bool:
    """Served over HTTPS: the request's scheme (api.middleware.ProxyHeaders takes it from
    X-Forwarded-Proto when a trusted proxy sends it), or an https SPROUTGATE_PUBLIC_URL."""
    if request.url.scheme == "https":
        return True
    return request.app.state.settings.public_url.startswith("https://")


def session_cookie_name(request: Request) -> str:
    """The pages' session cookie's name: ``__Host-sg_session`` when served over HTTPS (the
    cookie is then Secure, Path=/, without Domain, so no other host can set it),
    ``sg_session`` otherwise. Only that name is read."""
    return SECURE_SESSION_COOKIE if is_https(request) else SESSION_COOKIE


def read_cookie(request: Request, name: str) -> str | None:
    """The value of the cookie called exactly ``name`` in the request's ``Cookie`` header, or
    None; the last when the browser sends it twice, as Starlette reads it.

    Starlette's ``request.cookies`` trims each name with ``str.strip()``, which also removes
    Unicode white space: a header byte 0xA0 or 0x85 (read as Latin-1) before
    ``__Host-sg_session`` vanished, so a sibling host could set that name behind a 0xA0 with
    ``Domain=`` (browsers see no ``__Host-`` prefix there) and have it read as the prefixed
    cookie, undoing what the prefix is for (cookie tossing). Here a name is trimmed of the
    ``Cookie`` header's own separators only (space and tab, RFC 6265 §4.2.1, §5.4) and must
    then equal ``name``."""
    found = None
    for header in request.headers.getlist("cookie"):
        for pair in header.split(";"):
            key, eq, value = pair.partition("=")
            if eq and key.strip(" \t") == name:
                found = value.strip(" \t")
    return found


def console_cookie_name(request: Request) -> str:
    """The admin console cookie's name: ``__Host-sg_console`` when served over HTTPS (the
    cookie is then Secure, Path=/), ``sg_console`` otherwise. Only that name is read."""
    return SECURE_CONSOLE_COOKIE if is_https(request) else CONSOLE_COOKIE


def own_origins(request: Request) -> set[str]:
    scheme = "https" if is_https(request) else request.url.scheme
    origins = {f"{scheme}://{request.headers.get('host', '')}"}
    public = urlsplit(request.app.state.settings.public_url)
    if public.scheme and public.netloc:
        origins.add(f"{public.scheme}://{public.netloc}")
    return origins


def same_origin(request: Request) -> bool:
    """False when the browser tells us the request came from another site.

    ``Origin: null`` says nothing by itself (a page with ``Referrer-Policy: no-referrer`` sends
    it for its own forms); Sec-Fetch-Site and the CSRF token decide then."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin not in (None, "null") and origin not in own_origins(request):
        return False
    return True


def set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    path: str = "/",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def set_signed_in_cookies(request: Request, response: Response, issued: IssuedSession) -> None:
    """After a sign-in on the pages (password, second step, passkey, sign-up): the session
    cookie, and the device cookie renewed, so this browser stays known (no new-device notice,
    domain/sessions/devices.py)."""
    set_cookie(
        request, response, session_cookie_name(request), issued.access_token, max_age=issued.expires_in
    )
    if issued.device_cookie:
        set_cookie(request, response, DEVICE_COOKIE, issued.device_cookie, max_age=DEVICE_COOKIE_SECONDS)


def clear_cookie(request: Request, response: Response, name: str, path: str = "/") -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="lax", secure=is_https(request))


def content_security_policy(
    request: Request,
    style_nonce: str | None = None,
    *,
    own_images_only: bool = False,
    blob_workers: bool = False,
) -> str:
    """Scripts and styles from our origin only; forms may also post to (and so be redirected
    to) the configured redirect origins. ``style_nonce`` also lets ``<style>`` elements carrying
    that nonce apply (Redoc writes its styles that way). ``own_images_only`` refuses images from
    other origins (pages that show no avatars), ``blob_workers`` lets a page's own script start a
    worker from a blob it made (Redoc's search)."""
    targets = ["'self'"]
    # An app's registered redirect URI, when this page's form leads back to an authorization
    # request (web/oidc_pages.py ``allow_return_to_app``): browsers apply form-action to every
    # redirect after the submission, down to the app's callback.
    extra = list(getattr(request.state, "form_targets", ()))
    for allowed in [*request.app.state.settings.allowed_redirects, *extra]:
        parts = urlsplit(allowed.rstrip("*"))
        if parts.scheme in ("http", "https") and parts.netloc:
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in targets:
                targets.append(origin)
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'" + (f" 'nonce-{style_nonce}'" if style_nonce else ""),
            "img-src 'self' data:" + ("" if own_images_only else " https: http:"),
            "connect-src 'self'",
            *(["worker-src blob:"] if blob_workers else []),
            "form-action " + " ".join(targets),
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


async def session_principal(request: Request, services: DomainServices) -> Principal | None:
    """The user behind the session cookie, or None (missing, expired or revoked)."""
    token = read_cookie(request, session_cookie_name(request))
    if not token:
        return None
    try:
        principal = await services.sessions.authenticate(token, TokenAudience.PAGES)
    except DomainError:
        return None
    request.state.principal = principal
    return principal


class PageCookiePrincipal:
    """``current_principal``'s fallback for API calls made by our own pages (the chat): the
    session cookie counts only for same-origin requests, and unsafe methods must also carry
    the page's CSRF token in ``X-CSRF-Token`` (else Forbidden("csrf_failed")). Wired into the
    API as ``api.deps.ApiHooks.cookie_principal`` by create_app."""

    def __init__(self, services: DomainServices, guard: WebGuard) -> None:
        self.services = services
        self.guard = guard

    async def __call__(self, request: Request) -> Principal | None:
        if read_cookie(request, session_cookie_name(request)) is None or not same_origin(request):
            return None
        principal = await session_principal(request, self.services)
        if principal is None:
            return None
        if request.method not in SAFE_METHODS and not self.guard.csrf_ok(
            request.cookies.get(CSRF_COOKIE), principal.session_id, request.headers.get(CSRF_HEADER)
        ):
            raise Forbidden("csrf_failed")
        return principal
