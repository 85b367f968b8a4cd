"""Two-step verification on the account page: enrolling an authenticator app (a QR code, or the
secret typed in), confirming it with a code, the recovery codes shown once (with a text-file
download), turning the app off, and a new set of recovery codes.

Every rule (re-authentication, codes, replay, limits, notice mails) is ``MfaService``'s, the
same calls the runtime API makes; these handlers only read forms and render pages. The section
on the account page itself is ``templates/account_mfa.html``."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends
from starlette.responses import Response

from sproutgate.domain.errors import DomainError
from sproutgate.domain.mfa.errors import NoPendingEnrolment, ReauthenticationRequired
from sproutgate.domain.mfa.rules import ENROLMENT_TTL_SECONDS
from sproutgate.domain.mfa.service import TotpEnrolment
from sproutgate.web import security
from sproutgate.web.account_pages import render_account
from sproutgate.web.page import FormErrors, Page, form_text, page_context

router = APIRouter(include_in_schema=False)

ENROL_PATH = "/account/mfa/totp"
SECTION = "/account#mfa"


def _code_fields(field: str) -> dict[str, str]:
    """Domain codes (and the domain's field name ``code``) -> the form's field ``field``."""
    return {"code": field, "invalid_mfa_code": field}


def _grouped(secret: str) -> str:
    """The base32 secret in groups of four, as people type it (apps ignore the spaces)."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


async def _started_here(page: Page) -> TotpEnrolment | None:
    """The waiting enrolment this browser started (it holds the enrolment cookie for its
    session, naming that enrolment), or None: only then is the secret shown again. A stolen
    session cookie alone, without the password or a recent sign-in, can neither start an
    enrolment nor read one; and an enrolment started elsewhere since is never shown here."""
    principal = page.require_user()
    presented = page.request.cookies.get(security.ENROLMENT_COOKIE)
    started_at = page.guard.enrolment_started(principal.session_id, presented)
    if started_at is None:
        return None
    return await page.services.mfa.pending_totp(principal, started_at)


def _forget_enrolment(page: Page, response: Response) -> Response:
    security.clear_cookie(
        page.request, response, security.ENROLMENT_COOKIE, path=security.ENROLMENT_COOKIE_PATH
    )
    return response


def _render_enrolment(page: Page, enrolment: TotpEnrolment, errors: FormErrors | None = None) -> Response:
    errors = errors or FormErrors()
    return page.render(
        "account_mfa_enrol.html",
        status=errors.status,
        errors=errors,
        enrolment=enrolment,
        secret_grouped=_grouped(enrolment.secret),
        minutes=ENROLMENT_TTL_SECONDS // 60,
    )


def _render_codes(page: Page, codes: list[str], heading: str) -> Response:
    """The recovery codes, shown this once, with a download of the same list as a text file
    (a ``data:`` link: the server never sends the codes again)."""
    user = page.require_user().user
    text = "\n".join(
        [page.t("mfa.codes_file_title", account=user.account), page.t("mfa.codes_file_note"), "", *codes, ""]
    )
    return page.render(
        "account_mfa_codes.html",
        codes=codes,
        heading=heading,
        download_href="data:text/plain;charset=utf-8," + quote(text),
        download_name=f"sproutgate-{user.account}-recovery-codes.txt",
    )


@router.post(ENROL_PATH)
async def start_totp(page: Page = Depends(page_context)) -> Response:
    """Start enrolling an authenticator app (the current password, unless signed in lately)."""
    principal = page.require_user()
    form = await page.form()
    password = form_text(form, "mfa_password")
    try:
        enrolment = await page.services.mfa.start_totp(principal, page.ctx, password or None)
    except ReauthenticationRequired:
        errors = FormErrors(status=401)
        errors.fields["mfa_password"] = page.t("mfa.password_needed")
        return await render_account(page, errors)
    except DomainError as exc:
        errors = page.explain(exc, {"wrong_password": "mfa_password"})
        return await render_account(page, errors)
    response = page.redirect(ENROL_PATH)
    security.set_cookie(
        page.request,
        response,
        security.ENROLMENT_COOKIE,
        page.guard.enrolment_ticket(principal.session_id, enrolment.started_at),
        max_age=ENROLMENT_TTL_SECONDS,
        path=security.ENROLMENT_COOKIE_PATH,
    )
    return response


@router.get(ENROL_PATH)
async def enrolment_page(page: Page = Depends(page_context)) -> Response:
    """The waiting enrolment: QR code, the secret to type in, and the form for the first code."""
    enrolment = await _started_here(page)
    if enrolment is None:  # never started (here), replaced since, expired or already on
        return _forget_enrolment(page, page.redirect(SECTION))
    return _render_enrolment(page, enrolment)


@router.post(f"{ENROL_PATH}/verify")
async def confirm_totp(page: Page = Depends(page_context)) -> Response:
    """Turn the app on with its first code; show the recovery codes once."""
    principal = page.require_user()
    form = await page.form()
    code = form_text(form, "code").strip()
    errors = FormErrors()
    errors.require_filled(page.lang, code=code)
    if not errors:
        try:
            codes = await page.services.mfa.confirm_totp(principal, code, page.ctx)
        except NoPendingEnrolment as exc:
            return await render_account(page, page.explain(exc))
        except DomainError as exc:
            errors = page.explain(exc, _code_fields("code"))
        else:
            return _forget_enrolment(page, _render_codes(page, codes, page.t("mfa.enabled_heading")))
    enrolment = await _started_here(page)
    if enrolment is None:
        return _forget_enrolment(page, page.redirect(SECTION))
    return _render_enrolment(page, enrolment, errors)


@router.post(f"{ENROL_PATH}/disable")
async def disable_totp(page: Page = Depends(page_context)) -> Response:
    """Turn the app off with a current code or a recovery code; other sessions end."""
    principal = page.require_user()
    form = await page.form()
    code = form_text(form, "mfa_off_code").strip()
    errors = FormErrors()
    errors.require_filled(page.lang, mfa_off_code=code)
    if not errors:
        try:
            await page.services.mfa.disable_totp(principal, code, page.ctx)
        except DomainError as exc:
            errors = page.explain(exc, _code_fields("mfa_off_code"))
        else:
            return page.redirect(SECTION, notice="mfa_disabled")
    return await render_account(page, errors)


@router.post("/account/mfa/recovery-codes")
async def regenerate_recovery_codes(page: Page = Depends(page_context)) -> Response:
    """A new set of recovery codes for a current code (or a recovery code); the old set dies."""
    principal = page.require_user()
    form = await page.form()
    code = form_text(form, "mfa_codes_code").strip()
    errors = FormErrors()
    errors.require_filled(page.lang, mfa_codes_code=code)
    if not errors:
        try:
            codes = await page.services.mfa.regenerate_recovery_codes(principal, code, page.ctx)
        except DomainError as exc:
            errors = page.explain(exc, _code_fields("mfa_codes_code"))
        else:
            return _render_codes(page, codes, page.t("mfa.regenerated_heading"))
    return await render_account(page, errors)
