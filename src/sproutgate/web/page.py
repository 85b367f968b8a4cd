"""What every page handler gets: the caller's language, session and CSRF token, plus rendering,
redirects and form handling that keep the cookie and header rules in one place."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment
from starlette.datastructures import FormData
from starlette.responses import Response

from sproutgate import i18n
from sproutgate.api.problems import STATUS_BY_ERROR, field_errors, field_limits
from sproutgate.domain.context import CallerContext
from sproutgate.domain.errors import DomainError, Forbidden, InvalidInput
from sproutgate.domain.registry import DomainServices
from sproutgate.domain.sessions.devices import DEVICE_COOKIE
from sproutgate.domain.sessions.service import Principal
from sproutgate.web import security
from sproutgate.web.i18n_pages import tr
from sproutgate.web.security import WebGuard


class FieldProblem(str):
    """A field error that reads after the field's label ("must be 1 to 30 characters long"):
    the form macro makes the sentence, "Display name must be 1 to 30 characters long."
    Plain strings next to a field are whole sentences already ("Wrong account or password.")."""

    about_field = True


class CsrfRejected(Exception):
    """A form arrived without a valid CSRF token or from another site."""


class SignInRequired(Exception):
    """The page needs a signed-in user; the handler sends them to /login and back."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def local_path(value: str | None) -> str | None:
    """``value`` if it is a path on this site (never another host), else None."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(c) < 32 for c in value):
        return None
    return value


@dataclass
class FormErrors:
    """Errors to show on a re-rendered form: per field, and one alert for the whole form."""

    fields: dict[str, str] = field(default_factory=dict)
    alert: str | None = None
    status: int = 200

    def __bool__(self) -> bool:
        return bool(self.fields or self.alert)

    def require_filled(self, lang: str, **values: str) -> None:
        """Mark each empty field as required (the browser checks too, but not every client)."""
        for name, value in values.items():
            if not value.strip():
                self.fields[name] = FieldProblem(i18n.t("field_required", lang))
                self.status = 422

    def add(self, other: FormErrors) -> FormErrors:
        """These errors and ``other``'s, so a form shows every problem at once; a field already
        marked here (an empty one) keeps its message."""
        for name, message in other.fields.items():
            self.fields.setdefault(name, message)
        self.alert = self.alert or other.alert
        self.status = self.status if self.status != 200 else other.status
        return self


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@dataclass
class Page:
    request: Request
    services: DomainServices
    guard: WebGuard
    env: Environment
    lang: str
    principal: Principal | None
    nonce: str
    new_nonce: bool

    @property
    def csrf(self) -> str:
        return self.guard.csrf_token(self.nonce, self.principal.session_id if self.principal else None)

    @property
    def ctx(self) -> CallerContext:
        """The caller as the domain sees it, with this browser's device cookie (new-device
        notices, domain/sessions/devices.py)."""
        from sproutgate.api.deps import context_of

        return replace(context_of(self.request), device=self.request.cookies.get(DEVICE_COOKIE))

    @property
    def agent_offered(self) -> bool:
        """Whether the assistant can answer here (a model is configured)."""
        return self.services.settings.agent_configured

    def t(self, key: str, **params: Any) -> str:
        return tr(key, self.lang, **params)

    # -- responses ----------------------------------------------------------------------------
    def finish(self, response: Response, *, private: bool = True) -> Response:
        if self.new_nonce:
            security.set_cookie(self.request, response, security.CSRF_COOKIE, self.nonce)
        response.headers["Content-Security-Policy"] = security.content_security_policy(self.request)
        if private:
            response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Language"] = self.lang
        # Our own forms then carry a real Origin header; other sites still get no referrer.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Vary", "Cookie, Accept-Language")
        return response

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        html = self.env.get_template(template).render(
            page=self,
            t=self.t,
            lang=self.lang,
            user=self.principal.user if self.principal else None,
            csrf=self.csrf,
            path=self.request.url.path,
            here=self._here(),
            notice=self._notice(),
            # The domain's field limits (what the messages name), for maxlength and hints.
            L=field_limits(self.request),
            agent_offered=self.principal is not None and self.agent_offered,
            **values,
        )
        return self.finish(HTMLResponse(html, status_code=status))

    def not_found(self, status: int = 404) -> Response:
        """The pages' 404: a message in the reader's language with a way back."""
        return self.render(
            "message.html",
            status=status,
            title=self.t("error.not_found_title"),
            message=self.t("error.not_found"),
        )

    def redirect(self, url: str, **query: str | None) -> Response:
        params = {k: v for k, v in query.items() if v}
        if params:
            url, hash_mark, fragment = url.partition("#")
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}{hash_mark}{fragment}"
        return self.finish(RedirectResponse(url, status_code=303))

    def _here(self) -> str:
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query and self.request.method == "GET" else "")

    def _notice(self) -> str | None:
        key = self.request.query_params.get("notice")
        if key and f"notice.{key}" in _NOTICE_KEYS:
            count = self.request.query_params.get("count", "")
            count = count if count.isascii() and count.isdigit() and len(count) <= 9 else "?"
            return self.t(f"notice.{key}", email=self.request.query_params.get("email", ""), count=count)
        return None

    # -- forms --------------------------------------------------------------------------------
    async def form(self) -> FormData:
        """The posted form, after the origin and CSRF checks (raises CsrfRejected)."""
        form = await self.request.form()
        if not security.same_origin(self.request):
            raise CsrfRejected()
        presented = form.get(security.CSRF_FIELD)
        session_id = self.principal.session_id if self.principal else None
        cookie_nonce = self.request.cookies.get(security.CSRF_COOKIE)
        if not isinstance(presented, str) or not self.guard.csrf_ok(cookie_nonce, session_id, presented):
            raise CsrfRejected()
        return form

    async def json(self) -> dict[str, Any]:
        """The JSON object a script of our own pages posted (the passkey ceremonies), after the
        same checks as a form's: the request is same-origin and carries the page's CSRF token
        in ``X-CSRF-Token`` (else Forbidden("csrf_failed"), a 403 problem). A body that is not
        a JSON object is a 422 ``malformed_json``."""
        if not security.same_origin(self.request) or not self.guard.csrf_ok(
            self.request.cookies.get(security.CSRF_COOKIE),
            self.principal.session_id if self.principal else None,
            self.request.headers.get(security.CSRF_HEADER),
        ):
            raise Forbidden("csrf_failed")
        try:
            body = json.loads(await self.request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": "", "input": None}]
            )
        return body

    def explain(self, exc: DomainError, code_fields: dict[str, str] | None = None) -> FormErrors:
        """Turn a domain error into messages next to the fields it concerns.

        ``code_fields`` maps error codes that are not InvalidInput (invalid_code,
        invalid_credentials, account_taken …) and domain field names to this form's fields."""
        code_fields = code_fields or {}
        status = next((s for cls, s in STATUS_BY_ERROR if isinstance(exc, cls)), 400)
        errors = FormErrors(status=status)
        if isinstance(exc, InvalidInput):
            for item in field_errors(self.request, exc.fields):
                name = code_fields.get(item["field"], item["field"])
                errors.fields[name] = FieldProblem(item["message"])
            return errors
        message = i18n.t(exc.code, self.lang, **exc.params)
        target = code_fields.get(exc.code)
        if target:
            errors.fields[target] = message
        else:
            errors.alert = message
        return errors

    def require_user(self) -> Principal:
        if self.principal is None:
            raise SignInRequired(self.request.url.path)
        return self.principal


_NOTICE_KEYS = frozenset(
    k
    for k in (
        "notice.password_reset",
        "notice.logged_out",
        "notice.profile_saved",
        "notice.password_changed",
        "notice.email_code_sent",
        "notice.email_added",
        "notice.session_revoked",
        "notice.user_created",
        "notice.user_saved",
        "notice.user_deleted",
        "notice.welcome",
        "notice.code_resent",
        "notice.password_set",
        "notice.email_removed",
        "notice.account_deleted",
        "notice.app_revoked",
        "notice.client_saved",
        "notice.client_saved_grants_ended",
        "notice.client_deleted",
        "notice.mfa_disabled",
        "notice.mfa_reset",
        "notice.passkey_added",
        "notice.passkey_removed",
        "notice.email_change_sent",
        "notice.email_changed",
        "notice.other_sessions_revoked",
        "notice.session_not_found",
        "notice.session_ended",
    )
)


def page_lang(request: Request) -> str:
    chosen = request.cookies.get(security.LANG_COOKIE)
    if chosen in i18n.LANGS:
        return chosen
    return getattr(request.state, "lang", None) or i18n.negotiate(request.headers.get("accept-language"))


@dataclass(frozen=True, slots=True)
class PagesState:
    """What the pages keep for the process (``app.state.pages``, set by ``web.routes.install``)."""

    guard: WebGuard
    env: Environment


async def page_context(request: Request) -> Page:
    """FastAPI dependency: the Page for this request."""
    services: DomainServices = request.app.state.services
    pages: PagesState = request.app.state.pages
    lang = page_lang(request)
    request.state.lang = lang  # mails and messages follow the language the page shows
    principal = await security.session_principal(request, services)
    nonce = request.cookies.get(security.CSRF_COOKIE) or ""
    new_nonce = len(nonce) < 16
    if new_nonce:
        nonce = WebGuard.new_nonce()
    return Page(
        request=request,
        services=services,
        guard=pages.guard,
        env=pages.env,
        lang=lang,
        principal=principal,
        nonce=nonce,
        new_nonce=new_nonce,
    )
