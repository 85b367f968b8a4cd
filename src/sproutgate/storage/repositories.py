"""All SQL lives here. Repositories never commit: the caller owns the transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Result,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.storage import sqlite_driver
from sproutgate.storage.models import (
    AdminConsoleSession,
    AuditEvent,
    AuthSession,
    Base,
    OutboxMessage,
    PendingSignup,
    RefreshToken,
    SignInClient,
    SignInDevice,
    User,
    UserEmail,
    VerificationCode,
    new_id,
)
from sproutgate.storage.statements import Statements


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched. (``AsyncSession.execute`` is typed as
    answering any ``Result``; for those statements it is a ``CursorResult``.)"""
    return cast(CursorResult[Any], result).rowcount or 0


async def ping(s: AsyncSession) -> None:
    """One round trip to the database (raises when it is unreachable)."""
    await s.execute(select(1))


async def lock_for_transaction(s: AsyncSession, key: str) -> None:
    """Serialise transactions that touch the same ``key`` (e.g. an email address) until commit.

    PostgreSQL: a transaction-level advisory lock, so concurrent requests for one address queue
    instead of failing on a unique constraint. SQLite already runs one writer at a time."""
    if s.bind is not None and s.bind.dialect.name == "postgresql":
        await s.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, user_id: str) -> User | None:
        return await self.s.get(User, user_id)

    async def by_account(self, account: str) -> User | None:
        return (
            await self.s.execute(select(User).where(User.account_lower == account.lower()))
        ).scalar_one_or_none()

    async def by_email(self, email: str) -> User | None:
        """Primary or verified secondary address."""
        stmt = (
            select(User)
            .join(UserEmail, UserEmail.user_id == User.id)
            .where(UserEmail.email == email.lower(), UserEmail.verified_at.is_not(None))
        )
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def by_primary_email(self, email: str) -> User | None:
        return (await self.s.execute(select(User).where(User.email == email.lower()))).scalar_one_or_none()

    async def email_owner(self, email: str) -> str | None:
        return (
            await self.s.execute(select(UserEmail.user_id).where(UserEmail.email == email.lower()))
        ).scalar_one_or_none()

    async def account_taken(self, account_lower: str) -> bool:
        stmt = select(func.count()).select_from(User).where(User.account_lower == account_lower)
        return bool((await self.s.execute(stmt)).scalar_one())

    async def accounts_like(self, prefix: str) -> set[str]:
        stmt = select(User.account_lower).where(User.account_lower.like(f"{prefix}%"))
        return set((await self.s.execute(stmt)).scalars())

    def add(self, user: User) -> None:
        self.s.add(user)

    async def add_email(self, user_id: str, email: str, primary: bool, at: datetime) -> None:
        self.s.add(
            UserEmail(email=email.lower(), user_id=user_id, is_primary=primary, verified_at=at, created_at=at)
        )

    async def secondary_emails(self, user_id: str) -> list[str]:
        stmt = (
            select(UserEmail.email)
            .where(UserEmail.user_id == user_id, UserEmail.is_primary.is_(False))
            .order_by(UserEmail.created_at, UserEmail.email)
        )
        return list((await self.s.execute(stmt)).scalars())

    async def secondary_emails_for(self, user_ids: Sequence[str]) -> dict[str, list[str]]:
        if not user_ids:
            return {}
        stmt = (
            select(UserEmail.user_id, UserEmail.email)
            .where(UserEmail.user_id.in_(user_ids), UserEmail.is_primary.is_(False))
            .order_by(UserEmail.created_at, UserEmail.email)
        )
        out: dict[str, list[str]] = {uid: [] for uid in user_ids}
        for uid, email in await self.s.execute(stmt):
            out[uid].append(email)
        return out

    async def remove_secondary_email(self, user_id: str, email: str) -> bool:
        """Detach one secondary address of the user; False when it is not one of theirs."""
        res = await self.s.execute(
            delete(UserEmail).where(
                UserEmail.user_id == user_id,
                UserEmail.email == email.lower(),
                UserEmail.is_primary.is_(False),
            )
        )
        return rowcount(res) == 1

    async def replace_secondary_emails(self, user_id: str, emails: list[str], at: datetime) -> None:
        await self.s.execute(
            delete(UserEmail).where(UserEmail.user_id == user_id, UserEmail.is_primary.is_(False))
        )
        await self.s.flush()
        for email in emails:
            await self.add_email(user_id, email, False, at)

    async def remove_secondary_emails(self, user_id: str, emails: Sequence[str]) -> None:
        """Delete these secondary addresses of the user (a primary one is never touched)."""
        if emails:
            await self.s.execute(
                delete(UserEmail).where(
                    UserEmail.user_id == user_id,
                    UserEmail.is_primary.is_(False),
                    UserEmail.email.in_([e.lower() for e in emails]),
                )
            )
            await self.s.flush()

    async def set_primary_email(self, user: User, email: str, at: datetime) -> None:
        await self.s.execute(
            delete(UserEmail).where(UserEmail.user_id == user.id, UserEmail.is_primary.is_(True))
        )
        await self.s.flush()
        user.email = email.lower()
        await self.add_email(user.id, email, True, at)

    async def list_admin(
        self,
        q: str | None,
        offset: int,
        limit: int,
        name_q: str | None = None,
        address_q: str | None = None,
    ) -> tuple[int, list[User]]:
        """A page of users, oldest first, and how many match in all. ``q`` (lower case) is a
        substring of the account; ``address_q`` (normalised like stored addresses, default
        ``q``) of any address of the user; ``name_q`` (normalised like ``username_lower``,
        default ``q``) of the display name. % and _ match literally."""
        cond = None
        if q:
            with_address = select(UserEmail.user_id).where(
                UserEmail.email.contains(address_q or q, autoescape=True)
            )
            cond = or_(
                User.account_lower.contains(q, autoescape=True),
                User.username_lower.contains(name_q or q, autoescape=True),
                User.id.in_(with_address),
            )
        count_stmt = select(func.count()).select_from(User)
        list_stmt = select(User).order_by(User.created_at, User.account_lower).offset(offset).limit(limit)
        if cond is not None:
            count_stmt = count_stmt.where(cond)
            list_stmt = list_stmt.where(cond)
        total = (await self.s.execute(count_stmt)).scalar_one()
        return int(total), list((await self.s.execute(list_stmt)).scalars())

    async def count(self) -> int:
        return int((await self.s.execute(select(func.count()).select_from(User))).scalar_one())


class PendingSignupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def by_email(self, email: str) -> PendingSignup | None:
        stmt = select(PendingSignup).where(PendingSignup.email == email.lower())
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def by_account(self, account: str) -> list[PendingSignup]:
        stmt = (
            select(PendingSignup)
            .where(PendingSignup.account_lower == account.lower())
            .order_by(PendingSignup.created_at.desc())
        )
        return list((await self.s.execute(stmt)).scalars())

    def add(self, pending: PendingSignup) -> None:
        self.s.add(pending)

    async def delete(self, pending: PendingSignup) -> None:
        await self.s.delete(pending)

    async def purge(self, now: datetime) -> int:
        res = await self.s.execute(delete(PendingSignup).where(PendingSignup.expires_at < now))
        return rowcount(res)


class CodeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def lock(self, purpose: str, email: str) -> None:
        """Queue concurrent transactions issuing codes for this purpose and address."""
        await lock_for_transaction(self.s, f"code:{purpose}:{email.lower()}")

    async def replace(self, code: VerificationCode, per_user: bool = False) -> None:
        """Store a new code, removing any earlier code for the same purpose and email (with
        ``per_user``, only the earlier code of the same user)."""
        await self.lock(code.purpose, code.email)
        stmt = delete(VerificationCode).where(
            VerificationCode.purpose == code.purpose, VerificationCode.email == code.email
        )
        if per_user:
            stmt = stmt.where(VerificationCode.user_id == code.user_id)
        await self.s.execute(stmt)
        self.s.add(code)

    async def current(self, purpose: str, email: str, user_id: str | None = None) -> VerificationCode | None:
        """The code for this purpose and email (given ``user_id``, that user's only)."""
        stmt = select(VerificationCode).where(
            VerificationCode.purpose == purpose, VerificationCode.email == email.lower()
        )
        if user_id is not None:
            stmt = stmt.where(VerificationCode.user_id == user_id)
        return (await self.s.execute(stmt.order_by(VerificationCode.created_at.desc()))).scalars().first()

    async def current_for_user(self, purpose: str, user_id: str) -> list[VerificationCode]:
        stmt = (
            select(VerificationCode)
            .where(VerificationCode.purpose == purpose, VerificationCode.user_id == user_id)
            .order_by(VerificationCode.created_at.desc())
        )
        return list((await self.s.execute(stmt)).scalars())

    async def delete(self, code: VerificationCode) -> bool:
        """False when a concurrent transaction deleted (used) the code first."""
        res = await self.s.execute(delete(VerificationCode).where(VerificationCode.id == code.id))
        return rowcount(res) == 1

    async def delete_for(self, purpose: str, email: str) -> None:
        await self.s.execute(
            delete(VerificationCode).where(
                VerificationCode.purpose == purpose, VerificationCode.email == email.lower()
            )
        )

    async def delete_for_user(self, user_id: str, emails: Sequence[str] | None = None) -> int:
        """Delete the user's codes (only those sent to ``emails`` when given); how many."""
        stmt = delete(VerificationCode).where(VerificationCode.user_id == user_id)
        if emails is not None:
            stmt = stmt.where(VerificationCode.email.in_([e.lower() for e in emails]))
        res = await self.s.execute(stmt)
        return rowcount(res)

    async def count_attempt(self, code_id: str) -> None:
        await self.s.execute(
            update(VerificationCode)
            .where(VerificationCode.id == code_id)
            .values(attempts=VerificationCode.attempts + 1)
        )

    async def purge(self, now: datetime) -> int:
        res = await self.s.execute(delete(VerificationCode).where(VerificationCode.expires_at < now))
        return rowcount(res)


# Built once: composing a select() on every request cost about as much as running it. With
# bind parameters the statement's cache key is the same each time, so SQLAlchemy reuses its
# compiled form too. A lookup by key only: whether the session still counts is
# domain.sessions.rules.session_is_active, applied to the two session columns and the user's
# ``disabled`` this row carries.
_SESSION_WITH_USER = (
    select(
        *User.__table__.columns,
        AuthSession.revoked_at.label("session_revoked_at"),
        AuthSession.expires_at.label("session_expires_at"),
        AuthSession.last_seen_at.label("session_last_seen_at"),
    )
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(AuthSession.id == bindparam("session_id"), AuthSession.user_id == bindparam("user_id"))
)


def session_with_user_now(conn: sqlite3.Connection, session_id: str, user_id: str) -> dict[str, Any] | None:
    """``SessionRepository.session_with_user`` on ``Database.read_now()`` (SQLite): the same
    statement without the session, engine and ORM loading around it."""
    return sqlite_driver.prepared(_SESSION_WITH_USER).first(conn, session_id=session_id, user_id=user_id)


# What a sign-in needs before the hash check: built once, run as Core (inline on SQLite).
_LOGIN_COLUMNS = (User.id, User.password_hash, User.disabled)
_LOGIN_BY_ACCOUNT = select(*_LOGIN_COLUMNS).where(User.account_lower == bindparam("key"))
_LOGIN_BY_EMAIL = (
    select(*_LOGIN_COLUMNS)
    .join(UserEmail, UserEmail.user_id == User.id)
    .where(UserEmail.email == bindparam("key"), UserEmail.verified_at.is_not(None))
)


def _table(model: type[Base]) -> Table:
    """A model's table: a ``Table``, which declarative models type as the wider FromClause."""
    return cast(Table, model.__table__)


def _login_statement(key: str) -> Any:
    return _LOGIN_BY_EMAIL if "@" in key else _LOGIN_BY_ACCOUNT


_clients = _table(SignInClient)
_KNOWN_CLIENT = (
    select(_clients.c.id)
    .where(
        _clients.c.user_id == bindparam("uid"),
        _clients.c.ip == bindparam("client_ip"),
        _clients.c.last_seen_at > bindparam("since"),
    )
    .limit(1)
)
_TOUCH_CLIENT = (
    update(_clients)
    .where(_clients.c.user_id == bindparam("uid"), _clients.c.ip == bindparam("client_ip"))
    .values(last_seen_at=bindparam("now"))
)
_ADD_CLIENT = insert(_clients).values(
    id=bindparam("new_id"),
    user_id=bindparam("uid"),
    ip=bindparam("client_ip"),
    first_seen_at=bindparam("now"),
    last_seen_at=bindparam("now"),
)


async def purge_sign_in_clients(s: AsyncSession, before: datetime) -> int:
    """Forget client addresses last seen before ``before``; how many rows went."""
    res = await s.execute(delete(SignInClient).where(SignInClient.last_seen_at < before))
    return rowcount(res)


def known_client_now(conn: sqlite3.Connection, user_id: str, ip: str, since: datetime) -> bool:
    """Whether ``user_id`` signed in successfully from ``ip`` after ``since``, on
    ``Database.read_now()`` (SQLite)."""
    return (
        sqlite_driver.prepared(_KNOWN_CLIENT).first(conn, uid=user_id, client_ip=ip, since=since) is not None
    )


async def known_client(s: AsyncSession, user_id: str, ip: str, since: datetime) -> bool:
    """``known_client_now`` in an AsyncSession (other databases)."""
    row = (await s.execute(_KNOWN_CLIENT, {"uid": user_id, "client_ip": ip, "since": since})).first()
    return row is not None


def login_candidate_now(conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
    """``id``, ``password_hash`` and ``disabled`` of the user a sign-in names (``key``, lower
    case: an address, primary or verified secondary, when it holds @, else an account name),
    on ``Database.read_now()`` (SQLite)."""
    return sqlite_driver.prepared(_login_statement(key)).first(conn, key=key)


async def login_candidate(s: AsyncSession, key: str) -> dict[str, Any] | None:
    """``login_candidate_now`` in an AsyncSession (other databases)."""
    row = (await s.execute(_login_statement(key), {"key": key})).mappings().first()
    return dict(row) if row is not None else None


# A refresh-token rotation as Core statements on ``Statements`` (storage.statements), so that
# on SQLite it runs inline (Database.write_now) without the session's unit of work. Bind
# parameter names differ from column names, which insert() and update() reserve.
_refresh_tokens = _table(RefreshToken)
_sessions = _table(AuthSession)
_ROTATION_ROW = (
    select(
        RefreshToken.id.label("token_id"),
        RefreshToken.rotated_at.label("token_rotated_at"),
        AuthSession.id.label("session_id"),
        AuthSession.revoked_at.label("session_revoked_at"),
        AuthSession.expires_at.label("session_expires_at"),
        AuthSession.kind.label("session_kind"),
        AuthSession.client_id.label("session_client_id"),
        AuthSession.scope.label("session_scope"),
        AuthSession.auth_time.label("session_auth_time"),
        AuthSession.amr.label("session_amr"),
        AuthSession.sso_session_id.label("session_sso_id"),
        AuthSession.last_seen_at.label("session_last_seen_at"),
        *User.__table__.columns,
    )
    .join(AuthSession, AuthSession.id == RefreshToken.session_id)
    .join(User, User.id == AuthSession.user_id)
    .where(RefreshToken.token_hash == bindparam("hash"))
)
_MARK_ROTATED = (
    update(_refresh_tokens)
    .where(_refresh_tokens.c.id == bindparam("token_id"), _refresh_tokens.c.rotated_at.is_(None))
    .values(rotated_at=bindparam("now"))
)
_ADD_REFRESH = insert(_refresh_tokens).values(
    id=bindparam("new_id"),
    session_id=bindparam("sid"),
    token_hash=bindparam("hash"),
    parent_id=bindparam("parent"),
    created_at=bindparam("now"),
)
_TOUCH_SESSION = (
    update(_sessions).where(_sessions.c.id == bindparam("sid")).values(last_seen_at=bindparam("now"))
)
# An access-token check records a use only when the stored one is older than ``stale``: a
# concurrent check that lost the race changes nothing.
_TOUCH_SESSION_IF_STALE = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("sid"), _sessions.c.last_seen_at < bindparam("stale"))
    .values(last_seen_at=bindparam("now"))
)
# Ending sessions (domain.sessions.service.end_sessions, the one way a session ends): one of a
# user's sessions, or all of them but ``keep`` ('' keeps none: no session has that id). Each is
# one UPDATE ... RETURNING (SQLite 3.35+, PostgreSQL): what it answers is exactly what it ended.
# One session, and the apps' grants made through it that end with it (``parent_id``: set by
# domain/oidc for grants that do not survive sign-out, domain/oidc/rules.py
# ``survives_sign_out``).
_END_ONE_SESSION = (
    update(_sessions)
    .where(
        or_(_sessions.c.id == bindparam("sid"), _sessions.c.parent_id == bindparam("sid")),
        _sessions.c.user_id == bindparam("uid"),
        _sessions.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("now"), revoked_reason=bindparam("reason"))
    .returning(_sessions.c.id)
)
# Every grant of the user to one app (kind ``oidc``, ``client_id``): the app was disconnected.
_END_APP_GRANTS = (
    update(_sessions)
    .where(
        _sessions.c.user_id == bindparam("uid"),
        _sessions.c.client_id == bindparam("cid"),
        _sessions.c.kind == "oidc",
        _sessions.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("now"), revoked_reason=bindparam("reason"))
    .returning(_sessions.c.id)
)
_END_USER_SESSIONS = (
    update(_sessions)
    .where(
        _sessions.c.user_id == bindparam("uid"),
        _sessions.c.revoked_at.is_(None),
        _sessions.c.id != bindparam("keep"),
        # The grants apps got through the kept sign-in stay with it.
        or_(_sessions.c.parent_id.is_(None), _sessions.c.parent_id != bindparam("keep")),
    )
    .values(revoked_at=bindparam("now"), revoked_reason=bindparam("reason"))
    .returning(_sessions.c.id)
)
_ADD_SESSION = insert(_sessions).values(
    id=bindparam("new_id"),
    user_id=bindparam("uid"),
    kind=bindparam("session_kind"),
    created_at=bindparam("now"),
    auth_time=bindparam("now"),
    last_seen_at=bindparam("now"),
    expires_at=bindparam("until"),
    ip=bindparam("client_ip"),
    user_agent=bindparam("agent"),
    amr=bindparam("amr", type_=AuthSession.__table__.c.amr.type),
)
_ACTIVE_USER_BY_ID = select(*User.__table__.columns).where(
    User.id == bindparam("uid"), User.disabled.is_(False)
)
_users = _table(User)
_SET_PASSWORD_HASH = (
    update(_users).where(_users.c.id == bindparam("uid")).values(password_hash=bindparam("new"))
)


_devices = _table(SignInDevice)
_TOUCH_DEVICE = (
    update(_devices)
    .where(_devices.c.user_id == bindparam("uid"), _devices.c.device_hash == bindparam("device"))
    .values(last_seen_at=bindparam("now"))
)
_ANY_DEVICE = select(_devices.c.id).where(_devices.c.user_id == bindparam("uid")).limit(1)
_ADD_DEVICE = insert(_devices).values(
    id=bindparam("new_id"),
    user_id=bindparam("uid"),
    device_hash=bindparam("device"),
    first_seen_at=bindparam("now"),
    last_seen_at=bindparam("now"),
)
_outbox = _table(OutboxMessage)
_ADD_OUTBOX = insert(_outbox).values(
    id=bindparam("new_id"),
    message_id=bindparam("mid"),
    to_addr=bindparam("to"),
    subject=bindparam("sealed_subject"),
    text_body=bindparam("sealed_text"),
    html_body=bindparam("sealed_html"),
    kind=bindparam("mail_kind"),
    status=bindparam("mail_status"),
    attempts=0,
    created_at=bindparam("now"),
    next_attempt_at=bindparam("now"),
)


async def add_outbox_row(run: Statements, message: OutboxMessage) -> None:
    """Insert a built (not yet added) outbox message as one Core statement: queued mail on the
    inline write path (``Database.write_now``), or in any unit of work through
    ``SessionStatements``."""
    await run.run(
        _ADD_OUTBOX,
        new_id=message.id or new_id(),
        mid=message.message_id,
        to=message.to_addr,
        sealed_subject=message.subject,
        sealed_text=message.text_body,
        sealed_html=message.html_body,
        mail_kind=message.kind,
        mail_status=message.status,
        now=message.created_at,
    )


async def purge_sign_in_devices(s: AsyncSession, before: datetime) -> int:
    """Forget devices last seen before ``before``; how many rows went."""
    res = await s.execute(delete(SignInDevice).where(SignInDevice.last_seen_at < before))
    return rowcount(res)


class SessionRows:
    """Sessions and refresh tokens on the hot paths (sign-in, refresh), as Core statements on
    ``Statements`` (storage.statements): inline on SQLite, the same code elsewhere."""

    def __init__(self, statements: Statements) -> None:
        self.run = statements

    async def active_user(self, user_id: str) -> dict[str, Any] | None:
        """The user's columns, unless the user is gone or disabled: sign-in's re-check, inside
        its write, of what it read before hashing (a disabled account opens no session). Not
        whether a session counts: that is domain.sessions.rules.session_is_active."""
        return await self.run.first(_ACTIVE_USER_BY_ID, uid=user_id)

    async def record_client(self, user_id: str, ip: str, now: datetime) -> None:
        """Remember that ``user_id`` signed in from ``ip`` at ``now`` (one row per pair; a rare
        duplicate from two concurrent first sign-ins is harmless)."""
        if await self.run.run(_TOUCH_CLIENT, uid=user_id, client_ip=ip[:64], now=now) == 0:
            await self.run.run(_ADD_CLIENT, new_id=new_id(), uid=user_id, client_ip=ip[:64], now=now)

    async def record_device(self, user_id: str, device_hash: str, now: datetime) -> tuple[bool, bool]:
        """Remember that ``user_id`` signed in from the device ``device_hash`` (a keyed hash)
        at ``now``. Returns (known: the device was seen before, first: the user had no device
        at all). One row per pair; a rare duplicate from two concurrent first sign-ins is
        harmless."""
        if await self.run.run(_TOUCH_DEVICE, uid=user_id, device=device_hash, now=now) > 0:
            return True, False
        first = await self.run.first(_ANY_DEVICE, uid=user_id) is None
        await self.run.run(_ADD_DEVICE, new_id=new_id(), uid=user_id, device=device_hash, now=now)
        return False, first

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.run.run(_SET_PASSWORD_HASH, uid=user_id, new=password_hash)

    async def add_session(
        self,
        session_id: str,
        user_id: str,
        kind: str,
        now: datetime,
        expires_at: datetime,
        ip: str | None,
        user_agent: str | None,
        amr: list[str] | None = None,
    ) -> None:
        await self.run.run(
            _ADD_SESSION,
            new_id=session_id,
            uid=user_id,
            session_kind=kind,
            now=now,
            until=expires_at,
            client_ip=ip,
            agent=user_agent,
            amr=amr,
        )

    async def token_with_session_and_user(self, token_hash: str) -> dict[str, Any] | None:
        """The token (``token_id``, ``token_rotated_at``), its session (``session_id``,
        ``session_revoked_at``, ``session_expires_at``) and the user's columns."""
        return await self.run.first(_ROTATION_ROW, hash=token_hash)

    async def mark_rotated(self, token_id: str, now: datetime) -> bool:
        """Mark a token rotated; False when another request rotated it first."""
        return await self.run.run(_MARK_ROTATED, token_id=token_id, now=now) == 1

    async def add_token(self, session_id: str, token_hash: str, parent_id: str | None, now: datetime) -> None:
        await self.run.run(
            _ADD_REFRESH, new_id=new_id(), sid=session_id, hash=token_hash, parent=parent_id, now=now
        )

    async def touch_session(self, session_id: str, now: datetime) -> None:
        await self.run.run(_TOUCH_SESSION, sid=session_id, now=now)

    async def touch_session_if_stale(self, session_id: str, now: datetime, stale: datetime) -> bool:
        """Record a use of the session at ``now`` when the stored one is before ``stale``."""
        return await self.run.run(_TOUCH_SESSION_IF_STALE, sid=session_id, now=now, stale=stale) == 1

    async def end_sessions(
        self,
        user_id: str,
        now: datetime,
        reason: str,
        *,
        only: str | None = None,
        keep: str | None = None,
        client_id: str | None = None,
    ) -> list[str]:
        """Mark the user's sessions that have not ended as ended at ``now`` for ``reason``: only
        the session ``only`` (when it is the user's) with the grants made through it, or every
        one but ``keep``, or every grant of the user to ``client_id``. The ids of those it
        ended, no others (those ended before are left as they are). Called by
        domain.sessions.service.end_sessions only."""
        if client_id is not None:
            rows = await self.run.all(_END_APP_GRANTS, uid=user_id, cid=client_id, now=now, reason=reason)
        elif only is not None:
            rows = await self.run.all(_END_ONE_SESSION, sid=only, uid=user_id, now=now, reason=reason)
        else:
            rows = await self.run.all(
                _END_USER_SESSIONS, uid=user_id, keep=keep or "", now=now, reason=reason
            )
        return [row["id"] for row in rows]


def user_from_row(row: dict[str, Any]) -> User:
    """The detached User held in a row that selected all of the users table's columns."""
    return sqlite_driver.detached(User, {c.key: row[c.key] for c in User.__table__.columns})


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    def add(self, auth_session: AuthSession) -> None:
        self.s.add(auth_session)

    async def get(self, session_id: str) -> AuthSession | None:
        return await self.s.get(AuthSession, session_id)

    async def session_with_user(self, session_id: str, user_id: str) -> dict[str, Any] | None:
        """The hot path: one lookup by primary key. The user's columns, with the session's
        ``session_revoked_at``, ``session_expires_at`` and ``session_last_seen_at``; None when
        there is no such session
        of that user. Whether it is active is for the domain to say."""
        params = {"session_id": session_id, "user_id": user_id}
        row = (await self.s.execute(_SESSION_WITH_USER, params)).mappings().first()
        return dict(row) if row is not None else None

    async def sessions_of_user(
        self, user_id: str, now: datetime, used_since: datetime
    ) -> list[tuple[AuthSession, bool]]:
        """The user's sessions that may still be active, newest first, each with the user's
        ``disabled`` flag. The SQL condition (not revoked, not expired, used after
        ``used_since``) is only a pre-filter on the ``user_id`` index (ended rows stay until the
        purge and would otherwise all be read); domain.sessions.rules.session_is_active decides."""
        stmt = (
            select(AuthSession, User.disabled)
            .join(User, User.id == AuthSession.user_id)
            .where(
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
                AuthSession.last_seen_at > used_since,
            )
            .order_by(AuthSession.created_at.desc(), AuthSession.id)
        )
        return [(session, bool(disabled)) for session, disabled in await self.s.execute(stmt)]

    # refresh tokens
    def add_refresh(self, token: RefreshToken) -> None:
        self.s.add(token)

    async def refresh_by_hash(self, token_hash: str) -> RefreshToken | None:
        stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def mark_rotated(self, token_id: str, now: datetime) -> bool:
        """Atomically mark a token rotated; False when another request rotated it first."""
        res = await self.s.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=now)
        )
        return rowcount(res) == 1

    async def purge(self, now: datetime, keep_revoked_until: datetime, idle_before: datetime) -> int:
        """Delete sessions (and their refresh tokens) that expired, ended before
        ``keep_revoked_until``, or were last used before ``idle_before``; how many."""
        dead_when = or_(
            AuthSession.expires_at < now,
            AuthSession.revoked_at < keep_revoked_until,
            AuthSession.last_seen_at < idle_before,
        )
        dead = select(AuthSession.id).where(dead_when)
        await self.s.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(dead)))
        res = await self.s.execute(delete(AuthSession).where(dead_when))
        return rowcount(res)


class ConsoleSessionRepository:
    """Admin console sessions, found by the SHA-256 of their cookie value."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    def add(self, console_session: AdminConsoleSession) -> None:
        self.s.add(console_session)

    async def by_token_hash(self, token_hash: str) -> AdminConsoleSession | None:
        stmt = select(AdminConsoleSession).where(AdminConsoleSession.token_hash == token_hash)
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def touch(self, session_id: str, now: datetime, expires_at: datetime) -> None:
        await self.s.execute(
            update(AdminConsoleSession)
            .where(AdminConsoleSession.id == session_id)
            .values(last_seen_at=now, expires_at=expires_at)
        )

    async def delete(self, session_id: str) -> None:
        await self.s.execute(delete(AdminConsoleSession).where(AdminConsoleSession.id == session_id))

    async def delete_by_token_hash(self, token_hash: str) -> int:
        res = await self.s.execute(
            delete(AdminConsoleSession).where(AdminConsoleSession.token_hash == token_hash)
        )
        return rowcount(res)

    async def delete_all(self) -> int:
        res = await self.s.execute(delete(AdminConsoleSession))
        return rowcount(res)

    async def purge(self, now: datetime) -> int:
        res = await self.s.execute(delete(AdminConsoleSession).where(AdminConsoleSession.expires_at < now))
        return rowcount(res)


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    def add(self, event: AuditEvent) -> None:
        self.s.add(event)

    async def latest(self, limit: int = 100, offset: int = 0) -> list[AuditEvent]:
        stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id).offset(offset).limit(limit)
        return list((await self.s.execute(stmt)).scalars())


class OutboxRepository:
    """Queries of the mail outbox. Statuses are the domain's values (``domain.mail.rules``),
    passed in: this layer stores them and filters on them, it does not decide them."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    def add(self, message: OutboxMessage) -> None:
        self.s.add(message)

    @staticmethod
    def _due(now: datetime, waiting: str, leased: str) -> ColumnElement[bool]:
        return or_(
            and_(OutboxMessage.status == waiting, OutboxMessage.next_attempt_at <= now),
            and_(OutboxMessage.status == leased, OutboxMessage.locked_until < now),
        )

    async def due_ids(self, now: datetime, limit: int, *, waiting: str, leased: str) -> list[str]:
        """Ids of due messages, the longest waiting first: in status ``waiting`` with their next
        attempt at or before ``now``, or in status ``leased`` with their lease over."""
        stmt = (
            select(OutboxMessage.id)
            .where(self._due(now, waiting, leased))
            .order_by(OutboxMessage.next_attempt_at)
            .limit(limit)
        )
        return list((await self.s.execute(stmt)).scalars())

    async def claim(
        self, message_id: str, now: datetime, lease_until: datetime, *, waiting: str, leased: str
    ) -> bool:
        """Atomically move one message that is still due (see ``due_ids``) to ``leased`` until
        ``lease_until``, counting one attempt. False when another worker got it first."""
        res = await self.s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, self._due(now, waiting, leased))
            .values(status=leased, locked_until=lease_until, attempts=OutboxMessage.attempts + 1)
        )
        return rowcount(res) == 1

    async def get(self, message_id: str) -> OutboxMessage | None:
        return await self.s.get(OutboxMessage, message_id)

    async def latest(self, limit: int = 100, status: str | None = None) -> list[OutboxMessage]:
        stmt = select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(limit)
        if status:
            stmt = stmt.where(OutboxMessage.status == status)
        return list((await self.s.execute(stmt)).scalars())

    async def counts(self) -> dict[str, int]:
        stmt = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        return {status: int(n) for status, n in await self.s.execute(stmt)}

    async def oldest_waiting_since(self, waiting: Sequence[str]) -> datetime | None:
        """When the oldest message in one of the ``waiting`` statuses was queued; None when there
        is none."""
        stmt = select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status.in_(tuple(waiting)))
        return (await self.s.execute(stmt)).scalar_one()

    async def retrying_count(self, waiting: str) -> int:
        """Messages in status ``waiting`` that failed at least once (they wait for a retry)."""
        stmt = select(func.count()).where(OutboxMessage.status == waiting, OutboxMessage.attempts > 0)
        return int((await self.s.execute(stmt)).scalar_one())

    async def page(self, status: str | None, offset: int, limit: int) -> tuple[int, list[OutboxMessage]]:
        """Newest first, optionally one status only; with the number of matching messages."""
        cond = OutboxMessage.status == status if status else None
        count_stmt = select(func.count()).select_from(OutboxMessage)
        stmt = select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id)
        if cond is not None:
            count_stmt, stmt = count_stmt.where(cond), stmt.where(cond)
        total = int((await self.s.execute(count_stmt)).scalar_one())
        return total, list((await self.s.execute(stmt.offset(offset).limit(limit))).scalars())

    async def requeue(
        self, now: datetime, statuses: Sequence[str], to_status: str, message_id: str | None = None
    ) -> int:
        """Messages in one of ``statuses`` (one message, or all of them) moved to ``to_status``,
        due now, with a fresh attempt budget. Returns how many."""
        stmt = update(OutboxMessage).where(OutboxMessage.status.in_(tuple(statuses)))
        if message_id is not None:
            stmt = stmt.where(OutboxMessage.id == message_id)
        res = await self.s.execute(
            stmt.values(status=to_status, attempts=0, next_attempt_at=now, locked_until=None)
        )
        return rowcount(res)

    async def purge(self, status: str, before: datetime) -> int:
        """Forget messages in ``status`` created before ``before`` (their bodies hold codes)."""
        res = await self.s.execute(
            delete(OutboxMessage).where(OutboxMessage.status == status, OutboxMessage.created_at < before)
        )
        return rowcount(res)
