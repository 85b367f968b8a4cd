"""The admin console: sign in with the admin token or as an admin-role user, manage users, read
the audit trail. Every change goes through services.admin, which records it."""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends
from starlette.datastructures import FormData
from starlette.responses import Response

from sproutgate import i18n
from sproutgate.domain.admin.service import UserFields
from sproutgate.domain.errors import DomainError, NotAuthenticated, NotFound
from sproutgate.domain.profiles.rules import UNSET
from sproutgate.domain.sessions.service import SessionNotFound
from sproutgate.web import security
from sproutgate.web.page import FieldProblem, FormErrors, Page, form_text, page_context

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
AUDIT_PAGE_SIZE = 50
ADMIN_PATH = "/admin"
TOKEN_ACTOR = "admin-token"
# Domain field names (as the SproutGate face spells some of them) -> this console's form fields.
FORM_FIELDS = {"sproutCoins": "sprout_coins", "sprout_coins": "sprout_coins", "avatarUrl": "avatar_url"}
CODE_FIELDS = {**FORM_FIELDS, "account_taken": "account", "email_taken": "email"}


def _console_cookie(page: Page) -> str | None:
    return security.read_cookie(page.request, security.console_cookie_name(page.request))


async def admin_actor(page: Page) -> str | None:
    """Who is using the console: the admin token (a live console session) or an admin-role user."""
    if await page.services.console_sessions.check(_console_cookie(page)):
        return TOKEN_ACTOR
    if page.principal is not None and page.principal.user.role == "admin":
        return f"user:{page.principal.user.account}"
    return None


def _render(page: Page, template: str, actor: str, status: int = 200, **values: Any) -> Response:
    response = page.render(template, status=status, actor=actor, token_actor=TOKEN_ACTOR, **values)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _sign_in_page(page: Page, errors: FormErrors | None = None) -> Response:
    errors = errors or FormErrors()
    return page.render("admin_login.html", status=errors.status, errors=errors)


def _count(form: FormData, name: str, errors: FormErrors, lang: str, *, required: bool) -> object:
    """A whole number of 0 or more from the form. An empty optional field is UNSET; a value that
    is not one comes back as -1 (with its message here), which the service refuses too."""
    raw = form_text(form, name).strip()
    if not raw:
        if required:
            errors.fields[name] = FieldProblem(i18n.t("field_required", lang))
            errors.status = 422
        return UNSET
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        errors.fields[name] = FieldProblem(i18n.t("invalid_count", lang))
        errors.status = 422
        return -1
    return value


async def _users_page(
    page: Page, actor: str, errors: FormErrors | None = None, create: dict[str, str] | None = None
) -> Response:
    q = page.request.query_params.get("q", "").strip()
    try:
        number = max(1, int(page.request.query_params.get("page", "1")))
    except ValueError:
        number = 1
    total, views = await page.services.admin.list_users(q or None, number, PAGE_SIZE)
    errors = errors or FormErrors()
    return _render(
        page,
        "admin_users.html",
        actor,
        status=errors.status,
        q=q,
        total=total,
        views=views,
        page_number=number,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        errors=errors,
        create=create or {},
    )


@router.get(ADMIN_PATH)
async def admin_home(page: Page = Depends(page_context)) -> Response:
    """The users table (search, paging, create), or the console sign-in."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    return await _users_page(page, actor)


@router.post(f"{ADMIN_PATH}/login")
async def admin_login(page: Page = Depends(page_context)) -> Response:
    """Open the console with the admin token (failures are throttled per address)."""
    form = await page.form()
    try:
        await page.services.admin_access.authenticate(page.ctx.ip, [form_text(form, "token").strip()])
    except NotAuthenticated:
        errors = FormErrors(status=401)
        errors.fields["token"] = i18n.t("admin_token_required", page.lang)
        return _sign_in_page(page, errors)
    except DomainError as exc:  # RateLimited: too many failures from this address
        return _sign_in_page(page, page.explain(exc))
    await page.services.console_sessions.close(_console_cookie(page))  # any earlier one of this browser
    opened = await page.services.console_sessions.open(page.ctx.ip)
    response = page.redirect(ADMIN_PATH)
    security.set_cookie(
        page.request,
        response,
        security.console_cookie_name(page.request),
        opened.cookie_value,
        max_age=opened.max_age_seconds,
    )
    return response


@router.post(f"{ADMIN_PATH}/logout")
async def admin_logout(page: Page = Depends(page_context)) -> Response:
    """End the token console session on the server (copies of the cookie stop working too)."""
    await page.form()
    await page.services.console_sessions.close(_console_cookie(page))
    response = page.redirect(ADMIN_PATH)
    security.clear_cookie(page.request, response, security.console_cookie_name(page.request))
    return response


@router.post(f"{ADMIN_PATH}/users")
async def admin_create_user(page: Page = Depends(page_context)) -> Response:
    """Create a user."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    form = await page.form()
    values = {
        k: form_text(form, k) for k in ("account", "email", "username", "level", "sprout_coins", "role")
    }
    errors = FormErrors()
    fields = UserFields(
        account=values["account"].strip(),
        email=values["email"].strip(),
        password=form_text(form, "password"),
        role=values["role"] or "user",
    )
    if values["username"].strip():
        fields.username = values["username"].strip()
    fields.level = _count(form, "level", errors, page.lang, required=False)
    fields.sprout_coins = _count(form, "sprout_coins", errors, page.lang, required=False)
    errors.require_filled(page.lang, account=values["account"], email=values["email"])
    # Asked even when the form found problems: the service refuses whatever the form refused
    # (empty names, negative counts) before it changes anything, and names every other problem.
    try:
        view = await page.services.admin.create_user(fields, actor, page.ctx.ip)
    except DomainError as exc:
        errors.add(page.explain(exc, CODE_FIELDS))
    else:
        return page.redirect(ADMIN_PATH, q=view.user.account, notice="user_created")
    return await _users_page(page, actor, errors, values)


async def _edit_page(page: Page, actor: str, account: str, errors: FormErrors | None = None, **values: Any):  # type: ignore[no-untyped-def]
    view, sessions = await page.services.admin.user_sessions(account)
    errors = errors or FormErrors()
    user = view.user
    form_values = {
        "level": str(user.level),
        "sprout_coins": str(user.sprout_coins),
        "role": user.role,
        "locale": user.locale,
        "disabled": user.disabled,
        **values,
    }
    return _render(
        page,
        "admin_user_edit.html",
        actor,
        status=errors.status,
        view=view,
        sessions=sessions,
        values=form_values,
        errors=errors,
    )


@router.get(ADMIN_PATH + "/users/{account}")
async def admin_edit_form(account: str, page: Page = Depends(page_context)) -> Response:
    """Edit a user's level, coins, role, mail language and disabled flag."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    try:
        return await _edit_page(page, actor, account)
    except NotFound:
        return _not_found(page)


@router.post(ADMIN_PATH + "/users/{account}")
async def admin_edit_submit(account: str, page: Page = Depends(page_context)) -> Response:
    """Save the user's level, coins, role, mail language and disabled flag."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    form = await page.form()
    errors = FormErrors()
    # Everything the form holds: the service works out what changed and audits that, as it
    # does for the admin API and the CLI.
    fields = UserFields(
        level=_count(form, "level", errors, page.lang, required=True),
        sprout_coins=_count(form, "sprout_coins", errors, page.lang, required=True),
        disabled=form.get("disabled") == "on",
        role=form_text(form, "role") or "user",
        # An older form without the field leaves the language as it is.
        locale=form_text(form, "locale") or UNSET,
    )
    if not errors:
        try:
            view = await page.services.admin.update_user(account, fields, actor, page.ctx.ip)
        except NotFound:
            return _not_found(page)
        except DomainError as exc:
            errors = page.explain(exc, CODE_FIELDS)
        else:
            return page.redirect(ADMIN_PATH, q=view.user.account, notice="user_saved")
    values = {
        "level": form_text(form, "level"),
        "sprout_coins": form_text(form, "sprout_coins"),
        "role": form_text(form, "role"),
        "locale": form_text(form, "locale"),
        "disabled": form.get("disabled") == "on",
    }
    try:
        return await _edit_page(page, actor, account, errors, **values)
    except NotFound:
        return _not_found(page)


@router.post(ADMIN_PATH + "/users/{account}/reset-mfa")
async def admin_reset_mfa(account: str, page: Page = Depends(page_context)) -> Response:
    """Turn every second factor of the user off (audited; their sessions end, they are mailed)."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    await page.form()
    try:
        # The admin API's path (PUT /api/admin/users/{account} {"resetMfa": true}): one rule,
        # one audit record, one notice mail (in the user's language), whichever face asked.
        view = await page.services.admin.update_user(account, UserFields(reset_mfa=True), actor, page.ctx.ip)
    except NotFound:
        return _not_found(page)
    return page.redirect(f"{ADMIN_PATH}/users/{quote(view.user.account)}#mfa", notice="mfa_reset")


@router.post(ADMIN_PATH + "/users/{account}/sessions/{session_id}/end")
async def admin_end_session(account: str, session_id: str, page: Page = Depends(page_context)) -> Response:
    """End one of the user's sessions (audited); its tokens stop working at once."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    await page.form()
    try:
        await page.services.admin.end_user_session(account, session_id, actor, page.ctx.ip)
    except SessionNotFound:
        return page.redirect(f"{ADMIN_PATH}/users/{quote(account)}", notice="session_not_found")
    except NotFound:
        return _not_found(page)
    return page.redirect(f"{ADMIN_PATH}/users/{quote(account)}", notice="session_ended")


@router.get(ADMIN_PATH + "/users/{account}/delete")
async def admin_delete_form(account: str, page: Page = Depends(page_context)) -> Response:
    """Ask for confirmation before deleting a user."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    try:
        view = await page.services.admin.get_user(account)
    except NotFound:
        return _not_found(page)
    return _render(page, "admin_user_delete.html", actor, view=view)


@router.post(ADMIN_PATH + "/users/{account}/delete")
async def admin_delete_submit(account: str, page: Page = Depends(page_context)) -> Response:
    """Delete the user and end their sessions."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    await page.form()
    try:
        await page.services.admin.delete_user(account, actor, page.ctx.ip)
    except NotFound:
        return _not_found(page)
    return page.redirect(ADMIN_PATH, notice="user_deleted")


@router.get(ADMIN_PATH + "/audit")
async def admin_audit(page: Page = Depends(page_context)) -> Response:
    """Who changed what, newest first."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    try:
        number = max(1, int(page.request.query_params.get("page", "1")))
    except ValueError:
        number = 1
    events = await page.services.admin.audit_log(AUDIT_PAGE_SIZE + 1, (number - 1) * AUDIT_PAGE_SIZE)
    return _render(
        page,
        "admin_audit.html",
        actor,
        events=events[:AUDIT_PAGE_SIZE],
        page_number=number,
        has_next=len(events) > AUDIT_PAGE_SIZE,
        audit_action=lambda action: _audit_action(page, action),
        audit_actor=lambda who: _audit_actor(page, who),
        audit_details=lambda details: _audit_details(page, details),
    )


# Audit actions are stable codes (domain/admin/service.py, cli.py, the importer); the console
# names them in the reader's language and shows an unknown one as it is.
def _audit_action(page: Page, action: str) -> str:
    key = f"admin.action.{action}"
    text = page.t(key)
    return action if text == key else text


def _audit_actor(page: Page, actor: str) -> str:
    if actor == TOKEN_ACTOR:
        return page.t("admin.token_actor")
    if actor == "cli":
        return page.t("admin.actor.cli")
    return actor.removeprefix("user:")


def _field_label(page: Page, name: str) -> str:
    key = f"admin.field.{name}"
    text = page.t(key)
    return name if text == key else text


def _audit_details(page: Page, details: dict[str, Any] | None) -> str:
    """The fields an event changed, by their names in the reader's language (and the new
    values the trail keeps); anything else as compact JSON."""
    if not details:
        return ""
    by = details.get("by")  # who deleted an account (domain/privacy/rules.py, DeletedBy)
    if set(details) == {"by"} and f"admin.deleted_by.{by}" != page.t(f"admin.deleted_by.{by}"):
        return page.t(f"admin.deleted_by.{by}")
    fields = details.get("fields")
    if not isinstance(fields, list):
        return json.dumps(details, ensure_ascii=False, separators=(", ", ": "))
    values = details.get("values") or {}
    separator = "、" if page.lang == "zh-CN" else ", "
    parts = []
    for name in fields:
        label = _field_label(page, str(name))
        if name in values:
            label = f"{label} → {_audit_value(page, str(name), values[name])}"
        parts.append(label)
    return separator.join(parts)


def _audit_value(page: Page, name: str, value: Any) -> str:
    if value is None or value == []:  # a cleared field (an app's back-channel logout URI)
        return "—"
    if isinstance(value, bool):
        return page.t("admin.yes" if value else "admin.no")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if name == "role" and value in ("user", "admin"):
        return page.t(f"admin.role.{value}")
    return str(value)


def _not_found(page: Page) -> Response:
    return page.not_found()
