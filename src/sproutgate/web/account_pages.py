"""The account page: profile, password, the primary address and secondary ones, active
sessions, the download of one's data, and deleting the account (on a page of its own: the
confirmation step)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from sproutgate.api.v1.schemas import export_out
from sproutgate.domain.accounts.rules import normalize_email
from sproutgate.domain.errors import DomainError
from sproutgate.domain.profiles.rules import SPROUTGATE_PROFILE, UNSET, ProfileChanges
from sproutgate.domain.sessions.service import SessionNotFound
from sproutgate.web import security
from sproutgate.web.page import FormErrors, Page, form_text, page_context

router = APIRouter(include_in_schema=False)

PROFILE_FIELDS = ("username", "avatar_url", "phone", "bio", "locale")


async def _render_account(page: Page, errors: FormErrors | None = None, **values: Any) -> Response:
    principal = page.require_user()
    user = principal.user
    services = page.services
    profile = {name: getattr(user, name) or "" for name in PROFILE_FIELDS}
    profile.update(values.pop("profile", {}))
    errors = errors or FormErrors()
    return page.render(
        "account.html",
        status=errors.status,
        errors=errors,
        profile=profile,
        secondary_emails=await services.profiles.secondary_emails(user.id),
        passkeys=await services.passkeys.of_user(user.id),
        # newest first, as both APIs list them (``current`` marks this browser's)
        sessions=await services.sessions.list_for_user(user.id, principal.session_id),
        mfa=await services.mfa.status(user.id),  # the two-step section (account_mfa.html)
        # The apps this person let read their account (domain/oidc), with a revoke button each.
        apps=await services.oidc.connected_apps(user.id),
        verify_email=values.pop("verify_email", None) or page.request.query_params.get("verify_email"),
        change_email=values.pop("change_email", None) or page.request.query_params.get("change_email"),
        values=values,
    )


@router.get("/account")
async def account(page: Page = Depends(page_context)) -> Response:
    """Profile, password, secondary emails and sessions of the signed-in user."""
    return await _render_account(page)


@router.post("/account/profile")
async def save_profile(page: Page = Depends(page_context)) -> Response:
    """Save the display name, avatar, phone, bio and the language of mail."""
    principal = page.require_user()
    form = await page.form()
    profile = {name: form_text(form, name) for name in PROFILE_FIELDS}
    changes = ProfileChanges(
        username=profile["username"],
        avatar_url=profile["avatar_url"].strip() or None,
        phone=profile["phone"].strip() or None,
        bio=profile["bio"] or None,
        # The language of mail to the user; a form without the field leaves it as it is.
        locale=profile["locale"] if "locale" in form else UNSET,
    )
    try:
        await page.services.profiles.update_profile(principal.user.id, changes, SPROUTGATE_PROFILE)
    except DomainError as exc:
        return await _render_account(page, page.explain(exc), profile=profile)
    return page.redirect("/account", notice="profile_saved")


@router.post("/account/password")
async def change_password(page: Page = Depends(page_context)) -> Response:
    """Change the password (the current one is required); other sessions end."""
    principal = page.require_user()
    form = await page.form()
    current, new = form_text(form, "current_password"), form_text(form, "new_password")
    errors = FormErrors()
    errors.require_filled(page.lang, current_password=current, new_password=new)
    if errors:
        # Not asked without the current password (that would count as a wrong one), but the new
        # one's problem still shows with the empty field's.
        try:
            page.services.accounts.policy.require(new, "new_password")
        except DomainError as exc:
            errors.add(page.explain(exc))
    else:
        try:
            await page.services.accounts.change_password(principal, new, page.ctx, current_password=current)
        except DomainError as exc:
            errors = page.explain(
                exc,
                {
                    "password": "new_password",
                    "new_password": "new_password",
                    "wrong_current_password": "current_password",
                    "invalid_credentials": "current_password",
                },
            )
        else:
            return page.redirect("/account", notice="password_changed")
    return await _render_account(page, errors)


@router.post("/account/emails")
async def add_email(page: Page = Depends(page_context)) -> Response:
    """Mail a code to a new secondary address (the current password, unless signed in lately)."""
    principal = page.require_user()
    form = await page.form()
    email = form_text(form, "new_email").strip()
    current = form_text(form, "email_password")
    errors = FormErrors()
    errors.require_filled(page.lang, new_email=email)
    if not errors:
        try:
            await page.services.accounts.request_secondary_email(
                principal, email, page.ctx, current_password=current or None
            )
        except DomainError as exc:
            errors = page.explain(
                exc,
                {
                    "email": "new_email",
                    "wrong_current_password": "email_password",
                    "recent_auth_required": "email_password",
                },
            )
        else:
            return page.redirect("/account#emails", verify_email=email, email=email, notice="email_code_sent")
    return await _render_account(page, errors, new_email=email)


@router.post("/account/emails/verify")
async def verify_email(page: Page = Depends(page_context)) -> Response:
    """Check the code and attach the secondary address."""
    principal = page.require_user()
    form = await page.form()
    email, code = form_text(form, "email").strip(), form_text(form, "code").strip()
    errors = FormErrors()
    errors.require_filled(page.lang, code=code)
    if not errors:
        try:
            await page.services.accounts.verify_secondary_email(principal, email, code, page.ctx)
        except DomainError as exc:
            errors = page.explain(exc, {"invalid_code": "code", "email_taken": "code", "email": "code"})
        else:
            return page.redirect("/account#emails", notice="email_added")
    return await _render_account(page, errors, verify_email=email, code=code)


@router.post("/account/emails/remove")
async def remove_email(page: Page = Depends(page_context)) -> Response:
    """Remove one of my secondary addresses."""
    principal = page.require_user()
    form = await page.form()
    email = form_text(form, "email").strip()
    try:
        await page.services.accounts.remove_secondary_email(principal, email, page.ctx)
    except DomainError as exc:
        errors = page.explain(exc)
        if not errors.alert:  # a field error (malformed or primary address): say it once, on top
            errors.alert = next(iter(errors.fields.values()), None)
            errors.fields.clear()
        return await _render_account(page, errors)
    return page.redirect("/account#emails", email=email, notice="email_removed")


@router.post("/account/primary-email")
async def change_primary_email(page: Page = Depends(page_context)) -> Response:
    """Mail a code to a new primary address (the current password, unless signed in lately)."""
    principal = page.require_user()
    form = await page.form()
    email = form_text(form, "change_email").strip()
    current = form_text(form, "change_email_password")
    errors = FormErrors()
    errors.require_filled(page.lang, change_email=email)
    if not errors:
        try:
            await page.services.accounts.request_primary_email_change(
                principal, email, page.ctx, current_password=current or None
            )
        except DomainError as exc:
            errors = page.explain(
                exc,
                {
                    "email": "change_email",
                    "wrong_current_password": "change_email_password",
                    "recent_auth_required": "change_email_password",
                },
            )
        else:
            sent_to = normalize_email(email)  # accepted, so well formed: shown as it was stored
            return page.redirect(
                "/account#primary-email", change_email=sent_to, email=sent_to, notice="email_change_sent"
            )
    return await _render_account(page, errors, change_email_value=email)


@router.post("/account/primary-email/verify")
async def verify_primary_email(page: Page = Depends(page_context)) -> Response:
    """Check the code and make the address my primary one."""
    principal = page.require_user()
    form = await page.form()
    email, code = form_text(form, "email").strip(), form_text(form, "change_code").strip()
    errors = FormErrors()
    errors.require_filled(page.lang, change_code=code)
    if not errors:
        try:
            user = await page.services.accounts.confirm_primary_email_change(principal, email, code, page.ctx)
        except DomainError as exc:
            errors = page.explain(
                exc,
                {
                    "invalid_code": "change_code",
                    "email_taken": "change_code",
                    "email": "change_code",
                    "code": "change_code",
                },
            )
        else:
            return page.redirect("/account", email=user.email, notice="email_changed")
    return await _render_account(page, errors, change_email=email, change_code=code)


@router.post("/account/sessions/revoke-others")
async def revoke_other_sessions(page: Page = Depends(page_context)) -> Response:
    """Sign out every other device; this browser stays signed in."""
    principal = page.require_user()
    await page.form()
    await page.services.sessions.end_others(principal)
    return page.redirect("/account#sessions", notice="other_sessions_revoked")


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(session_id: str, page: Page = Depends(page_context)) -> Response:
    """Sign out one of my sessions."""
    principal = page.require_user()
    await page.form()
    try:
        await page.services.sessions.end_own(principal, session_id)
    except SessionNotFound:
        return page.redirect("/account#sessions", notice="session_not_found")
    if session_id == principal.session_id:
        response = page.redirect("/login", notice="logged_out")
        security.clear_cookie(page.request, response, security.session_cookie_name(page.request))
        return response
    return page.redirect("/account#sessions", notice="session_revoked")


@router.post("/account/sessions/revoke-all")
async def revoke_all_sessions(page: Page = Depends(page_context)) -> Response:
    """Sign out everywhere, this browser included."""
    principal = page.require_user()
    await page.form()
    await page.services.sessions.revoke_all_for_user(principal.user.id)
    response = page.redirect("/login", notice="logged_out")
    security.clear_cookie(page.request, response, security.session_cookie_name(page.request))
    return response


@router.post("/account/apps/{client_id}/revoke")
async def revoke_app(client_id: str, page: Page = Depends(page_context)) -> Response:
    """Disconnect an app: its consent, grants and refresh tokens end (OidcService.revoke_app)."""
    principal = page.require_user()
    await page.form()
    await page.services.oidc.revoke_app(principal.user.id, client_id[:128])
    return page.redirect("/account#apps", notice="app_revoked")


@router.post("/account/export")
async def export_data(page: Page = Depends(page_context)) -> Response:
    """Download everything stored about me, as the runtime API's export (a JSON attachment)."""
    principal = page.require_user()
    await page.form()
    export = await page.services.privacy.export(principal)
    filename = f"sproutgate-{export.profile.account}-{export.exported_at:%Y%m%d}.json"
    response = Response(
        export_out(export).model_dump_json(indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
    return page.finish(response)


def _render_delete(page: Page, errors: FormErrors | None = None) -> Response:
    page.require_user()
    errors = errors or FormErrors()
    hold = page.services.settings.deleted_account_hold_seconds
    return page.render(
        "account_delete.html", status=errors.status, errors=errors, hold_days=math.ceil(hold / 86400)
    )


@router.get("/account/delete")
async def delete_account_form(page: Page = Depends(page_context)) -> Response:
    """What deleting the account does, and the password to confirm it."""
    return _render_delete(page)


@router.post("/account/delete")
async def delete_account(page: Page = Depends(page_context)) -> Response:
    """Delete my account (the password is required); this browser is signed out."""
    principal = page.require_user()
    form = await page.form()
    password = form_text(form, "password")
    errors = FormErrors()
    errors.require_filled(page.lang, password=password)
    if not errors:
        try:
            await page.services.privacy.delete_own_account(principal, password, page.ctx)
        except DomainError as exc:
            errors = page.explain(exc, {"wrong_password": "password"})
        else:
            response = page.redirect("/login", notice="account_deleted")
            security.clear_cookie(page.request, response, security.session_cookie_name(page.request))
            return response
    return _render_delete(page, errors)


# The two-step pages (mfa_pages.py) show their errors on this page too.
render_account = _render_account
