"""The OpenID Connect authorization endpoint and consent page (issue 12): the browser side of
"Sign in with SproutGate". The hosted pages' session is the single sign-on session: a person
signed in here is sent straight back to the app with a code; one who is not signs in on the
hosted sign-in page and comes back here. Rules are ``OidcService``'s; this only turns its
decisions into pages and redirects."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData, QueryParams
from starlette.responses import Response

from sproutgate import i18n
from sproutgate.domain.oidc.errors import AuthorizationError, OAuthError, UnsafeAuthorizationRequest
from sproutgate.domain.oidc.rules import AUTHORIZATION_PATH, ui_language, without_prompt
from sproutgate.domain.oidc.service import CodeIssued, ConsentNeeded, SignInNeeded, with_query
from sproutgate.web import security
from sproutgate.web.page import Page, page_context

router = APIRouter(include_in_schema=False)

CONSENT_PATH = "/oauth2/consent"
# Parameters of an authorization request carried through the sign-in and consent pages.
REQUEST_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "ui_locales",
    "response_mode",
    "display",
    "request",
    "request_uri",
)


def _single(values: QueryParams | FormData, keep: tuple[str, ...] | None = None) -> dict[str, str] | None:
    """The parameters, each given once (RFC 6749 §3.1), or None when one is repeated."""
    out: dict[str, str] = {}
    for key in values:
        if keep is not None and key not in keep:
            continue
        found = values.getlist(key)
        if len(found) != 1 or not isinstance(found[0], str):
            return None
        out[key] = found[0]
    return out


def authorize_path(params: dict[str, str]) -> str:
    """The authorization request ``params`` as a path on this site (a ``next`` to return to)."""
    return f"{AUTHORIZATION_PATH}?{urlencode(params)}"


def _error_page(page: Page, exc: OAuthError) -> Response:
    """An unsafe request is answered here, never by redirect (RFC 6749 §4.1.2.1)."""
    return page.render("oidc_error.html", status=400, error=exc.code, description=exc.description)


def _back_to_client(page: Page, exc: AuthorizationError) -> Response:
    """An error sent back to the client's verified redirect URI (RFC 6749 §4.1.2.1, RFC 9207)."""
    target = with_query(
        exc.redirect_uri,
        {
            "error": exc.code,
            "error_description": exc.description,
            "state": exc.state,
            "iss": page.services.oidc.issuer,
        },
    )
    return page.finish(RedirectResponse(target, status_code=303))


async def allow_return_to_app(page: Page, next_path: str | None) -> None:
    """When ``next_path`` is an authorization request of a registered client, let this page's
    forms lead on to that client's redirect URI (the page's CSP form-action, which browsers
    also apply to the redirects after a submission)."""
    if not next_path or not next_path.startswith(AUTHORIZATION_PATH + "?"):
        return
    params = _single(QueryParams(next_path.split("?", 1)[1]))
    if params is None:
        return
    found = await page.services.oidc.client_for_return(params)
    if found is None:
        return
    parts = urlsplit(found[1])
    if parts.scheme in ("http", "https") and parts.netloc:
        page.request.state.form_targets = [f"{parts.scheme}://{parts.netloc}"]


def _use_ui_locales(page: Page, ui_locales: tuple[str, ...], response: Response) -> Response:
    """Show the pages that follow in the language the app asked for (``ui_locales``, OpenID
    Connect Core §3.1.2.1): a cookie for this browser session."""
    chosen = ui_language(ui_locales, i18n.LANGS)
    if chosen and chosen != page.request.cookies.get(security.LANG_COOKIE):
        security.set_cookie(page.request, response, security.LANG_COOKIE, chosen)
    return response


async def _authorize(page: Page, raw: QueryParams | FormData) -> Response:
    params = _single(raw)
    if params is None:
        return _error_page(page, UnsafeAuthorizationRequest("invalid_request", "a parameter is repeated"))
    oidc = page.services.oidc
    try:
        client, request = await oidc.check_authorization_request(params)
    except UnsafeAuthorizationRequest as exc:
        return _error_page(page, exc)
    except AuthorizationError as exc:
        return _back_to_client(page, exc)
    chosen = ui_language(request.ui_locales, i18n.LANGS)
    if chosen:
        page.lang = chosen
    session_id = page.principal.session_id if page.principal else None
    try:
        decision = await oidc.decide(client, request, params, session_id)
    except AuthorizationError as exc:
        return _back_to_client(page, exc)
    if isinstance(decision, CodeIssued):
        response: Response = page.finish(RedirectResponse(decision.redirect_to, status_code=303))
    elif isinstance(decision, SignInNeeded):
        query = {
            "next": authorize_path(decision.return_params),
            # Signed in, but not freshly enough (prompt=login, max_age): the form all the same.
            "reauth": "1" if page.principal else None,
            "identifier": decision.login_hint,
        }
        response = page.redirect("/login", **query)
    else:
        assert isinstance(decision, ConsentNeeded)
        response = page.redirect(f"{CONSENT_PATH}?{urlencode(params)}")
    return _use_ui_locales(page, request.ui_locales, response)


@router.get(AUTHORIZATION_PATH)
async def authorize(page: Page = Depends(page_context)) -> Response:
    """Authorization endpoint (OpenID Connect Core §3.1.2): authorization code flow only."""
    return await _authorize(page, page.request.query_params)


@router.post(AUTHORIZATION_PATH)
async def authorize_post(page: Page = Depends(page_context)) -> Response:
    """The authorization endpoint by form post (OpenID Connect Core §3.1.2.1 asks for both)."""
    return await _authorize(page, await page.request.form())


@router.get(CONSENT_PATH)
async def consent_form(page: Page = Depends(page_context)) -> Response:
    """The consent page: names the app and lists what it will read."""
    params = _single(page.request.query_params, REQUEST_PARAMS)
    if params is None:
        return _error_page(page, UnsafeAuthorizationRequest("invalid_request", "a parameter is repeated"))
    try:
        client, request = await page.services.oidc.check_authorization_request(params)
    except UnsafeAuthorizationRequest as exc:
        return _error_page(page, exc)
    except AuthorizationError as exc:
        return _back_to_client(page, exc)
    if page.principal is None:
        return page.redirect(authorize_path(params))
    await allow_return_to_app(page, authorize_path(params))
    return page.render(
        "consent.html", client=client, scopes=request.scopes, params=without_prompt(params, "consent")
    )


@router.post(CONSENT_PATH)
async def consent_submit(page: Page = Depends(page_context)) -> Response:
    """Allow (remembered, then back to the authorization request) or deny (``access_denied``
    to the app)."""
    form = await page.form()
    params = _single(form, REQUEST_PARAMS)
    if params is None:
        return _error_page(page, UnsafeAuthorizationRequest("invalid_request", "a parameter is repeated"))
    try:
        client, request = await page.services.oidc.check_authorization_request(params)
    except UnsafeAuthorizationRequest as exc:
        return _error_page(page, exc)
    except AuthorizationError as exc:
        return _back_to_client(page, exc)
    if page.principal is None:
        return page.redirect(authorize_path(params))
    if form.get("decision") != "allow":
        denied = AuthorizationError(
            "access_denied",
            "the person did not allow access",
            redirect_uri=request.redirect_uri,
            state=request.state,
        )
        return _back_to_client(page, denied)
    await page.services.oidc.consent(page.principal.user.id, client, request.scopes)
    return page.redirect(authorize_path(without_prompt(params, "consent")))


__all__ = ["allow_return_to_app", "authorize_path", "router"]
