"""Sign-in (with its second step when an authenticator app is on), sign-up with the emailed
code, password reset, sign-out and the language switch."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from starlette.responses import Response

from sproutgate import i18n
from sproutgate.domain.accounts.rules import has_usable_password
from sproutgate.domain.errors import DomainError
from sproutgate.domain.mfa.errors import InvalidMfaToken, MfaRequired
from sproutgate.domain.mfa.rules import Factor
from sproutgate.domain.sessions.rules import SessionKind
from sproutgate.domain.sessions.service import IssuedSession
from sproutgate.web import security
from sproutgate.web.oidc_pages import allow_return_to_app
from sproutgate.web.page import FormErrors, Page, form_text, local_path, page_context

router = APIRouter(include_in_schema=False)

LANG_COOKIE_SECONDS = 365 * 24 * 3600


def destination(page: Page, redirect_to: str | None, next_path: str | None, default: str) -> str:
    """Where to go after signing in (with a password, a code or a passkey): an allow-listed
    application URL, else a path on this site."""
    return page.services.accounts.allowed_redirect(redirect_to) or local_path(next_path) or default


def _signed_in(page: Page, issued: IssuedSession, target: str) -> Response:
    response = page.redirect(target)
    security.set_signed_in_cookies(page.request, response, issued)
    return response


@router.get("/")
async def home(page: Page = Depends(page_context)) -> Response:
    """The account page when signed in, else the sign-in page."""
    return page.redirect("/account" if page.principal else "/login")


# -- sign-in ----------------------------------------------------------------------------------
@router.get("/login")
async def login_form(
    redirect_to: str | None = None,
    next: str | None = None,
    identifier: str | None = None,
    reauth: str | None = None,
    page: Page = Depends(page_context),
) -> Response:
    """The sign-in form. ``identifier`` prefills it (an app's ``login_hint``); ``reauth=1``
    shows it to a signed-in person too (an app asked for a fresh sign-in)."""
    if page.principal is not None and reauth != "1":
        return page.redirect(destination(page, redirect_to, next, "/account"))
    await allow_return_to_app(page, local_path(next))
    values = {
        "redirect_to": redirect_to or "",
        "next": local_path(next) or "",
        "identifier": (identifier or "")[:320],
    }
    return page.render("login.html", values=values, errors=FormErrors())


@router.post("/login")
async def login_submit(page: Page = Depends(page_context)) -> Response:
    """Check the password and open a browser session."""
    form = await page.form()
    values = {k: form_text(form, k) for k in ("identifier", "redirect_to", "next")}
    password = form_text(form, "password")
    errors = FormErrors()
    errors.require_filled(page.lang, identifier=values["identifier"], password=password)
    if not errors:
        try:
            issued = await page.services.accounts.login(
                values["identifier"],
                password,
                page.ctx,
                SessionKind.WEB,
            )
        except MfaRequired as exc:
            # The password was right; the code is asked for on a second form, which carries the
            # single-use token (never the password) and where to go afterwards.
            second = {"mfa_token": str(exc.params["mfa_token"]), **_after(values)}
            # The account has a passkey: the second form offers it besides the code.
            second["passkey"] = "1" if Factor.PASSKEY.value in exc.params.get("factors", []) else ""
            await allow_return_to_app(page, local_path(values["next"]))
            return page.render("login_mfa.html", values=second, errors=FormErrors())
        except DomainError as exc:
            errors = page.explain(exc, {"invalid_credentials": "password"})
        else:
            return _signed_in(
                page, issued, destination(page, values["redirect_to"], values["next"], "/account")
            )
    await allow_return_to_app(page, local_path(values["next"]))
    return page.render("login.html", status=errors.status, values=values, errors=errors)


def _after(values: dict[str, str]) -> dict[str, str]:
    return {"redirect_to": values.get("redirect_to", ""), "next": values.get("next", "")}


@router.post("/login/mfa")
async def login_mfa_submit(page: Page = Depends(page_context)) -> Response:
    """Second step of a sign-in: a code from the authenticator app or a recovery code."""
    form = await page.form()
    values = {k: form_text(form, k) for k in ("mfa_token", "redirect_to", "next", "passkey")}
    # Two forms post here: the app's code (``code``) and the recovery-code path (``recovery_code``);
    # the service tells the two kinds apart by their shape, the page shows errors where typed.
    field = "recovery_code" if "recovery_code" in form else "code"
    code = form_text(form, field).strip()
    errors = FormErrors()
    errors.require_filled(page.lang, **{field: code})
    if not errors:
        try:
            issued = await page.services.mfa.complete_sign_in(
                values["mfa_token"], code, page.ctx, SessionKind.WEB
            )
        except InvalidMfaToken as exc:
            # Expired, used or worn out by wrong codes: back to the password.
            errors = page.explain(exc)
            return page.render("login.html", status=errors.status, values=_after(values), errors=errors)
        except DomainError as exc:
            errors = page.explain(exc, {"invalid_mfa_code": field, "code": field})
        else:
            return _signed_in(
                page, issued, destination(page, values["redirect_to"], values["next"], "/account")
            )
    await allow_return_to_app(page, local_path(values["next"]))
    return page.render("login_mfa.html", status=errors.status, values=values, errors=errors)


@router.post("/logout")
async def logout(page: Page = Depends(page_context)) -> Response:
    """End this browser's session."""
    await page.form()
    if page.principal is not None:
        await page.services.sessions.sign_out(page.principal)
    response = page.redirect("/login", notice="logged_out")
    security.clear_cookie(page.request, response, security.session_cookie_name(page.request))
    return response


# -- sign-up ----------------------------------------------------------------------------------
@router.get("/register")
async def register_form(
    redirect_to: str | None = None, next: str | None = None, page: Page = Depends(page_context)
) -> Response:
    """The sign-up form. ``next``: a page of this site to go on to once signed up (an app's
    authorization request, say)."""
    values = {"redirect_to": redirect_to or "", "next": local_path(next) or ""}
    return page.render("register.html", values=values, errors=FormErrors())


@router.post("/register")
async def register_submit(page: Page = Depends(page_context)) -> Response:
    """Start a sign-up and mail the code."""
    form = await page.form()
    values = {k: form_text(form, k) for k in ("email", "username", "account", "redirect_to", "next")}
    password = form_text(form, "password")
    errors = FormErrors()
    errors.require_filled(page.lang, email=values["email"], username=values["username"], password=password)
    # Asked even with a field empty: the service checks every field before it does anything,
    # so the form shows all of its problems at once.
    try:
        await page.services.accounts.start_signup(
            values["email"],
            password,
            values["username"],
            page.ctx,
            account=values["account"].strip() or None,
            redirect_to=values["redirect_to"] or None,
        )
    except DomainError as exc:
        errors.add(page.explain(exc, {"account_taken": "account"}))
    else:
        return page.redirect(
            "/register/verify", email=values["email"].strip(), next=local_path(values["next"])
        )
    return page.render("register.html", status=errors.status, values=values, errors=errors)


@router.get("/register/verify")
async def register_verify_form(
    email: str = "", next: str | None = None, page: Page = Depends(page_context)
) -> Response:
    """The 6-digit code page (the sign-up mail links here with the email filled in)."""
    await allow_return_to_app(page, local_path(next))
    values = {"email": email, "next": local_path(next) or ""}
    return page.render("register_verify.html", values=values, errors=FormErrors())


@router.post("/register/verify")
async def register_verify_submit(page: Page = Depends(page_context)) -> Response:
    """Check the code, create the account and sign the new user in."""
    form = await page.form()
    values = {
        "email": form_text(form, "email").strip(),
        "code": form_text(form, "code").strip(),
        "next": local_path(form_text(form, "next")) or "",
    }
    errors = FormErrors()
    errors.require_filled(page.lang, email=values["email"], code=values["code"])
    try:
        user, issued, redirect = await page.services.accounts.complete_signup(
            values["code"], page.ctx, email=values["email"], session=SessionKind.WEB
        )
    except DomainError as exc:
        errors.add(page.explain(exc, {"invalid_code": "code", "account_taken": "code"}))
    else:
        assert issued is not None  # a session kind was asked for
        if not has_usable_password(user.password_hash):  # a contested sign-up: choose one now
            query = f"?{urlencode({'redirect_to': redirect})}" if redirect else ""
            return _signed_in(page, issued, f"/register/password{query}")
        return _signed_in(page, issued, redirect or values["next"] or "/account?notice=welcome")
    await allow_return_to_app(page, values["next"] or None)
    return page.render("register_verify.html", status=errors.status, values=values, errors=errors)


@router.get("/register/password")
async def set_password_form(redirect_to: str | None = None, page: Page = Depends(page_context)) -> Response:
    """Choose the password of an account created without one (a contested sign-up)."""
    principal = page.require_user()
    if has_usable_password(principal.user.password_hash):
        return page.redirect("/account#password")
    return page.render("set_password.html", values={"redirect_to": redirect_to or ""}, errors=FormErrors())


@router.post("/register/password")
async def set_password_submit(page: Page = Depends(page_context)) -> Response:
    """Set the first password; allowed right after the sign-up (a recent sign-in)."""
    principal = page.require_user()
    form = await page.form()
    values = {"redirect_to": form_text(form, "redirect_to")}
    new_password = form_text(form, "new_password")
    if has_usable_password(principal.user.password_hash):
        return page.redirect("/account#password")
    errors = FormErrors()
    errors.require_filled(page.lang, new_password=new_password)
    if not errors:
        try:
            await page.services.accounts.change_password(principal, new_password, page.ctx)
        except DomainError as exc:
            errors = page.explain(exc, {"password": "new_password", "new_password": "new_password"})
            if exc.code == "recent_auth_required":
                errors.alert = page.t("set_password.expired")
        else:
            target = destination(page, values["redirect_to"], None, "/account")
            if target == "/account":
                return page.redirect("/account", notice="password_set")
            return page.redirect(target)
    return page.render("set_password.html", status=errors.status, values=values, errors=errors)


@router.post("/register/resend")
async def register_resend(page: Page = Depends(page_context)) -> Response:
    """Mail a fresh sign-up code."""
    form = await page.form()
    email = form_text(form, "email").strip()
    try:
        await page.services.accounts.resend_signup_code(email, page.ctx)
    except DomainError as exc:
        errors = page.explain(exc)
        return page.render(
            "register_verify.html", status=errors.status, values={"email": email}, errors=errors
        )
    return page.redirect("/register/verify", email=email, notice="code_resent")


# -- password reset ---------------------------------------------------------------------------
@router.get("/forgot-password")
async def forgot_form(email: str = "", page: Page = Depends(page_context)) -> Response:
    """Ask for a password reset code."""
    return page.render("forgot.html", values={"email": email}, errors=FormErrors())


@router.post("/forgot-password")
async def forgot_submit(page: Page = Depends(page_context)) -> Response:
    """Mail a reset code (the answer never says whether the address is registered)."""
    form = await page.form()
    values = {"email": form_text(form, "email").strip()}
    errors = FormErrors()
    errors.require_filled(page.lang, email=values["email"])
    if not errors:
        try:
            await page.services.accounts.request_password_reset(values["email"], page.ctx)
        except DomainError as exc:
            errors = page.explain(exc)
        else:
            return page.redirect("/forgot-password/confirm", email=values["email"])
    return page.render("forgot.html", status=errors.status, values=values, errors=errors)


@router.get("/forgot-password/confirm")
async def reset_form(email: str = "", page: Page = Depends(page_context)) -> Response:
    """Enter the reset code and a new password (the reset mail links here)."""
    return page.render("reset.html", values={"email": email}, errors=FormErrors())


@router.post("/forgot-password/confirm")
async def reset_submit(page: Page = Depends(page_context)) -> Response:
    """Set the new password; every session of the account ends."""
    form = await page.form()
    # What was typed comes back with the errors, the new password excepted.
    values = {"email": form_text(form, "email").strip(), "code": form_text(form, "code").strip()}
    new_password = form_text(form, "new_password")
    errors = FormErrors()
    errors.require_filled(page.lang, email=values["email"], code=values["code"], new_password=new_password)
    try:
        await page.services.accounts.confirm_password_reset(
            values["code"], new_password, page.ctx, email=values["email"]
        )
    except DomainError as exc:
        errors.add(page.explain(exc, {"invalid_code": "code"}))
    else:
        response = page.redirect("/login", notice="password_reset")
        security.clear_cookie(page.request, response, security.session_cookie_name(page.request))
        return response
    return page.render("reset.html", status=errors.status, values=values, errors=errors)


# -- language ---------------------------------------------------------------------------------
@router.get("/lang/{code}")
async def switch_language(code: str, next: str | None = None, page: Page = Depends(page_context)) -> Response:
    """Remember the chosen language in a cookie and go back."""
    response = page.redirect(local_path(next) or "/")
    if code in i18n.LANGS:
        security.set_cookie(page.request, response, security.LANG_COOKIE, code, max_age=LANG_COOKIE_SECONDS)
    return response
