"""Wire schemas of the runtime API (snake_case, as in runtime-api-v1.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sproutgate.api.wire import EmailAddress, MfaCode, SixDigitCode, WireIn
from sproutgate.domain.privacy.rules import AccountExport
from sproutgate.domain.profiles.rules import RUNTIME_PROFILE as RULES
from sproutgate.domain.profiles.rules import RUNTIME_SEARCH_QUERY_MAX


class _In(WireIn):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class VerificationCreate(_In):
    username: str = Field(min_length=RULES.username_min, max_length=RULES.username_max)
    email: str = Field(max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    redirect_to: str | None = Field(default=None, max_length=2048)


class VerificationAccepted(BaseModel):
    email: str


class EmailOnly(_In):
    email: str = Field(max_length=320)


class VerificationVerify(_In):
    email: str = Field(max_length=320)
    token: SixDigitCode


class SessionCreate(_In):
    email: EmailAddress
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(_In):
    refresh_token: str = Field(min_length=1, max_length=512)


class PasswordResetRequest(_In):
    email: str = Field(max_length=320)
    redirect_to: str | None = Field(default=None, max_length=2048)


class PasswordResetConfirm(_In):
    email: str = Field(max_length=320)
    token: SixDigitCode
    new_password: str = Field(min_length=1, max_length=1024)


class SessionUser(BaseModel):
    id: str
    email: str


class SessionOut(BaseModel):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"
    user: SessionUser


class AuthUserOut(BaseModel):
    id: str
    email: str
    created_at: datetime
    email_confirmed_at: datetime | None = None


class ProfileOut(BaseModel):
    id: str
    username: str
    avatar_url: str | None = None
    bio: str | None = None


class ProfilePatch(_In):
    username: str | None = Field(default=None, min_length=RULES.username_min, max_length=RULES.username_max)
    avatar_url: str | None = Field(default=None, max_length=RULES.url_max)
    bio: str | None = Field(default=None, max_length=RULES.bio_max)
    # Not in runtime-api-v1.md: optional, so every documented request means what it did. The
    # answer stays the documented profile (docs/api-mapping.md).
    locale: str | None = Field(
        default=None, max_length=16, description="Language of mail to the user: `en` or `zh-CN`."
    )


class SearchRequest(_In):
    query: str = Field(min_length=1, max_length=RUNTIME_SEARCH_QUERY_MAX)


class MfaSessionCreate(_In):
    mfa_token: str = Field(min_length=1, max_length=256)
    code: MfaCode


class TotpStart(_In):
    # The current password; may be left out within SPROUTGATE_RECENT_AUTH_SECONDS of sign-in.
    password: str | None = Field(default=None, min_length=1, max_length=1024)


class TotpEnrolmentOut(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str


class TotpVerify(_In):
    code: SixDigitCode


class MfaCodeIn(_In):
    code: MfaCode


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class PasskeyOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None


class MfaStatusOut(BaseModel):
    totp: bool
    passkeys: list[PasskeyOut]
    recovery_codes_left: int


class SessionListItem(BaseModel):
    """One of the caller's active sessions (GET /users/me/sessions)."""

    id: str
    created_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


class EmailChange(_In):
    new_email: EmailAddress
    # The current password; may be left out within SPROUTGATE_RECENT_AUTH_SECONDS of sign-in.
    password: str | None = Field(default=None, min_length=1, max_length=1024)


class EmailChangeAccepted(BaseModel):
    email: str


class EmailChangeVerify(_In):
    new_email: EmailAddress
    token: SixDigitCode


class AccountDeletion(_In):
    password: str = Field(min_length=1, max_length=1024)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ExportProfile(_Out):
    id: str
    account: str
    email: str
    username: str
    avatar_url: str | None
    bio: str | None
    phone: str | None
    level: int
    sprout_coins: int
    role: str
    disabled: bool
    locale: str
    email_confirmed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ExportAddress(_Out):
    email: str
    primary: bool
    verified_at: datetime | None
    created_at: datetime


class ExportSession(_Out):
    id: str
    kind: str
    created_at: datetime
    auth_time: datetime
    last_used_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    ip: str | None
    user_agent: str | None
    current: bool


class ExportSignInDevice(_Out):
    first_seen_at: datetime
    last_seen_at: datetime


class ExportSignInClient(_Out):
    ip: str
    first_seen_at: datetime
    last_seen_at: datetime


class ExportAuthenticatorApp(_Out):
    added_at: datetime
    active_since: datetime | None
    last_used_at: datetime | None


class ExportRecoveryCode(_Out):
    created_at: datetime
    used_at: datetime | None


class ExportPasskey(_Out):
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    synced: bool


class ExportSecondFactors(_Out):
    authenticator_app: ExportAuthenticatorApp | None
    recovery_codes: list[ExportRecoveryCode]
    passkeys: list[ExportPasskey]


class ExportAuditEvent(_Out):
    at: datetime
    actor: str
    action: str
    details: dict[str, Any] | None


class ExportChat(_Out):
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    held_other_users_content: bool
    messages: list[Any]


class ExportMail(_Out):
    to: str
    kind: str
    status: str
    created_at: datetime
    sent_at: datetime | None


class ExportConnectedApp(_Out):
    client_id: str
    client_name: str
    scopes: str
    granted_at: datetime


class ExportAppGrant(_Out):
    id: str
    client_id: str | None
    client_name: str | None
    scope: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None


class AccountExportOut(_Out):
    """Everything stored about the caller (docs/api-mapping.md, "Leaving"); never a secret."""

    exported_at: datetime
    profile: ExportProfile
    addresses: list[ExportAddress]
    sessions: list[ExportSession]
    connected_apps: list[ExportConnectedApp]
    app_grants: list[ExportAppGrant]
    sign_in_clients: list[ExportSignInClient]
    sign_in_devices: list[ExportSignInDevice]
    second_factors: ExportSecondFactors
    audit_events: list[ExportAuditEvent]
    agent_conversations: list[ExportChat]
    mail: list[ExportMail]


def export_out(export: AccountExport) -> AccountExportOut:
    """The export in this face's spelling (the account page's download uses it too)."""
    return AccountExportOut.model_validate(export)


class ServiceHealth(BaseModel):
    status: str
    latency_ms: float


class InfraHealth(BaseModel):
    status: str
    services: dict[str, ServiceHealth]


class Health(BaseModel):
    status: str


class Problem(BaseModel):
    """RFC 7807 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str
    code: str | None = None
    request_id: str | None = None  # the request's id, as in its X-Request-ID header
    errors: list[dict[str, str]] | None = None
