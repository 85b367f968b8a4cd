"""The runtime API (/api/v1): a thin translation of domain services to runtime-api-v1.md."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from sproutgate.api.deps import caller_context, current_principal, get_services
from sproutgate.api.problems import profile_rules, wire_field_names
from sproutgate.api.v1 import schemas as S
from sproutgate.domain.accounts.rules import normalize_email
from sproutgate.domain.context import CallerContext
from sproutgate.domain.errors import InvalidInput
from sproutgate.domain.profiles.rules import RUNTIME_PROFILE, UNSET, ProfileChanges
from sproutgate.domain.profiles.service import PublicProfile
from sproutgate.domain.registry import DomainServices
from sproutgate.domain.sessions.rules import SessionKind
from sproutgate.domain.sessions.service import IssuedSession, Principal

# Field messages name the runtime API's profile limits (runtime-api-v1.md).
router = APIRouter(prefix="/api/v1", dependencies=[Depends(profile_rules(RUNTIME_PROFILE))])


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        c: {"model": S.Problem, "content": {"application/problem+json": {}}, "description": str(c)}
        for c in codes
    }


def session_out(issued: IssuedSession) -> S.SessionOut:
    assert issued.refresh_token is not None
    return S.SessionOut(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        token_type="bearer",
        user=S.SessionUser(id=issued.user.id, email=issued.user.email),
    )


def profile_out(user: PublicProfile) -> S.ProfileOut:
    return S.ProfileOut(id=user.id, username=user.username, avatar_url=user.avatar_url, bio=user.bio)


NO_STORE = {"Cache-Control": "no-store"}


# Declared first on purpose: FastAPI tries routes in declaration order, and stepping over the
# ten routes that used to come first cost as much as the session check itself. This is the
# most frequent call.
@router.get("/users/me", response_model=S.ProfileOut, responses=_errors(401), tags=["users"])
async def get_me(request: Request) -> JSONResponse:
    """The signed-in user's profile."""
    # current_principal called here rather than declared as a dependency: FastAPI's solving of
    # a sub-dependency cost a tenth of this call, the busiest there is (docs/benchmarks.md).
    principal = await current_principal(request)
    # The four fields as they are stored (validated on the way in), without validating and
    # encoding a ProfileOut on the way out: that cost a sixth of this, the busiest call.
    user = principal.user
    return JSONResponse(
        {"id": user.id, "username": user.username, "avatar_url": user.avatar_url, "bio": user.bio}
    )


@router.post(
    "/auth/verifications",
    status_code=202,
    response_model=S.VerificationAccepted,
    responses=_errors(422, 429),
    tags=["auth"],
)
async def create_verification(
    body: S.VerificationCreate,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> S.VerificationAccepted:
    """Start a sign-up: store it pending and mail a 6-digit code."""
    await services.accounts.start_signup(
        body.email, body.password, body.username, ctx, redirect_to=body.redirect_to, rules=RUNTIME_PROFILE
    )
    return S.VerificationAccepted(email=body.email.strip().lower())


@router.post("/auth/verifications/resend", status_code=204, responses=_errors(422, 429), tags=["auth"])
async def resend_verification(
    body: S.EmailOnly,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> Response:
    """Mail a new sign-up code, replacing the previous one."""
    await services.accounts.resend_signup_code(body.email, ctx)
    return Response(status_code=204)


@router.post(
    "/auth/verifications/verify", response_model=S.SessionOut, responses=_errors(401, 422, 429), tags=["auth"]
)
async def verify_verification(
    body: S.VerificationVerify,
    response: Response,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> S.SessionOut:
    """Check the sign-up code, create the user and open a session."""
    _, issued, _ = await services.accounts.complete_signup(
        body.token, ctx, email=body.email, session=SessionKind.RUNTIME
    )
    assert issued is not None
    response.headers.update(NO_STORE)
    return session_out(issued)


@router.post(
    "/auth/sessions", response_model=S.SessionOut, responses=_errors(401, 403, 422, 429), tags=["auth"]
)
async def create_session(
    body: S.SessionCreate,
    response: Response,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> S.SessionOut:
    """Sign in with email and password. With a second factor on, 401 ``mfa_required`` with an
    ``mfa_token`` for /auth/sessions/mfa."""
    issued = await services.accounts.login(body.email, body.password, ctx, SessionKind.RUNTIME)
    response.headers.update(NO_STORE)
    return session_out(issued)


@router.post(
    "/auth/sessions/mfa", response_model=S.SessionOut, responses=_errors(401, 403, 422, 429), tags=["auth"]
)
async def create_session_mfa(
    body: S.MfaSessionCreate,
    response: Response,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> S.SessionOut:
    """Second step of a sign-in answered ``mfa_required``: the ``mfa_token`` and a code from the
    authenticator app or a recovery code; answers the session, as the sign-in would have."""
    issued = await services.mfa.complete_sign_in(body.mfa_token, body.code, ctx, SessionKind.RUNTIME)
    response.headers.update(NO_STORE)
    return session_out(issued)


@router.post(
    "/auth/sessions/refresh", response_model=S.SessionOut, responses=_errors(401, 422, 429), tags=["auth"]
)
async def refresh_session(
    body: S.RefreshRequest,
    response: Response,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> S.SessionOut:
    """Trade a refresh token for a new pair (rotation with reuse detection)."""
    issued = await services.sessions.rotate_refresh_token(body.refresh_token, ctx)
    response.headers.update(NO_STORE)
    return session_out(issued)


@router.delete("/auth/sessions", status_code=204, responses=_errors(422), tags=["auth"])
async def delete_session(
    body: S.RefreshRequest, services: DomainServices = Depends(get_services)
) -> Response:
    """Sign out: revoke the refresh token's session (204 even when it is unknown)."""
    await services.sessions.revoke_by_refresh_token(body.refresh_token)
    return Response(status_code=204)


@router.post("/auth/password-reset", status_code=204, responses=_errors(422, 429), tags=["auth"])
async def request_password_reset(
    body: S.PasswordResetRequest,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> Response:
    """Mail a password reset code (same answer whether or not the address is registered)."""
    await services.accounts.request_password_reset(body.email, ctx, redirect_to=body.redirect_to)
    return Response(status_code=204)


@router.post("/auth/password-reset/confirm", status_code=204, responses=_errors(401, 422, 429), tags=["auth"])
async def confirm_password_reset(
    body: S.PasswordResetConfirm,
    ctx: CallerContext = Depends(caller_context),
    services: DomainServices = Depends(get_services),
) -> Response:
    """Check the reset code and set the new password; signs out every session."""
    await services.accounts.confirm_password_reset(body.token, body.new_password, ctx, email=body.email)
    return Response(status_code=204)


@router.get("/auth/users", response_model=S.AuthUserOut, responses=_errors(401, 403, 404, 422), tags=["auth"])
async def get_user_by_email(
    email: str = Query(max_length=320),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.AuthUserOut:
    """Look a user up by email (administrators only)."""
    user = await services.profiles.user_by_email_for_admin(principal, email)
    return S.AuthUserOut(
        id=user.id, email=user.email, created_at=user.created_at, email_confirmed_at=user.email_confirmed_at
    )


@router.patch("/users/me", response_model=S.ProfileOut, responses=_errors(401, 422), tags=["users"])
async def patch_me(
    body: S.ProfilePatch,
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.ProfileOut:
    """Update the signed-in user's username, avatar, bio or mail language (``locale``)."""
    sent = body.model_fields_set
    if "username" in sent and body.username is None:
        raise InvalidInput({"username": "invalid_length"})
    changes = ProfileChanges(
        username=body.username if "username" in sent else UNSET,
        avatar_url=body.avatar_url if "avatar_url" in sent else UNSET,
        bio=body.bio if "bio" in sent else UNSET,
        locale=body.locale if "locale" in sent else UNSET,
    )
    user = await services.profiles.update_profile(principal.user.id, changes, RUNTIME_PROFILE)
    return profile_out(user)


# -- second factors ---------------------------------------------------------------------------
@router.get("/users/me/mfa", response_model=S.MfaStatusOut, responses=_errors(401), tags=["mfa"])
async def get_mfa(
    principal: Principal = Depends(current_principal), services: DomainServices = Depends(get_services)
) -> JSONResponse:
    """The caller's second factors: authenticator app on or off, passkeys, recovery codes left."""
    status = await services.mfa.status(principal.user.id)
    body = S.MfaStatusOut(
        totp=status.totp,
        passkeys=[
            S.PasskeyOut(id=p.id, name=p.name, created_at=p.created_at, last_used_at=p.last_used_at)
            for p in status.passkeys
        ],
        recovery_codes_left=status.recovery_codes_left,
    )
    return JSONResponse(body.model_dump(mode="json"), headers=NO_STORE)


@router.post(
    "/users/me/mfa/totp",
    response_model=S.TotpEnrolmentOut,
    responses=_errors(401, 409, 422, 429),
    tags=["mfa"],
)
async def start_totp(
    body: S.TotpStart,
    response: Response,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.TotpEnrolmentOut:
    """Begin enrolling an authenticator app (needs the password, or a sign-in within the last
    ``SPROUTGATE_RECENT_AUTH_SECONDS``); confirm it with /users/me/mfa/totp/verify."""
    enrolment = await services.mfa.start_totp(principal, ctx, password=body.password)
    response.headers.update(NO_STORE)
    return S.TotpEnrolmentOut(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@router.post(
    "/users/me/mfa/totp/verify",
    response_model=S.RecoveryCodesOut,
    responses=_errors(401, 409, 422, 429),
    tags=["mfa"],
)
async def verify_totp(
    body: S.TotpVerify,
    response: Response,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.RecoveryCodesOut:
    """Turn the pending authenticator app on with a current code; answers the recovery codes, once."""
    codes = await services.mfa.confirm_totp(principal, body.code, ctx)
    response.headers.update(NO_STORE)
    return S.RecoveryCodesOut(recovery_codes=codes)


@router.delete("/users/me/mfa/totp", status_code=204, responses=_errors(401, 409, 422, 429), tags=["mfa"])
async def delete_totp(
    body: S.MfaCodeIn,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> Response:
    """Turn the authenticator app off with a current code or a recovery code; ends the caller's
    other sessions."""
    await services.mfa.disable_totp(principal, body.code, ctx)
    return Response(status_code=204)


@router.post(
    "/users/me/mfa/recovery-codes",
    response_model=S.RecoveryCodesOut,
    responses=_errors(401, 409, 422, 429),
    tags=["mfa"],
)
async def regenerate_recovery_codes(
    body: S.MfaCodeIn,
    response: Response,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.RecoveryCodesOut:
    """A new set of recovery codes for a current code or a recovery code; the old set dies."""
    codes = await services.mfa.regenerate_recovery_codes(principal, body.code, ctx)
    response.headers.update(NO_STORE)
    return S.RecoveryCodesOut(recovery_codes=codes)


# -- sessions and the primary address (issue 14) ----------------------------------------------
@router.get(
    "/users/me/sessions", response_model=list[S.SessionListItem], responses=_errors(401), tags=["users"]
)
async def list_my_sessions(
    principal: Principal = Depends(current_principal), services: DomainServices = Depends(get_services)
) -> JSONResponse:
    """The caller's active sessions, newest first; ``current`` marks the one calling."""
    sessions = await services.sessions.list_for_user(principal.user.id, principal.session_id)
    body = [
        S.SessionListItem(
            id=x.id,
            created_at=x.created_at,
            last_used_at=x.last_used_at,
            ip=x.ip,
            user_agent=x.user_agent,
            current=x.current,
        ).model_dump(mode="json")
        for x in sessions
    ]
    return JSONResponse(body, headers=NO_STORE)


@router.post("/users/me/sessions/revoke-others", status_code=204, responses=_errors(401), tags=["users"])
async def revoke_my_other_sessions(
    principal: Principal = Depends(current_principal), services: DomainServices = Depends(get_services)
) -> Response:
    """End every session of the caller but this one (their access and refresh tokens at once)."""
    await services.sessions.end_others(principal)
    return Response(status_code=204)


@router.delete(
    "/users/me/sessions/{session_id}", status_code=204, responses=_errors(401, 404, 422), tags=["users"]
)
async def revoke_my_session(
    session_id: str = Path(max_length=64),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> Response:
    """End one of the caller's active sessions (this one too); 404 ``session_not_found`` for
    any other id."""
    await services.sessions.end_own(principal, session_id)
    return Response(status_code=204)


# The domain names the address "email"; this face calls it "new_email".
_NEW_EMAIL = [Depends(wire_field_names({"email": "new_email"}))]


@router.post(
    "/users/me/email",
    status_code=202,
    response_model=S.EmailChangeAccepted,
    responses=_errors(401, 403, 422, 429),
    dependencies=_NEW_EMAIL,
    tags=["users"],
)
async def change_my_email(
    body: S.EmailChange,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.EmailChangeAccepted:
    """Mail a code to a new primary address (the password, or none within
    ``SPROUTGATE_RECENT_AUTH_SECONDS`` of sign-in); confirm with /users/me/email/verify. The
    answer is the same for an address that belongs to someone else (that change never completes)."""
    await services.accounts.request_primary_email_change(
        principal, body.new_email, ctx, current_password=body.password
    )
    return S.EmailChangeAccepted(email=normalize_email(body.new_email))


@router.post(
    "/users/me/email/verify",
    response_model=S.ProfileOut,
    responses=_errors(401, 409, 422, 429),
    dependencies=_NEW_EMAIL,
    tags=["users"],
)
async def verify_my_email(
    body: S.EmailChangeVerify,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> S.ProfileOut:
    """Check the code and make the address the primary one; the old one stops signing in and
    gets a notice."""
    user = await services.accounts.confirm_primary_email_change(principal, body.new_email, body.token, ctx)
    return profile_out(user)


@router.delete("/users/me", status_code=204, responses=_errors(401, 422, 429), tags=["users"])
async def delete_me(
    body: S.AccountDeletion,
    ctx: CallerContext = Depends(caller_context),
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> Response:
    """Delete the signed-in user's account, confirmed with the password; every session ends."""
    await services.privacy.delete_own_account(principal, body.password, ctx)
    return Response(status_code=204)


@router.get("/users/me/export", response_model=S.AccountExportOut, responses=_errors(401), tags=["users"])
async def export_me(
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> JSONResponse:
    """Everything stored about the signed-in user, as JSON (no secrets)."""
    export = S.export_out(await services.privacy.export(principal))
    return JSONResponse(export.model_dump(mode="json"), headers=NO_STORE)


@router.post(
    "/users/search", response_model=list[S.ProfileOut], responses=_errors(401, 422, 429, 503), tags=["users"]
)
async def search_users(
    body: S.SearchRequest,
    principal: Principal = Depends(current_principal),
    services: DomainServices = Depends(get_services),
) -> list[S.ProfileOut]:
    """Search users: an address matches one email exactly, anything else display names."""
    return [profile_out(u) for u in await services.profiles.search(principal, body.query)]


@router.get("/infra/health", response_model=S.InfraHealth, tags=["infra"])
async def infra_health(request: Request, services: DomainServices = Depends(get_services)) -> JSONResponse:
    """Health of every backing service, with latency."""
    report = await services.health.check()
    body = {
        "status": report.status,
        "services": {
            name: {"status": h.status, "latency_ms": h.latency_ms} for name, h in report.services.items()
        },
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


health_router = APIRouter()


@health_router.get("/health", response_model=S.Health, tags=["infra"])
@router.get("/health", response_model=S.Health, tags=["infra"])
async def health() -> S.Health:
    """Liveness: the process answers."""
    return S.Health(status="ok")
