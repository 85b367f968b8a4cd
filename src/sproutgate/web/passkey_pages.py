"""Passkeys on the hosted pages: the JSON endpoints of the WebAuthn ceremonies that
``static/passkeys.js`` drives (adding one on the account page, signing in with one, one as the
second step after a password), and removing one (a plain form).

The ceremonies' options go out in the WebAuthn Level 3 JSON serialization
(``PublicKeyCredentialCreationOptionsJSON`` / ``...RequestOptionsJSON``) and responses come back
as ``PublicKeyCredential.toJSON()`` makes them. Every endpoint takes a same-origin JSON post with
the page's CSRF token in ``X-CSRF-Token`` and answers errors as problem+json in the page's
language; the rules are the domain's (domain/passkeys)."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from sproutgate.api.v1.schemas import PasskeyOut
from sproutgate.domain.accounts.errors import WrongPassword
from sproutgate.domain.errors import NotAuthenticated
from sproutgate.domain.mfa.errors import ReauthenticationRequired
from sproutgate.domain.passkeys.rules import CHALLENGE_TTL_SECONDS
from sproutgate.domain.passkeys.service import PasskeySignIn
from sproutgate.domain.sessions.rules import SessionKind
from sproutgate.domain.sessions.service import Principal
from sproutgate.web import security
from sproutgate.web.account_pages import render_account
from sproutgate.web.auth_pages import destination
from sproutgate.web.page import FormErrors, Page, form_text, page_context

router = APIRouter(include_in_schema=False)

# The browser's handle for a passwordless sign-in it started: the challenge is bound to it, so an
# assertion made for one browser's challenge is refused in another.
SIGN_IN_COOKIE = "sg_passkey"
SIGN_IN_COOKIE_PATH = "/login/passkey"
JSON_OPTIONS = "application/json"


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RegistrationStart(_In):
    password: str | None = Field(default=None, max_length=1024)


class RegistrationFinish(_In):
    name: str = Field(max_length=256)
    credential: dict[str, Any]


class SignInFinish(_In):
    credential: dict[str, Any]
    redirect_to: str = Field(default="", max_length=2048)
    next: str = Field(default="", max_length=2048)


class SecondStepStart(_In):
    mfa_token: str = Field(min_length=1, max_length=256)


class SecondStepFinish(SignInFinish):
    mfa_token: str = Field(min_length=1, max_length=256)


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


def _options(page: Page, options_json: str) -> Response:
    return page.finish(Response(options_json, media_type=JSON_OPTIONS))


def _signed_in(page: Page, result: PasskeySignIn, body: SignInFinish) -> Response:
    """The session cookie, and where the script goes next."""
    target = destination(page, body.redirect_to or None, body.next or None, "/account")
    response = page.finish(JSONResponse({"location": target}))
    security.set_signed_in_cookies(page.request, response, result.issued)
    return response


def _signed_in_user(page: Page) -> Principal:
    if page.principal is None:
        raise NotAuthenticated()
    return page.principal


# -- the account page ----------------------------------------------------------------------------
@router.post("/account/passkeys/registration/options")
async def registration_options(page: Page = Depends(page_context)) -> Response:
    """Creation options for adding a passkey (the password, unless signed in lately)."""
    principal = _signed_in_user(page)
    body = _parse(RegistrationStart, await page.json())
    options = await page.services.passkeys.start_registration(
        principal, page.ctx, password=body.password or None
    )
    return _options(page, options)


@router.post("/account/passkeys/registration/verify")
async def registration_verify(page: Page = Depends(page_context)) -> Response:
    """Add the passkey the browser just created, under the name the owner gave it."""
    principal = _signed_in_user(page)
    body = _parse(RegistrationFinish, await page.json())
    info = await page.services.passkeys.finish_registration(principal, body.name, body.credential, page.ctx)
    # As GET /api/v1/users/me/mfa lists it.
    created = PasskeyOut(
        id=info.id, name=info.name, created_at=info.created_at, last_used_at=info.last_used_at
    )
    return page.finish(JSONResponse(created.model_dump(mode="json"), status_code=201))


def remove_password_field(passkey_id: str) -> str:
    """The error key of one passkey's "remove" form (account.html names it so)."""
    return f"passkey_remove_password_{passkey_id}"


@router.post("/account/passkeys/{passkey_id}/remove")
async def remove_passkey(passkey_id: str, page: Page = Depends(page_context)) -> Response:
    """Remove one of my passkeys (the current password, unless signed in lately); my other
    sessions end."""
    principal = page.require_user()
    form = await page.form()
    password = form_text(form, "password")
    field = remove_password_field(passkey_id)
    try:
        await page.services.passkeys.remove(principal, passkey_id, page.ctx, password or None)
    except ReauthenticationRequired:
        errors = FormErrors(status=401)
        errors.fields[field] = page.t("mfa.password_needed")
        return await render_account(page, errors)
    except WrongPassword as exc:
        return await render_account(page, page.explain(exc, {"wrong_password": field}))
    return page.redirect("/account#passkeys", notice="passkey_removed")


# -- signing in ----------------------------------------------------------------------------------
@router.post("/login/passkey/options")
async def sign_in_options(page: Page = Depends(page_context)) -> Response:
    """Request options for signing in with a passkey alone (no account name typed)."""
    await page.json()
    options, binding = await page.services.passkeys.start_sign_in(page.ctx)
    response = _options(page, options)
    security.set_cookie(
        page.request,
        response,
        SIGN_IN_COOKIE,
        binding,
        max_age=CHALLENGE_TTL_SECONDS,
        path=SIGN_IN_COOKIE_PATH,
    )
    return response


@router.post("/login/passkey/verify")
async def sign_in_verify(page: Page = Depends(page_context)) -> Response:
    """Sign in with the passkey's assertion: the session cookie, and where to go."""
    body = _parse(SignInFinish, await page.json())
    result = await page.services.passkeys.finish_sign_in(
        body.credential, page.request.cookies.get(SIGN_IN_COOKIE), page.ctx, SessionKind.WEB
    )
    response = _signed_in(page, result, body)
    security.clear_cookie(page.request, response, SIGN_IN_COOKIE, path=SIGN_IN_COOKIE_PATH)
    return response


@router.post("/login/mfa/passkey/options")
async def second_step_options(page: Page = Depends(page_context)) -> Response:
    """Request options for completing a password sign-in with one of the account's passkeys."""
    body = _parse(SecondStepStart, await page.json())
    options = await page.services.passkeys.start_second_step(body.mfa_token, page.ctx, SessionKind.WEB)
    return _options(page, options)


@router.post("/login/mfa/passkey/verify")
async def second_step_verify(page: Page = Depends(page_context)) -> Response:
    """Complete a password sign-in with the passkey's assertion."""
    body = _parse(SecondStepFinish, await page.json())
    result = await page.services.passkeys.finish_second_step(
        body.mfa_token, body.credential, page.ctx, SessionKind.WEB
    )
    return _signed_in(page, result, body)
