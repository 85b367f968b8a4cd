"""Rules of leaving, as pure functions: how a deleted account's identifiers are held, who the
audit trail says deleted it, and what an export holds (and never holds).

An export carries what is stored about the user and never a secret: no password hash, no code
or code hash, no refresh token or its hash, no sealed mail text (it carries codes). Each record
below names its fields, so a column added to a table stays out of exports until it is added
here on purpose."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sproutgate.storage.models import (
    AgentChat,
    AuditEvent,
    AuthSession,
    OAuthConsent,
    OutboxMessage,
    Passkey,
    RecoveryCode,
    SignInClient,
    SignInDevice,
    TotpFactor,
    User,
    UserEmail,
)


class HeldKind(StrEnum):
    """What a held digest stands for; stored with the hold, so values never change."""

    EMAIL = "email"
    ACCOUNT = "account"


def held_digest(key: bytes, kind: HeldKind, value: str) -> str:
    """HMAC-SHA256 (hex, 64 characters) of an identifier under the server's hold key
    (``data/keys/held-identifiers.key``). ``value``: an address in its normalized form
    (``accounts.rules.normalize_email``) or a lower-cased account name.

    Keyed, because addresses and names are guessable: with a plain hash a copy of the database
    would tell whether a given person deleted an account recently."""
    message = b"held-identifier\x00" + kind.value.encode() + b"\x00" + value.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def hold_ends(deleted_at: datetime, hold_seconds: int) -> datetime:
    """When the identifiers of an account deleted at ``deleted_at`` become free again
    (``SPROUTGATE_DELETED_ACCOUNT_HOLD_SECONDS``; 0: at once)."""
    return deleted_at + timedelta(seconds=max(0, hold_seconds))


class DeletedBy(StrEnum):
    """Who deleted an account, as the audit trail's ``details.by`` and the notice mail say."""

    SELF = "self"
    ADMIN = "admin"


AUDIT_ACTION = "user.delete"


def self_actor(account: str) -> str:
    """The audit actor of a user acting on their own account: ``user:<account>``, the form
    admin-role users already appear under."""
    return f"user:{account}"


def deletion_details(by: DeletedBy) -> dict[str, Any]:
    """The audit event's details: who deleted the account, and nothing of its profile."""
    return {"by": by.value}


# -- exports ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExportedProfile:
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


@dataclass(frozen=True, slots=True)
class ExportedAddress:
    email: str
    primary: bool
    verified_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExportedSession:
    """A session as stored, ended ones included; its refresh tokens are secrets and stay out."""

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


@dataclass(frozen=True, slots=True)
class ExportedConnectedApp:
    """A third-party app the user let read their account (a remembered consent): which app,
    the scopes allowed (space-delimited, RFC 6749 §3.3), since when."""

    client_id: str
    client_name: str
    scopes: str
    granted_at: datetime


@dataclass(frozen=True, slots=True)
class ExportedAppGrant:
    """A grant to an app through the OpenID Connect provider (a session of kind ``oidc``),
    ended ones included: the app, the scopes granted, when it was made and last used, and how
    it ended. Never its tokens or their hashes."""

    id: str
    client_id: str | None
    client_name: str | None
    scope: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None


@dataclass(frozen=True, slots=True)
class ExportedSignInDevice:
    """A browser or app the user signed in from (for new-device notices): when first and last.
    Only a keyed hash identifies it (docs/security.md, notices), so there is nothing else to show."""

    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class ExportedSignInClient:
    """An address the user signed in from (kept for the lockout rule, docs/security.md)."""

    ip: str
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class ExportedAuditEvent:
    """A change recorded about the user. The client address it came from is the actor's (an
    administrator's), not the user's, and stays out."""

    at: datetime
    actor: str
    action: str
    details: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ExportedChat:
    """An agent conversation with its messages in their stored (pydantic-ai JSON) form."""

    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    held_other_users_content: bool
    messages: list[Any]


@dataclass(frozen=True, slots=True)
class ExportedAuthenticatorApp:
    """The user's authenticator app: when it was added and turned on, and last used; never its
    secret."""

    added_at: datetime
    active_since: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class ExportedRecoveryCode:
    """One recovery code of the current set: when it was made and used; never the code."""

    created_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class ExportedPasskey:
    """One passkey: our id for it, its name, when it was added and last used, and whether it
    syncs (backup eligible); never its credential id or public key."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    synced: bool


@dataclass(frozen=True, slots=True)
class ExportedSecondFactors:
    authenticator_app: ExportedAuthenticatorApp | None
    recovery_codes: list[ExportedRecoveryCode]
    passkeys: list[ExportedPasskey]


@dataclass(frozen=True, slots=True)
class ExportedMail:
    """A message kept in the outbox for one of the user's addresses: when and what kind, never
    its subject or body (sealed at rest, and they may carry codes)."""

    to: str
    kind: str
    status: str
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class AccountExport:
    """Everything stored about one user, as of ``exported_at``."""

    exported_at: datetime
    profile: ExportedProfile
    addresses: list[ExportedAddress]
    sessions: list[ExportedSession]
    connected_apps: list[ExportedConnectedApp]
    app_grants: list[ExportedAppGrant]
    sign_in_clients: list[ExportedSignInClient]
    sign_in_devices: list[ExportedSignInDevice]
    second_factors: ExportedSecondFactors
    audit_events: list[ExportedAuditEvent]
    agent_conversations: list[ExportedChat]
    mail: list[ExportedMail]


def exported_profile(u: User) -> ExportedProfile:
    return ExportedProfile(
        id=u.id,
        account=u.account,
        email=u.email,
        username=u.username,
        avatar_url=u.avatar_url,
        bio=u.bio,
        phone=u.phone,
        level=u.level,
        sprout_coins=u.sprout_coins,
        role=u.role,
        disabled=u.disabled,
        locale=u.locale,
        email_confirmed_at=u.email_confirmed_at,
        created_at=u.created_at,
        updated_at=u.updated_at,
    )


def exported_address(a: UserEmail) -> ExportedAddress:
    return ExportedAddress(
        email=a.email, primary=a.is_primary, verified_at=a.verified_at, created_at=a.created_at
    )


def exported_session(s: AuthSession, current_session_id: str | None) -> ExportedSession:
    return ExportedSession(
        id=s.id,
        kind=s.kind,
        created_at=s.created_at,
        auth_time=s.auth_time,
        last_used_at=s.last_seen_at,
        expires_at=s.expires_at,
        ended_at=s.revoked_at,
        end_reason=s.revoked_reason,
        ip=s.ip,
        user_agent=s.user_agent,
        current=s.id == current_session_id,
    )


def exported_connected_app(c: OAuthConsent, client_name: str) -> ExportedConnectedApp:
    return ExportedConnectedApp(
        client_id=c.client_id, client_name=client_name, scopes=c.scopes, granted_at=c.granted_at
    )


def exported_app_grant(s: AuthSession, client_name: str | None) -> ExportedAppGrant:
    return ExportedAppGrant(
        id=s.id,
        client_id=s.client_id,
        client_name=client_name,
        scope=s.scope,
        created_at=s.created_at,
        last_used_at=s.last_seen_at,
        expires_at=s.expires_at,
        ended_at=s.revoked_at,
        end_reason=s.revoked_reason,
    )


def exported_sign_in_client(c: SignInClient) -> ExportedSignInClient:
    return ExportedSignInClient(ip=c.ip, first_seen_at=c.first_seen_at, last_seen_at=c.last_seen_at)


def exported_sign_in_device(d: SignInDevice) -> ExportedSignInDevice:
    return ExportedSignInDevice(first_seen_at=d.first_seen_at, last_seen_at=d.last_seen_at)


def exported_second_factors(
    app: TotpFactor | None, codes: list[RecoveryCode], passkeys: list[Passkey]
) -> ExportedSecondFactors:
    return ExportedSecondFactors(
        authenticator_app=(
            ExportedAuthenticatorApp(
                added_at=app.created_at, active_since=app.activated_at, last_used_at=app.last_used_at
            )
            if app is not None
            else None
        ),
        recovery_codes=[ExportedRecoveryCode(created_at=c.created_at, used_at=c.used_at) for c in codes],
        passkeys=[
            ExportedPasskey(
                id=p.id,
                name=p.name,
                created_at=p.created_at,
                last_used_at=p.last_used_at,
                synced=p.backup_eligible,
            )
            for p in passkeys
        ],
    )


def exported_audit_event(e: AuditEvent) -> ExportedAuditEvent:
    return ExportedAuditEvent(at=e.at, actor=e.actor, action=e.action, details=e.details)


def exported_chat(c: AgentChat) -> ExportedChat:
    return ExportedChat(
        id=c.id,
        title=c.title,
        created_at=c.created_at,
        updated_at=c.updated_at,
        held_other_users_content=c.held_other_users_content,
        messages=list(c.messages or []),
    )


def exported_mail(m: OutboxMessage) -> ExportedMail:
    return ExportedMail(
        to=m.to_addr, kind=m.kind, status=m.status, created_at=m.created_at, sent_at=m.sent_at
    )
