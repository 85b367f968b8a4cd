"""SQL of the OpenID Connect provider: authorization codes, consents, which apps a browser
sign-in was used with, and the grant sessions apps hold. Never commits: the caller owns the
transaction. Whether a session still counts is domain.sessions.rules.session_is_active; rows
here are looked up by key and carry what it needs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.storage.models import (
    AuthorizationCode,
    AuthSession,
    OAuthConsent,
    OidcSessionClient,
    OidcSignInDemand,
    RefreshToken,
    User,
)
from sproutgate.storage.repositories import rowcount

OIDC_KIND = "oidc"  # domain.sessions.rules.SessionKind.OIDC, the kind of an app's grant session


class OidcRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    def _insert(self, model: Any) -> Any:
        """The INSERT of this engine's dialect (both offer ON CONFLICT)."""
        dialect = self.s.bind.dialect.name if self.s.bind is not None else "sqlite"
        return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(model)

    # -- authorization codes ------------------------------------------------------------------
    def add_code(self, code: AuthorizationCode) -> None:
        self.s.add(code)

    async def code_by_hash(self, code_hash: str) -> AuthorizationCode | None:
        """The code row, locked until commit on PostgreSQL (SQLite has one writer anyway)."""
        stmt = select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash).with_for_update()
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def use_code(self, code_id: str, now: datetime) -> bool:
        """Mark a code used; False when another request used it first."""
        res = await self.s.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == code_id, AuthorizationCode.used_at.is_(None))
            .values(used_at=now)
        )
        return rowcount(res) == 1

    async def purge_codes(self, before: datetime) -> int:
        res = await self.s.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < before))
        return rowcount(res)

    async def revoke_unused_codes(self, user_id: str, client_id: str, now: datetime) -> int:
        """Mark every unredeemed code of ``user_id`` for ``client_id`` revoked
        (``disconnected_at``), expired ones too: whether a code has expired depends on whose
        clock reads it, and the mark must not. How many (used and expired codes are purged a
        day after they expire, so there are few)."""
        res = await self.s.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.user_id == user_id,
                AuthorizationCode.client_id == client_id,
                AuthorizationCode.used_at.is_(None),
                AuthorizationCode.disconnected_at.is_(None),
            )
            .values(disconnected_at=now)
        )
        return rowcount(res)

    # -- fresh sign-ins asked for -------------------------------------------------------------
    async def sign_in_demand(self, key_hash: str, now: datetime) -> datetime | None:
        """The ``signed_in_after`` of the unexpired demand stored under ``key_hash``, or None."""
        stmt = select(OidcSignInDemand.signed_in_after).where(
            OidcSignInDemand.key_hash == key_hash, OidcSignInDemand.expires_at > now
        )
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def demand_sign_in(self, key_hash: str, signed_in_after: datetime, expires_at: datetime) -> None:
        """Store a demand; an existing one under the same key only ever gets stricter (a later
        ``signed_in_after``), so a second request cannot relax what the first asked for."""
        values = {"key_hash": key_hash, "signed_in_after": signed_in_after, "expires_at": expires_at}
        stmt = self._insert(OidcSignInDemand).values(**values)
        await self.s.execute(
            stmt.on_conflict_do_update(
                index_elements=["key_hash"],
                set_={"signed_in_after": signed_in_after, "expires_at": expires_at},
                where=OidcSignInDemand.signed_in_after < signed_in_after,
            )
        )

    async def purge_sign_in_demands(self, now: datetime) -> int:
        res = await self.s.execute(delete(OidcSignInDemand).where(OidcSignInDemand.expires_at <= now))
        return rowcount(res)

    # -- consents -----------------------------------------------------------------------------
    async def consent(self, user_id: str, client_id: str) -> OAuthConsent | None:
        return await self.s.get(OAuthConsent, (user_id, client_id))

    async def save_consent(self, user_id: str, client_id: str, scopes: str, now: datetime) -> None:
        """Store (or replace) the consent of ``user_id`` to ``client_id``; two at once (a double
        click) leave one row, the last written."""
        stmt = self._insert(OAuthConsent).values(
            user_id=user_id, client_id=client_id, scopes=scopes, granted_at=now
        )
        await self.s.execute(
            stmt.on_conflict_do_update(
                index_elements=["user_id", "client_id"], set_={"scopes": scopes, "granted_at": now}
            )
        )
        self.s.expire_all()

    async def delete_consent(self, user_id: str, client_id: str) -> None:
        await self.s.execute(
            delete(OAuthConsent).where(OAuthConsent.user_id == user_id, OAuthConsent.client_id == client_id)
        )

    async def consents_of(self, user_id: str) -> list[OAuthConsent]:
        stmt = select(OAuthConsent).where(OAuthConsent.user_id == user_id).order_by(OAuthConsent.granted_at)
        return list((await self.s.execute(stmt)).scalars())

    # -- browser sign-ins and apps --------------------------------------------------------------
    async def record_session_client(self, session_id: str, client_id: str, now: datetime) -> None:
        """Remember that the browser sign-in ``session_id`` was used with ``client_id`` (once:
        a concurrent request recording the same pair leaves the first row)."""
        values = {"session_id": session_id, "client_id": client_id, "first_at": now}
        await self.s.execute(self._insert(OidcSessionClient).values(**values).on_conflict_do_nothing())

    async def client_ids_of_session(self, session_id: str) -> list[str]:
        stmt = (
            select(OidcSessionClient.client_id)
            .where(OidcSessionClient.session_id == session_id)
            .order_by(OidcSessionClient.first_at, OidcSessionClient.client_id)
        )
        return list((await self.s.execute(stmt)).scalars())

    # -- grants -------------------------------------------------------------------------------
    def add_grant(self, grant: AuthSession, refresh_hash: str | None, now: datetime) -> None:
        self.s.add(grant)
        if refresh_hash is not None:
            self.s.add(
                RefreshToken(session_id=grant.id, token_hash=refresh_hash, parent_id=None, created_at=now)
            )

    async def grant_with_user(self, session_id: str) -> tuple[AuthSession, User] | None:
        """An app's grant session and its user, by the grant's id."""
        stmt = (
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == session_id, AuthSession.kind == OIDC_KIND)
        )
        row = (await self.s.execute(stmt)).first()
        return (row[0], row[1]) if row is not None else None

    async def grant_of_refresh(self, token_hash: str) -> tuple[AuthSession, User] | None:
        """The grant session (and user) a refresh token belongs to; rotated tokens included."""
        stmt = (
            select(AuthSession, User)
            .join(RefreshToken, RefreshToken.session_id == AuthSession.id)
            .join(User, User.id == AuthSession.user_id)
            .where(RefreshToken.token_hash == token_hash, AuthSession.kind == OIDC_KIND)
        )
        row = (await self.s.execute(stmt)).first()
        return (row[0], row[1]) if row is not None else None

    async def session(self, session_id: str) -> AuthSession | None:
        return await self.s.get(AuthSession, session_id)

    async def grants_of_user(self, user_id: str, now: datetime) -> list[dict[str, Any]]:
        """Per client, the user's grant sessions that may still be active: ``client_id``,
        ``first_at`` and ``last_at`` (created, last used). A pre-filter by index; the domain
        decides what counts."""
        stmt = (
            select(
                AuthSession.client_id,
                func.min(AuthSession.created_at).label("first_at"),
                func.max(AuthSession.last_seen_at).label("last_at"),
            )
            .where(
                AuthSession.user_id == user_id,
                AuthSession.kind == OIDC_KIND,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
            )
            .group_by(AuthSession.client_id)
        )
        return [dict(r) for r in (await self.s.execute(stmt)).mappings()]

    async def granted_scopes(
        self, user_id: str, client_id: str, now: datetime, seen_since: datetime | None = None
    ) -> list[str]:
        """The ``scope`` strings of the user's grants to ``client_id`` that may still be active
        (an index pre-filter, like ``grants_of_user``); with ``seen_since``, only grants used
        after that instant (not idle: ``last_seen_at > seen_since``)."""
        stmt = select(AuthSession.scope).where(
            AuthSession.user_id == user_id,
            AuthSession.client_id == client_id,
            AuthSession.kind == OIDC_KIND,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        if seen_since is not None:
            stmt = stmt.where(AuthSession.last_seen_at > seen_since)
        return [scope for scope in (await self.s.execute(stmt)).scalars() if scope]

    async def grants_of_client(self, client_id: str, now: datetime) -> list[tuple[str, str, str, str | None]]:
        """Every grant of ``client_id`` that may still be active (an index pre-filter), as
        (grant id, user id, its ``scope``, the scopes the user consented to for the client or
        None)."""
        stmt = (
            select(AuthSession.id, AuthSession.user_id, AuthSession.scope, OAuthConsent.scopes)
            .outerjoin(
                OAuthConsent,
                (OAuthConsent.user_id == AuthSession.user_id) & (OAuthConsent.client_id == client_id),
            )
            .where(
                AuthSession.client_id == client_id,
                AuthSession.kind == OIDC_KIND,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
            )
        )
        return [(r[0], r[1], r[2] or "", r[3]) for r in (await self.s.execute(stmt)).all()]

    async def refresh_is_current(self, token_hash: str) -> bool:
        """Whether the refresh token is the newest of its chain (not yet rotated)."""
        stmt = select(RefreshToken.rotated_at).where(RefreshToken.token_hash == token_hash)
        row = (await self.s.execute(stmt)).first()
        return row is not None and row[0] is None
