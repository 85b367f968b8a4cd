"""Wire schemas of the SproutGate API (camelCase, as in sproutgate-api.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_serializer

from sproutgate.api.wire import MfaCode, SixDigitCode, WireIn
from sproutgate.domain.admin.service import UserView
from sproutgate.domain.profiles.rules import SPROUTGATE_PROFILE as RULES


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _In(WireIn):
    model_config = ConfigDict(extra="ignore")


class GateUser(BaseModel):
    account: str
    username: str
    email: str
    level: int
    sproutCoins: int
    secondaryEmails: list[str]
    phone: str | None = None
    avatarUrl: str | None = None
    bio: str | None = None
    # Not in sproutgate-api.md, whose user object is open ("..."): the language of mail.
    locale: str = "zh-CN"
    createdAt: datetime
    updatedAt: datetime

    @field_serializer("createdAt", "updatedAt")
    def _iso(self, dt: datetime) -> str:
        return iso(dt)


class AdminMfa(BaseModel):
    """Whether a user has second factors on (never their secrets)."""

    totp: bool
    passkeys: int


class AdminGateUser(GateUser):
    disabled: bool
    role: str
    mfa: AdminMfa


def gate_user(view: UserView) -> GateUser:
    u = view.user
    return GateUser(
        account=u.account,
        username=u.username,
        email=u.email,
        level=u.level,
        sproutCoins=u.sprout_coins,
        secondaryEmails=view.secondary_emails,
        phone=u.phone,
        avatarUrl=u.avatar_url,
        bio=u.bio,
        locale=u.locale,
        createdAt=u.created_at,
        updatedAt=u.updated_at,
    )


def admin_gate_user(view: UserView) -> AdminGateUser:
    mfa = view.mfa
    return AdminGateUser(
        **gate_user(view).model_dump(),
        disabled=view.user.disabled,
        role=view.user.role,
        mfa=AdminMfa(totp=mfa.totp if mfa else False, passkeys=mfa.passkeys if mfa else 0),
    )


class LoginIn(_In):
    account: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class LoginMfaIn(_In):
    mfaToken: str = Field(min_length=1, max_length=256)
    code: MfaCode


class LoginOut(BaseModel):
    token: str
    expiresAt: str
    user: GateUser


MAX_TOKEN_LENGTH = 8192


class TokenIn(_In):
    # No max_length: an overlong token is just another invalid token ({"valid": false}).
    token: str


class VerifyOut(BaseModel):
    valid: bool
    user: GateUser | None = None


class UserOut(BaseModel):
    user: GateUser


class ProfileIn(_In):
    password: str | None = Field(default=None, max_length=1024)
    currentPassword: str | None = Field(default=None, max_length=1024)
    username: str | None = Field(default=None, max_length=RULES.username_max)
    phone: str | None = Field(default=None, max_length=RULES.phone_max)
    avatarUrl: str | None = Field(default=None, max_length=RULES.url_max)
    bio: str | None = Field(default=None, max_length=RULES.bio_max)
    locale: str | None = Field(
        default=None, max_length=16, description="Language of mail to the user: `en` or `zh-CN`."
    )


class RegisterIn(_In):
    account: str = Field(max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    username: str | None = Field(default=None, max_length=RULES.username_max)
    email: str = Field(max_length=320)
    redirectTo: str | None = Field(default=None, max_length=2048)


class SentOut(BaseModel):
    sent: bool
    expiresAt: str


class VerifyEmailIn(_In):
    account: str = Field(max_length=64)
    code: SixDigitCode


class CreatedOut(BaseModel):
    created: bool
    user: GateUser


class ForgotIn(_In):
    account: str = Field(max_length=64)
    email: str = Field(max_length=320)


class ResetIn(_In):
    account: str = Field(max_length=64)
    code: SixDigitCode
    newPassword: str = Field(min_length=1, max_length=1024)


class ResetOut(BaseModel):
    reset: bool


class SecondaryRequestIn(_In):
    email: str = Field(max_length=320)
    currentPassword: str | None = Field(default=None, max_length=1024)


class SecondaryRemoveIn(_In):
    email: str = Field(max_length=320)


class RemovedOut(BaseModel):
    removed: bool
    user: GateUser


class SecondaryVerifyIn(_In):
    email: str = Field(max_length=320)
    code: SixDigitCode


class VerifiedOut(BaseModel):
    verified: bool
    user: GateUser


class GateSession(BaseModel):
    """One of the caller's active sessions (GET /api/auth/sessions)."""

    id: str
    createdAt: datetime
    lastUsedAt: datetime
    ip: str | None = None
    userAgent: str | None = None
    current: bool

    @field_serializer("createdAt", "lastUsedAt")
    def _iso(self, dt: datetime) -> str:
        return iso(dt)


class SessionsOut(BaseModel):
    sessions: list[GateSession]


class RevokedOut(BaseModel):
    revoked: bool


class EmailChangeIn(_In):
    email: str = Field(max_length=320)
    currentPassword: str | None = Field(default=None, max_length=1024)


class EmailVerifyIn(_In):
    email: str = Field(max_length=320)
    code: SixDigitCode


class LogoutOut(BaseModel):
    loggedOut: bool


class AdminUserIn(_In):
    account: str | None = Field(default=None, max_length=64)
    password: str | None = Field(default=None, max_length=1024)
    username: str | None = Field(default=None, max_length=RULES.username_max)
    email: str | None = Field(default=None, max_length=320)
    level: int | None = Field(default=None, ge=0, le=1_000_000)
    sproutCoins: int | None = Field(default=None, ge=0, le=10**15)
    secondaryEmails: list[str] | None = Field(default=None, max_length=50)
    phone: str | None = Field(default=None, max_length=RULES.phone_max)
    avatarUrl: str | None = Field(default=None, max_length=RULES.url_max)
    bio: str | None = Field(default=None, max_length=RULES.bio_max)
    disabled: bool | None = None
    role: str | None = Field(default=None, pattern="^(user|admin)$")
    # True: turn every second factor of the user off (PUT only), end their sessions, mail them.
    resetMfa: StrictBool | None = None  # strict: "yes" or 1 is a 422, not a reset
    # Not in sproutgate-api.md (an added field): the language of mail to the user.
    locale: str | None = Field(
        default=None, max_length=16, description="Language of mail to the user: `en` or `zh-CN`."
    )


class AdminUserList(BaseModel):
    total: int
    users: list[AdminGateUser]


class AdminUserOut(BaseModel):
    user: AdminGateUser


class DeletedOut(BaseModel):
    deleted: bool


class DeleteAccountIn(_In):
    currentPassword: str = Field(min_length=1, max_length=1024)
