"""SQL for leaving: what is stored about one user (read for an export, removed for a deletion)
and the holds on the identifiers of deleted accounts. Like every repository it never commits:
the caller owns the transaction. The rules (what is exported, how long a hold lasts, what a
digest is) live in ``domain/privacy``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.storage.models import (
    AgentChat,
    AuditEvent,
    AuthorizationCode,
    AuthSession,
    HeldIdentifier,
    MfaChallenge,
    OAuthClient,
    OAuthConsent,
    OidcSessionClient,
    OutboxMessage,
    Passkey,
    PasskeyChallenge,
    PendingSignup,
    RecoveryCode,
    RefreshToken,
    SignInClient,
    SignInDevice,
    TotpFactor,
    User,
    UserEmail,
    VerificationCode,
)
from sproutgate.storage.repositories import rowcount


class HeldIdentifierRepository:
    """Digests of identifiers that nobody may take until their hold ends."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def any_held(self, digests: Sequence[str], now: datetime) -> bool:
        """Whether one of ``digests`` is held after ``now`` (an ended hold counts as none, purged
        or not)."""
        if not digests:
            return False
        stmt = (
            select(HeldIdentifier.id)
            .where(HeldIdentifier.digest.in_(list(digests)), HeldIdentifier.held_until > now)
            .limit(1)
        )
        return (await self.s.execute(stmt)).first() is not None

    async def hold(self, kind: str, digest: str, deleted_at: datetime, held_until: datetime) -> None:
        """Hold ``digest`` until ``held_until``, replacing an earlier (ended) hold of it."""
        await self.s.execute(delete(HeldIdentifier).where(HeldIdentifier.digest == digest))
        self.s.add(HeldIdentifier(kind=kind, digest=digest, deleted_at=deleted_at, held_until=held_until))

    async def purge(self, now: datetime) -> int:
        """Forget holds that ended before ``now``; how many rows went."""
        res = await self.s.execute(delete(HeldIdentifier).where(HeldIdentifier.held_until <= now))
        return rowcount(res)


class AccountDataRepository:
    """Every row that belongs to or names one user."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def user_for_update(self, user_id: str) -> User | None:
        """The user row, locked until the transaction ends (PostgreSQL; SQLite has one writer)."""
        stmt = select(User).where(User.id == user_id).with_for_update()
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def addresses(self, user_id: str) -> list[UserEmail]:
        """The primary address first, then the secondary ones, oldest first."""
        stmt = (
            select(UserEmail)
            .where(UserEmail.user_id == user_id)
            .order_by(UserEmail.is_primary.desc(), UserEmail.created_at, UserEmail.email)
        )
        return list((await self.s.execute(stmt)).scalars())

    async def sessions(self, user_id: str, exclude_kind: str | None = None) -> list[AuthSession]:
        """Every stored session, ended ones included, newest first; without those of
        ``exclude_kind`` when given."""
        stmt = select(AuthSession).where(AuthSession.user_id == user_id)
        if exclude_kind is not None:
            stmt = stmt.where(AuthSession.kind != exclude_kind)
        stmt = stmt.order_by(AuthSession.created_at.desc(), AuthSession.id)
        return list((await self.s.execute(stmt)).scalars())

    async def app_grants(self, user_id: str, kind: str) -> list[tuple[AuthSession, str | None]]:
        """The user's sessions of ``kind`` (grants to apps), ended ones included, newest first,
        each with its client's name (None if the client row is gone)."""
        stmt = (
            select(AuthSession, OAuthClient.name)
            .outerjoin(OAuthClient, OAuthClient.client_id == AuthSession.client_id)
            .where(AuthSession.user_id == user_id, AuthSession.kind == kind)
            .order_by(AuthSession.created_at.desc(), AuthSession.id)
        )
        return [(grant, name) for grant, name in (await self.s.execute(stmt)).all()]

    async def consents(self, user_id: str) -> list[tuple[OAuthConsent, str]]:
        """What the user let third-party apps read, with each client's name, oldest first."""
        stmt = (
            select(OAuthConsent, OAuthClient.name)
            .join(OAuthClient, OAuthClient.client_id == OAuthConsent.client_id)
            .where(OAuthConsent.user_id == user_id)
            .order_by(OAuthConsent.granted_at, OAuthConsent.client_id)
        )
        return [(consent, name) for consent, name in (await self.s.execute(stmt)).all()]

    async def sign_in_devices(self, user_id: str) -> list[SignInDevice]:
        stmt = (
            select(SignInDevice)
            .where(SignInDevice.user_id == user_id)
            .order_by(SignInDevice.last_seen_at.desc(), SignInDevice.id)
        )
        return list((await self.s.execute(stmt)).scalars())

    async def sign_in_clients(self, user_id: str) -> list[SignInClient]:
        stmt = (
            select(SignInClient)
            .where(SignInClient.user_id == user_id)
            .order_by(SignInClient.last_seen_at.desc(), SignInClient.id)
        )
        return list((await self.s.execute(stmt)).scalars())

    async def audit_events_about(self, account: str) -> list[AuditEvent]:
        """Audit events whose target is ``account``, oldest first."""
        stmt = select(AuditEvent).where(AuditEvent.target == account).order_by(AuditEvent.at, AuditEvent.id)
        return list((await self.s.execute(stmt)).scalars())

    async def chats(self, user_id: str) -> list[AgentChat]:
        """The user's agent conversations with their messages, oldest first."""
        stmt = (
            select(AgentChat).where(AgentChat.user_id == user_id).order_by(AgentChat.created_at, AgentChat.id)
        )
        return list((await self.s.execute(stmt)).scalars())

    async def authenticator_app(self, user_id: str) -> TotpFactor | None:
        return await self.s.get(TotpFactor, user_id)

    async def recovery_codes(self, user_id: str) -> list[RecoveryCode]:
        """The user's current set of recovery codes (used ones too), oldest first."""
        stmt = (
            select(RecoveryCode)
            .where(RecoveryCode.user_id == user_id)
            .order_by(RecoveryCode.created_at, RecoveryCode.id)
        )
        return list((await self.s.execute(stmt)).scalars())

    async def passkeys(self, user_id: str) -> list[Passkey]:
        """The user's passkeys, oldest first."""
        stmt = select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at, Passkey.id)
        return list((await self.s.execute(stmt)).scalars())

    async def mail_to(self, addresses: Sequence[str]) -> list[OutboxMessage]:
        """Mail kept in the outbox for any of ``addresses``, newest first."""
        if not addresses:
            return []
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.to_addr.in_(list(addresses)))
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id)
        )
        return list((await self.s.execute(stmt)).scalars())

    async def remove(self, user: User, addresses: Sequence[str]) -> None:
        """Delete the user and everything that is theirs: addresses, codes mailed to one of
        ``addresses`` (sign-up codes and decoys belong to no user), sign-ups pending for those
        addresses, sessions with their refresh tokens, sign-in clients, second factors
        (authenticator app, recovery codes, passkeys, sign-ins waiting for their second step), agent
        conversations, and what apps held: consents, unused authorization codes, the record of
        which apps each browser sign-in was used with. (The foreign keys cascade too; the rows
        are named here so the list is one place.) Audit events, mail and queued back-channel
        logouts stay. (The user's own codes also end by
        ``domain.codes.service.end_outstanding_codes``.)"""
        emails = list(addresses)
        codes = VerificationCode.user_id == user.id
        if emails:
            codes = or_(codes, VerificationCode.email.in_(emails))
            await self.s.execute(delete(PendingSignup).where(PendingSignup.email.in_(emails)))
        await self.s.execute(delete(VerificationCode).where(codes))
        session_ids = select(AuthSession.id).where(AuthSession.user_id == user.id)
        await self.s.execute(delete(AuthorizationCode).where(AuthorizationCode.user_id == user.id))
        await self.s.execute(delete(OidcSessionClient).where(OidcSessionClient.session_id.in_(session_ids)))
        await self.s.execute(delete(OAuthConsent).where(OAuthConsent.user_id == user.id))
        await self.s.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(session_ids)))
        await self.s.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
        await self.s.execute(delete(SignInClient).where(SignInClient.user_id == user.id))
        await self.s.execute(delete(PasskeyChallenge).where(PasskeyChallenge.user_id == user.id))
        await self.s.execute(delete(Passkey).where(Passkey.user_id == user.id))
        await self.s.execute(delete(SignInDevice).where(SignInDevice.user_id == user.id))
        await self.s.execute(delete(MfaChallenge).where(MfaChallenge.user_id == user.id))
        await self.s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        await self.s.execute(delete(TotpFactor).where(TotpFactor.user_id == user.id))
        await self.s.execute(delete(AgentChat).where(AgentChat.user_id == user.id))
        await self.s.execute(delete(UserEmail).where(UserEmail.user_id == user.id))
        await self.s.delete(user)
