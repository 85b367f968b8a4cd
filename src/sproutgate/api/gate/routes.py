"""The SproutGate API (/api/auth, /api/admin): a thin translation of the same domain services
to sproutgate-api.md. Tokens are the runtime API's access tokens with a longer lifetime."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from sproutgate.api.deps import (
    bearer_token,
    caller_context,
    client_ip,
    current_principal,
    get_services,
)
from sproutgate.api.gate import schemas as S
from sproutgate.api.problems import CAMEL, wire_field_names
from sproutgate.api.v1.schemas import Problem
from sproutgate.domain.admin.service import UserFields, UserView
from sproutgate.domain.context import CallerContext
from sproutgate.domain.errors import DomainError
from sproutgate.domain.profiles.rules import UNSET, ProfileChanges
from sproutgate.domain.registry import DomainServices
from sproutgate.domain.sessions.rules import SessionKind
from sproutgate.domain.sessions.service import IssuedSession, Principal

router = APIRouter(prefix="/api", dependencies=[Depends(wire_field_names(CAMEL))])


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        c: {"model": Problem, "content": {"application/problem+json": {}}, "description": str(c)}
        for c in codes
    }


async def _view(services: DomainServices, user) -> UserView:  # type: ignore[no-untyped-def]
    return UserView(user, await services.profiles.secondary_emails(user.id))


@router.post(
    "/auth/login", response_model=S.LoginOut, responses=_errors(401, 403, 422, 429), tags=["sproutgate"]
)
async def login(
    body: S.LoginIn,
    response: Response,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> S.LoginOut:
    """Sign in with an account name or email; answers the unified token. With a second factor on,
    401 ``mfa_required`` with an ``mfaToken`` for /auth/login/mfa."""
    issued = await services.accounts.login(
        body.account,
        body.password,
        ctx,
        SessionKind.GATE,
    )
    response.headers["Cache-Control"] = "no-store"
    return await _login_out(services, issued)


async def _login_out(services: DomainServices, issued: IssuedSession) -> S.LoginOut:
    return S.LoginOut(
        token=issued.access_token,
        expiresAt=S.iso(datetime.fromtimestamp(issued.access_expires_at, UTC)),
        user=S.gate_user(await _view(services, issued.user)),
    )


@router.post(
    "/auth/login/mfa", response_model=S.LoginOut, responses=_errors(401, 403, 422, 429), tags=["sproutgate"]
)
async def login_mfa(
    body: S.LoginMfaIn,
    response: Response,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> S.LoginOut:
    """Second step of a login answered ``mfa_required``: the ``mfaToken`` and a code from the
    authenticator app or a recovery code; answers the unified token, as the login would have."""
    issued = await services.mfa.complete_sign_in(body.mfaToken, body.code, ctx, SessionKind.GATE)
    response.headers["Cache-Control"] = "no-store"
    return await _login_out(services, issued)


@router.post(
    "/auth/verify",
    response_model=S.VerifyOut,
    response_model_exclude_unset=True,
    responses=_errors(422),
    tags=["sproutgate"],
)
async def verify_token(body: S.TokenIn, services: DomainServices = Depends(get_services)) -> S.VerifyOut:
    """Check a token: valid only while its signature, expiry and session are all good.

    Any bad, expired or revoked token answers 200 ``{"valid": false}``."""
    if len(body.token) > S.MAX_TOKEN_LENGTH:
        return S.VerifyOut(valid=False)
    try:
        principal = await services.sessions.authenticate(body.token)
    except DomainError:
        return S.VerifyOut(valid=False)
    return S.VerifyOut(valid=True, user=S.gate_user(await _view(services, principal.user)))


@router.post("/auth/logout", response_model=S.LogoutOut, responses=_errors(401), tags=["sproutgate"])
async def logout(
    principal: Principal = Depends(current_principal), services: DomainServices = Depends(get_services)
) -> S.LogoutOut:
    """Revoke the token's session (an addition to the SproutGate document)."""
    await services.sessions.sign_out(principal)
    return S.LogoutOut(loggedOut=True)


@router.get("/auth/sessions", response_model=S.SessionsOut, responses=_errors(401), tags=["sproutgate"])
async def list_sessions(
    response: Response,
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.SessionsOut:
    """The caller's active sessions, newest first (an addition to the SproutGate document)."""
    sessions = await services.sessions.list_for_user(principal.user.id, principal.session_id)
    response.headers["Cache-Control"] = "no-store"
    return S.SessionsOut(
        sessions=[
            S.GateSession(
                id=x.id,
                createdAt=x.created_at,
                lastUsedAt=x.last_used_at,
                ip=x.ip,
                userAgent=x.user_agent,
                current=x.current,
            )
            for x in sessions
        ]
    )


@router.delete(
    "/auth/sessions/{session_id}",
    response_model=S.RevokedOut,
    responses=_errors(401, 404, 422),
    tags=["sproutgate"],
)
async def revoke_session(
    session_id: str = Path(max_length=64),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.RevokedOut:
    """End one of the caller's active sessions (this one too); 404 ``session_not_found`` for any
    other id (an addition to the SproutGate document)."""
    await services.sessions.end_own(principal, session_id)
    return S.RevokedOut(revoked=True)


@router.post(
    "/auth/email/change",
    response_model=S.SentOut,
    responses=_errors(401, 403, 422, 429),
    tags=["sproutgate"],
)
async def change_email(
    body: S.EmailChangeIn,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.SentOut:
    """Mail a code to a new primary address (an addition to the SproutGate document). Needs
    ``currentPassword``, or a sign-in within the last 10 minutes (else 403
    ``recent_auth_required``); an address of another account answers the same and never
    completes."""
    expires = await services.accounts.request_primary_email_change(
        principal, body.email, ctx, current_password=body.currentPassword
    )
    return S.SentOut(sent=True, expiresAt=S.iso(expires))


@router.post(
    "/auth/email/verify",
    response_model=S.VerifiedOut,
    responses=_errors(401, 409, 422, 429),
    tags=["sproutgate"],
)
async def verify_email_change(
    body: S.EmailVerifyIn,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.VerifiedOut:
    """Check the code and make the address the primary one; the old one stops signing in and
    gets a notice."""
    user = await services.accounts.confirm_primary_email_change(principal, body.email, body.code, ctx)
    return S.VerifiedOut(verified=True, user=S.gate_user(await _view(services, user)))


@router.get("/auth/me", response_model=S.UserOut, responses=_errors(401), tags=["sproutgate"])
async def me(
    principal: Principal = Depends(current_principal), services: DomainServices = Depends(get_services)
) -> S.UserOut:
    """The signed-in user (never the password)."""
    return S.UserOut(user=S.gate_user(await _view(services, principal.user)))


@router.put(
    "/auth/profile", response_model=S.UserOut, responses=_errors(401, 403, 422, 429), tags=["sproutgate"]
)
async def update_profile(
    body: S.ProfileIn,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.UserOut:
    """Update password, username, phone, avatarUrl, bio or the mail language (``locale``).

    A password change needs ``currentPassword``, or a sign-in within the last 10 minutes (else 403
    ``recent_auth_required``); it signs out the user's other sessions and mails a notice."""
    sent = body.model_fields_set
    changes = ProfileChanges(
        username=body.username if "username" in sent else UNSET,
        avatar_url=body.avatarUrl if "avatarUrl" in sent else UNSET,
        bio=body.bio if "bio" in sent else UNSET,
        phone=body.phone if "phone" in sent else UNSET,
        locale=body.locale if "locale" in sent else UNSET,
    )
    user = await services.accounts.update_own_profile(
        principal, changes, ctx, new_password=body.password, current_password=body.currentPassword
    )
    return S.UserOut(user=S.gate_user(await _view(services, user)))


@router.post(
    "/auth/register", response_model=S.SentOut, responses=_errors(409, 422, 429), tags=["sproutgate"]
)
async def register(
    body: S.RegisterIn,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> S.SentOut:
    """Start a registration and mail a code (a taken account name answers 409)."""
    expires = await services.accounts.start_signup(
        body.email,
        body.password,
        body.username or body.account,
        ctx,
        account=body.account,
        redirect_to=body.redirectTo,
    )
    return S.SentOut(sent=True, expiresAt=S.iso(expires))


@router.post(
    "/auth/verify-email",
    response_model=S.CreatedOut,
    responses=_errors(401, 409, 422, 429),
    tags=["sproutgate"],
)
async def verify_email(
    body: S.VerifyEmailIn,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> S.CreatedOut:
    """Check the registration code and create the account."""
    user, _, _ = await services.accounts.complete_signup(body.code, ctx, account=body.account)
    return S.CreatedOut(created=True, user=S.gate_user(UserView(user, [])))


@router.post(
    "/auth/forgot-password", response_model=S.SentOut, responses=_errors(422, 429), tags=["sproutgate"]
)
async def forgot_password(
    body: S.ForgotIn,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> S.SentOut:
    """Mail a reset code (same answer whether or not account and email match)."""
    expires = await services.accounts.request_password_reset(body.email, ctx, account=body.account)
    return S.SentOut(sent=True, expiresAt=S.iso(expires))


@router.post(
    "/auth/reset-password", response_model=S.ResetOut, responses=_errors(401, 422, 429), tags=["sproutgate"]
)
async def reset_password(
    body: S.ResetIn,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> S.ResetOut:
    """Check the reset code and set the new password; every session ends."""
    await services.accounts.confirm_password_reset(body.code, body.newPassword, ctx, account=body.account)
    return S.ResetOut(reset=True)


@router.post(
    "/auth/secondary-email/request",
    response_model=S.SentOut,
    responses=_errors(401, 403, 422, 429),
    tags=["sproutgate"],
)
async def secondary_request(
    body: S.SecondaryRequestIn,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.SentOut:
    """Mail a code to an address the caller wants to add.

    Needs ``currentPassword``, or a sign-in within the last 10 minutes (else 403
    ``recent_auth_required``), like a password change."""
    expires = await services.accounts.request_secondary_email(
        principal, body.email, ctx, current_password=body.currentPassword
    )
    return S.SentOut(sent=True, expiresAt=S.iso(expires))


@router.post(
    "/auth/secondary-email/verify",
    response_model=S.VerifiedOut,
    responses=_errors(401, 409, 422, 429),
    tags=["sproutgate"],
)
async def secondary_verify(
    body: S.SecondaryVerifyIn,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.VerifiedOut:
    """Check the code and attach the address as a verified secondary email."""
    user = await services.accounts.verify_secondary_email(principal, body.email, body.code, ctx)
    return S.VerifiedOut(verified=True, user=S.gate_user(await _view(services, user)))


@router.post(
    "/auth/secondary-email/remove",
    response_model=S.RemovedOut,
    responses=_errors(401, 404, 422),
    tags=["sproutgate"],
)
async def secondary_remove(
    body: S.SecondaryRemoveIn,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.RemovedOut:
    """Remove one of the caller's secondary addresses (an addition to the document).

    404 ``email_not_found`` unless it is one of them; 422 for the primary address."""
    user = await services.accounts.remove_secondary_email(principal, body.email, ctx)
    return S.RemovedOut(removed=True, user=S.gate_user(await _view(services, user)))


@router.post(
    "/auth/delete-account",
    response_model=S.DeletedOut,
    responses=_errors(401, 422, 429),
    tags=["sproutgate"],
)
async def delete_account(
    body: S.DeleteAccountIn,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.DeletedOut:
    """Delete the caller's account, confirmed with ``currentPassword`` (an addition to the
    SproutGate document); every session and token ends."""
    await services.privacy.delete_own_account(principal, body.currentPassword, ctx)
    return S.DeletedOut(deleted=True)


# -- admin ------------------------------------------------------------------------------------
async def admin_actor(request: Request, services: DomainServices = Depends(get_services)) -> str:
    """The admin token (query ``token``, ``X-Admin-Token`` or bearer) or an admin-role user's
    access token. Failures are throttled per IP; answers 401 otherwise."""
    return await services.admin_access.authenticate(
        client_ip(request),
        [request.query_params.get("token"), request.headers.get("x-admin-token")],
        bearer=bearer_token(request),
    )


ADMIN_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _fields(body: S.AdminUserIn) -> UserFields:
    sent = body.model_fields_set
    mapping = {
        "account": "account",
        "password": "password",
        "username": "username",
        "email": "email",
        "level": "level",
        "sproutCoins": "sprout_coins",
        "secondaryEmails": "secondary_emails",
        "phone": "phone",
        "avatarUrl": "avatar_url",
        "bio": "bio",
        "disabled": "disabled",
        "role": "role",
        "resetMfa": "reset_mfa",
        "locale": "locale",
    }
    f = UserFields()
    for wire, name in mapping.items():
        if wire in sent:
            setattr(f, name, getattr(body, wire))
    return f


@router.get(
    "/admin/users", response_model=S.AdminUserList, responses=_errors(401, 422), tags=["sproutgate-admin"]
)
async def admin_list_users(
    response: Response,
    q: str | None = Query(default=None, max_length=200),
    page: int = Query(default=1, ge=1, le=1_000_000),
    pageSize: int = Query(default=50, ge=1, le=500),  # noqa: N803 - the document's name
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> S.AdminUserList:
    """List users, optionally filtered by ``q`` (account, username or email contains)."""
    total, views = await services.admin.list_users(q, page, pageSize)
    response.headers.update(ADMIN_HEADERS)
    return S.AdminUserList(total=total, users=[S.admin_gate_user(v) for v in views])


@router.post(
    "/admin/users",
    status_code=201,
    response_model=S.AdminUserOut,
    responses=_errors(401, 409, 422),
    tags=["sproutgate-admin"],
)
async def admin_create_user(
    body: S.AdminUserIn,
    request: Request,
    response: Response,
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> S.AdminUserOut:
    """Create a user with any fields (the password is hashed)."""
    view = await services.admin.create_user(_fields(body), actor, client_ip(request))
    response.headers.update(ADMIN_HEADERS)
    return S.AdminUserOut(user=S.admin_gate_user(view))


@router.put(
    "/admin/users/{account}",
    response_model=S.AdminUserOut,
    responses=_errors(401, 404, 409, 422),
    tags=["sproutgate-admin"],
)
async def admin_update_user(
    account: str,
    body: S.AdminUserIn,
    request: Request,
    response: Response,
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> S.AdminUserOut:
    """Change any field of a user, including level, sproutCoins, secondaryEmails, password, disabled,
    the mail language ``locale`` (``en`` or ``zh-CN``); ``resetMfa: true`` turns the user's
    second factors off (sessions end, the user is mailed)."""
    view = await services.admin.update_user(account, _fields(body), actor, client_ip(request))
    response.headers.update(ADMIN_HEADERS)
    return S.AdminUserOut(user=S.admin_gate_user(view))


@router.delete(
    "/admin/users/{account}",
    response_model=S.DeletedOut,
    responses=_errors(401, 404),
    tags=["sproutgate-admin"],
)
async def admin_delete_user(
    account: str,
    request: Request,
    response: Response,
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> S.DeletedOut:
    """Delete a user as they could themselves: sessions, codes and chats end, the address and
    account name are held, the address gets a notice."""
    await services.admin.delete_user(account, actor, client_ip(request))
    response.headers.update(ADMIN_HEADERS)
    return S.DeletedOut(deleted=True)
