"""The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0): an app sends the browser
here, by GET or POST, to end the single sign-on session (the hosted pages' session). The rules
are ``EndSessionService``'s; this turns its plan into a confirmation page, a redirect to the
app's registered ``post_logout_redirect_uri`` (with ``state``), or a signed-out page."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData, QueryParams
from starlette.responses import Response

from sproutgate import i18n
from sproutgate.domain.logout.errors import InvalidLogoutRequest
from sproutgate.domain.logout.rules import PARAMS
from sproutgate.domain.logout.service import EndSessionPlan
from sproutgate.domain.oidc.rules import END_SESSION_PATH, ui_language
from sproutgate.web import security
from sproutgate.web.page import Page, page_context

router = APIRouter(include_in_schema=False)

SIGNED_OUT_PATH = END_SESSION_PATH + "/done"


def _single(values: QueryParams | FormData) -> dict[str, str] | None:
    """The end-session parameters, each given at most once; None when one is repeated."""
    out: dict[str, str] = {}
    for key in PARAMS:
        found = values.getlist(key)
        if len(found) > 1 or (found and not isinstance(found[0], str)):
            return None
        if found:
            out[key] = str(found[0])
    return out


def _error(page: Page, exc: InvalidLogoutRequest) -> Response:
    """Refused: a page (never a redirect) naming the OAuth error for the app's developers."""
    return page.render(
        "message.html",
        status=400,
        title=page.t("end_session.error_title"),
        message=f"{page.t('end_session.error')} ({exc.code}: {exc.description})",
    )


def _finished(page: Page, plan: EndSessionPlan) -> Response:
    """After the session ended: back to the app when it registered where, else to the
    signed-out page (its own address, so the request with its hint is not kept in the page's
    links or the history); the session cookie goes either way."""
    target = plan.redirect_to if plan.redirect_to is not None else SIGNED_OUT_PATH
    response = page.finish(RedirectResponse(target, status_code=303))
    security.clear_cookie(page.request, response, security.session_cookie_name(page.request))
    return response


async def _plan(page: Page, raw: QueryParams | FormData) -> EndSessionPlan | Response:
    params = _single(raw)
    if params is None:
        return _error(page, InvalidLogoutRequest("a parameter is repeated"))
    try:
        plan = await page.services.end_session.plan(params, page.principal)
    except InvalidLogoutRequest as exc:
        return _error(page, exc)
    chosen = ui_language(plan.request.ui_locales, i18n.LANGS)
    if chosen:  # OpenID Connect Core §3.1.2.1 ui_locales, for this page only
        page.lang = chosen
    return plan


async def _end_session(page: Page, raw: QueryParams | FormData) -> Response:
    plan = await _plan(page, raw)
    if isinstance(plan, Response):
        return plan
    if plan.confirm:
        if plan.redirect_to is not None:
            # Browsers apply form-action to the redirect after the submission too.
            parts = urlsplit(plan.redirect_to)
            page.request.state.form_targets = [f"{parts.scheme}://{parts.netloc}"]
        return page.render("end_session.html", client=plan.client, params=plan.request.as_params())
    await page.services.end_session.end(page.principal)
    return _finished(page, plan)


@router.get(END_SESSION_PATH)
async def end_session(page: Page = Depends(page_context)) -> Response:
    """End-session endpoint (RP-Initiated Logout 1.0 §2), by GET."""
    return await _end_session(page, page.request.query_params)


@router.post(END_SESSION_PATH)
async def end_session_post(page: Page = Depends(page_context)) -> Response:
    """End-session endpoint, by POST (form-encoded, §2); no CSRF token: it comes from the app."""
    return await _end_session(page, await page.request.form())


@router.post(END_SESSION_PATH + "/confirm")
async def end_session_confirmed(page: Page = Depends(page_context)) -> Response:
    """The person confirmed on the page above (CSRF-checked like every form of ours)."""
    form = await page.form()
    plan = await _plan(page, form)
    if isinstance(plan, Response):
        return plan
    await page.services.end_session.end(page.principal)
    return _finished(page, plan)


@router.get(SIGNED_OUT_PATH)
async def signed_out(page: Page = Depends(page_context)) -> Response:
    """Where a sign-out an app asked for ends when it named no registered place to go back to."""
    return page.render(
        "message.html",
        title=page.t("end_session.done_title"),
        message=page.t("end_session.done"),
        back="/login",
    )
