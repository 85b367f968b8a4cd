"""Tables. Table classes stay inside storage and domain; each API face renders its own schemas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def bind_processor(self, dialect):  # type: ignore[no-untyped-def]
        """On SQLite, ``process_bind_param`` and the SQLite DATETIME text format fused into one
        call (``datetime.isoformat``, implemented in C) where they give the same text: every
        write binds several timestamps, and the two generic steps were a tenth of a sign-in's
        Python time. Elsewhere, and should the two ever disagree, SQLAlchemy's own composition."""
        process = super().bind_processor(dialect)
        if dialect.name != "sqlite" or process is None:
            return process
        return _sqlite_utc_text if _agrees(process) else process

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_utc_text(value: datetime | None) -> str | None:
    """A datetime as UTCDateTime stores it on SQLite: UTC (naive values are UTC already),
    ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _agrees(process: Any) -> bool:
    """True when ``_sqlite_utc_text`` gives the text of SQLAlchemy's composition ``process``."""
    samples = (
        datetime(2026, 11, 30, 13, 5, 9, 120034),
        datetime(2026, 1, 2, 3, 4, 5),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 6, 1, 1, 30, tzinfo=timezone(timedelta(hours=8))),
        datetime(2026, 6, 1, 22, 30, 1, 5, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    )
    return all(_sqlite_utc_text(v) == process(v) for v in samples)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account: Mapped[str] = mapped_column(String(32))
    account_lower: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str] = mapped_column(String(64))
    username_lower: Mapped[str] = mapped_column(String(64), index=True)
    password_hash: Mapped[str] = mapped_column(String(512))
    role: Mapped[str] = mapped_column(String(16), default="user")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    level: Mapped[int] = mapped_column(Integer, default=0)
    sprout_coins: Mapped[int] = mapped_column(Integer, default=0)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    avatar_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    bio: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The language of every mail to the user (i18n.LANGS); docs/security.md, notices.
    locale: Mapped[str] = mapped_column(String(8), server_default="zh-CN")
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserEmail(Base):
    """Every address a user signs in with: the primary one and verified secondary ones.

    The primary key makes an address belong to one user only, whichever role it plays.
    """

    __tablename__ = "user_emails"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PendingSignup(Base):
    """A registration waiting for its emailed code; becomes a User when verified."""

    __tablename__ = "pending_signups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    account: Mapped[str | None] = mapped_column(String(32), nullable=True)
    account_lower: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(512))
    redirect_to: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    locale: Mapped[str | None] = mapped_column(String(8), nullable=True)  # from Accept-Language
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class VerificationCode(Base):
    """A one-time code, stored only as a keyed hash, bound to a purpose and an email."""

    __tablename__ = "verification_codes"
    __table_args__ = (Index("ix_verification_codes_purpose_email", "purpose", "email"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    purpose: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(320))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    code_hash: Mapped[str] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuthSession(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="runtime")  # runtime | gate | web
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # -- OpenID Connect (issue 12) ---------------------------------------------------------------
    # How the person signed in (RFC 8176 values, e.g. ["pwd"], ["pwd", "otp", "mfa"]); None for
    # sessions opened before it was recorded.
    amr: Mapped[list | None] = mapped_column(JSON, nullable=True)
    # A grant to an app (kind "oidc"): the client, the scopes granted, the browser sign-in (SSO
    # session) it came from, and the session it ends with (parent_id: that sign-in, or None for
    # an offline_access grant, which outlives it).
    client_id: Mapped[str | None] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=True, index=True
    )
    scope: Mapped[str | None] = mapped_column(String(256), nullable=True)
    sso_session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    parent_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)


class SignInClient(Base):
    """A client address a user signed in from successfully, and when last: sign-in failures
    from other addresses never block a client seen recently (docs/security.md, lockout)."""

    __tablename__ = "sign_in_clients"
    __table_args__ = (Index("ix_sign_in_clients_user_ip", "user_id", "ip"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    ip: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SignInDevice(Base):
    """A client a user signed in from, known only by a keyed hash (domain/sessions/devices.py):
    the pages' device cookie, or an API client's user agent and network. A sign-in from a
    client not listed here mails a notice (docs/security.md). Separate from
    ``sign_in_clients``, which serves the lockout rule."""

    __tablename__ = "sign_in_devices"
    __table_args__ = (Index("ix_sign_in_devices_user_device", "user_id", "device_hash"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class RefreshToken(Base):
    """Opaque refresh tokens, stored as SHA-256; a rotated token keeps its row for reuse detection."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128), nullable=True)
    details: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)


class OutboxMessage(Base):
    """Mail to send. Written in the same transaction as whatever it announces. ``subject`` and
    the bodies are sealed (``enc1:...``, infra/sealing.py) since they carry codes; rows queued
    before that hold them in clear."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    to_addr: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str] = mapped_column(Text)  # sealed, so longer than the clear subject
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # domain.mail.rules.MailStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class AdminConsoleSession(Base):
    """A browser signed in to the admin console with the admin token. The cookie holds a random
    value; only its SHA-256 is stored. ``admin_token_mac`` is a keyed MAC of the admin token the
    session was opened with (domain/console_sessions/rules.py)."""

    __tablename__ = "admin_console_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin_token_mac: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # if unused until then
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AgentChat(Base):
    __tablename__ = "agent_chats"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    messages: Mapped[list] = mapped_column(JSON, default=list)  # serialised pydantic-ai messages
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set once a tool returned text written by other users; never cleared (domain/chats/rules.py).
    held_other_users_content: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class TotpFactor(Base):
    """A user's authenticator app (RFC 6238): one per user. ``activated_at`` is None while the
    enrolment waits for its first code. The secret is sealed (``enc1:...``, infra/sealing.py
    ``SecretSealer``, bound to the user id); ``last_used_step`` is the last 30-second step a code
    was accepted for, so no step is accepted twice."""

    __tablename__ = "mfa_totp"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RecoveryCode(Base):
    """One recovery code of a user's current set, stored only as a keyed hash; single use."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class MfaChallenge(Base):
    """The second step of a sign-in whose password was right: an ``mfa_token`` (only its SHA-256
    is stored) to trade, with a code, for a session of ``session_kind``. Single use, short-lived,
    dead after a few wrong codes."""

    __tablename__ = "mfa_challenges"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_kind: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class HeldIdentifier(Base):
    """An address or account name of a deleted account, unavailable until ``held_until``.

    Only a keyed digest is stored (``domain/privacy/rules.py``): the table does not list who
    left, and a copy of the database alone cannot be searched for an address."""

    __tablename__ = "held_identifiers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))  # domain.privacy.rules.HeldKind
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    held_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class BackchannelDelivery(Base):
    """A back-channel logout to deliver (OpenID Connect Back-Channel Logout 1.0): a logout
    token for one client about one ended session, POSTed to ``uri`` by the worker with retries
    (domain/backchannel). Written in the transaction that ended the session. No foreign keys:
    the delivery outlives the session, the user and even the client it names. The token itself
    is signed at each attempt (``iat``/``exp`` fresh, ``jti`` fixed), so nothing signed is
    stored."""

    __tablename__ = "backchannel_outbox"
    __table_args__ = (Index("ix_backchannel_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(255), index=True)
    uri: Mapped[str] = mapped_column(String(2048))
    user_id: Mapped[str] = mapped_column(String(36))  # the token's sub
    session_id: Mapped[str] = mapped_column(String(36))  # the token's sid
    reason: Mapped[str] = mapped_column(String(32))  # why the session ended (revoked_reason)
    status: Mapped[str] = mapped_column(String(16))  # domain.backchannel.rules.DeliveryStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


# -- OAuth / OpenID Connect clients (issue 12) -------------------------------------------------
class OAuthClient(Base):
    """A registered OAuth 2.0 / OpenID Connect client (domain/clients). ``secret_hash`` is the
    keyed HMAC-SHA256 of its secret (None for public clients); never the secret. The lists are
    JSON arrays of strings."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    public: Mapped[bool] = mapped_column(Boolean)
    first_party: Mapped[bool] = mapped_column(Boolean)
    redirect_uris: Mapped[list] = mapped_column(JSON)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    scopes: Mapped[list] = mapped_column(JSON)
    grant_types: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# -- passkeys (WebAuthn; issue 13) ------------------------------------------------------------
class Passkey(Base):
    """A WebAuthn credential (a passkey) of a user: the public key only, never a private one.

    ``credential_id`` is the authenticator's credential id (base64url, at most 1023 bytes, WebAuthn
    §5.8.3); ``user_handle`` the user.id (base64url of 32 random bytes) the authenticator stores
    with a discoverable credential, the same for all of a user's passkeys. ``sign_count`` is the
    last signature counter seen (§6.1.1); ``backup_eligible`` (BE) never changes for a credential,
    ``backup_state`` (BS) is the latest seen (§6.3.3)."""

    __tablename__ = "passkeys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    user_handle: Mapped[str] = mapped_column(String(64), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE_Key (RFC 9052 §7)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    backup_state: Mapped[bool] = mapped_column(Boolean, default=False)
    aaguid: Mapped[str] = mapped_column(String(36), default="")
    transports: Mapped[list] = mapped_column(JSON, default=list)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PasskeyChallenge(Base):
    """A WebAuthn challenge waiting for its ceremony: only the SHA-256 of the challenge is stored.
    Single use (deleted when a response names it) and short-lived. ``purpose`` says which
    ceremony (domain.passkeys.rules.Ceremony); a registration is bound to ``user_id`` and the
    session that asked (``binding_hash``: SHA-256 of the session id) and keeps the user handle
    its options named; a passwordless sign-in to the browser that asked (``binding_hash``: SHA-256
    of a random handle kept in that browser's cookie), a second step to its password step
    (``mfa_challenge_id``)."""

    __tablename__ = "passkey_challenges"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=True
    )
    binding_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_handle: Mapped[str | None] = mapped_column(String(64), nullable=True)  # a registration's
    mfa_challenge_id: Mapped[str | None] = mapped_column(
        ForeignKey("mfa_challenges.id", ondelete="CASCADE"), index=True, nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuthorizationCode(Base):
    """An OAuth 2.0 authorization code (RFC 6749 §4.1.2): only its SHA-256 stored, single use,
    short-lived, bound to the client, redirect URI, PKCE challenge, nonce, scopes and the SSO
    session it was issued from. ``grant_session_id`` is the grant it was traded for, revoked if
    the code is presented again (RFC 6749 §4.1.2); ``disconnected_at`` is when the person
    disconnected the app before it was redeemed (it is refused from then on)."""

    __tablename__ = "oauth_authorization_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    scope: Mapped[str] = mapped_column(String(256))
    nonce: Mapped[str | None] = mapped_column(String(512), nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(64), nullable=True)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    amr: Mapped[list | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    grant_session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # Set when the person disconnected the app before the code was redeemed: it is refused.
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OidcSignInDemand(Base):
    """A fresh sign-in an authorization request asked for (``prompt=login``, ``max_age``) from
    a browser whose sign-in was older: any authorization request with the same binding (client,
    redirect URI, ``state``, ``nonce``, PKCE challenge; ``key_hash`` is their SHA-256) is
    answered only for a sign-in at or after ``signed_in_after``, whatever its own parameters say
    (OpenID Connect Core §3.1.2.1). Kept until every session signed in before it has ended."""

    __tablename__ = "oidc_sign_in_demands"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    signed_in_after: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class OAuthConsent(Base):
    """What a person allowed a third-party app to read: remembered per user and client, the
    scopes a space-delimited list."""

    __tablename__ = "oauth_consents"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), primary_key=True, index=True
    )
    scopes: Mapped[str] = mapped_column(String(256))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OidcSessionClient(Base):
    """Which apps a browser sign-in (SSO session) was used with, and since when: the clients to
    tell when it ends (back-channel logout)."""

    __tablename__ = "oidc_session_clients"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), primary_key=True, index=True
    )
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)


__all__ = [
    "AdminConsoleSession",
    "AgentChat",
    "AuditEvent",
    "AuthSession",
    "AuthorizationCode",
    "BackchannelDelivery",
    "Base",
    "HeldIdentifier",
    "MfaChallenge",
    "OAuthConsent",
    "OidcSessionClient",
    "OidcSignInDemand",
    "OAuthClient",
    "OutboxMessage",
    "Passkey",
    "PasskeyChallenge",
    "PendingSignup",
    "RecoveryCode",
    "RefreshToken",
    "UniqueConstraint",
    "TotpFactor",
    "User",
    "UserEmail",
    "VerificationCode",
    "new_id",
]
