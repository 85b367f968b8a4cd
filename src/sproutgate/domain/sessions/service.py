"""Sessions: a server-side row per sign-in, short-lived access JWTs bound to it (``sid``), and
opaque refresh tokens rotated on every use with reuse detection. A user sees and ends their own
sessions here (``list_for_user``, ``end_own``, ``end_others``), and every session that ends, for
whatever reason, ends through ``end_sessions``."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.config import Settings
from sproutgate.domain.clock import Clock
from sproutgate.domain.context import CallerContext
from sproutgate.domain.errors import NotFound
from sproutgate.domain.limits import RateLimits
from sproutgate.domain.mail.notices import Notices
from sproutgate.domain.metrics import NO_METRICS, Metrics
from sproutgate.domain.sessions.devices import DeviceKeys, notice_due
from sproutgate.domain.sessions.errors import InvalidRefreshToken, NotAuthenticated
from sproutgate.domain.sessions.rules import (
    AMR_PASSWORD,
    TOKEN_TYPES,
    SessionEndReason,
    SessionKind,
    SessionPolicy,
    TokenAudience,
    hash_refresh_token,
    last_use_is_stale,
    last_used_granularity,
    session_is_active,
    session_policy,
    successor_refresh_token,
)
from sproutgate.infra.tokens import InvalidToken, TokenSigner
from sproutgate.storage.db import Database
from sproutgate.storage.models import User, new_id
from sproutgate.storage.repositories import (
    SessionRepository,
    SessionRows,
    session_with_user_now,
    user_from_row,
)
from sproutgate.storage.statements import SessionStatements, Statements

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IssuedSession:
    session_id: str
    user: User
    access_token: str
    access_expires_at: int  # unix seconds
    expires_in: int
    refresh_token: str | None
    # The pages' device cookie to (re)set after a sign-in (domain/sessions/devices.py).
    device_cookie: str | None = None
    # A notice was queued in the sign-in's transaction: wake the mail worker once it committed.
    mail_queued: bool = False


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One active session as its owner (or an administrator) sees it: ``kind`` a
    ``SessionKind`` value, ``last_used_at`` the stored last use (to the granularity of
    ``rules.last_used_granularity``), ``ip`` the client address at sign-in as resolved for rate
    limits, ``current`` whether it is the session of the request asking."""

    id: str
    kind: str
    created_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


class SessionNotFound(NotFound):
    """No active session of the caller (or of the user named) has this id: unknown, ended, or
    someone else's (one answer for all three)."""

    def __init__(self) -> None:
        super().__init__("session_not_found")


@dataclass(frozen=True, slots=True)
class EndedSession:
    """A session that has just ended: its id, its user's, and why (the ``revoked_reason``
    stored with it)."""

    session_id: str
    user_id: str
    reason: SessionEndReason


class SessionEndListener(Protocol):
    """Told about every session that ends, inside the transaction that ends it
    (``end_sessions``). Back-channel logout is one (domain.backchannel)."""

    async def sessions_ended(self, run: Statements, ended: Sequence[EndedSession]) -> None:
        """``ended`` (never empty) were ended in ``run``'s transaction; whatever this writes
        through ``run`` commits or rolls back with them, and raising rolls the whole change
        back. ``run`` may be an inline SQLite block (``Database.write_now``): nothing awaited
        here may suspend but ``run``'s own statements."""
        ...


def listen_to_session_ends(db: Database, listener: SessionEndListener) -> None:
    """Have ``listener`` told about every session that ends in a write of ``db`` (the
    composition root adds them once per process, services.py)."""
    db.session_end_listeners.append(listener)


async def end_sessions(
    run: AsyncSession | Statements,
    user_id: str,
    now: datetime,
    reason: SessionEndReason,
    *,
    only: str | None = None,
    keep: str | None = None,
    client_id: str | None = None,
) -> list[EndedSession]:
    """The one way a session ends, inside the caller's transaction (an AsyncSession from
    ``db.write()`` or the Statements of ``db.write_now()``): the user's session ``only``, or
    every session of the user but ``keep`` (none kept by default), or with ``client_id`` every
    grant of the user to that app (OpenID Connect, kind ``oidc``), stop counting at ``now``;
    ending a browser session also ends the apps' grants made through it that do not survive
    sign-out (``parent_id``);
    their access and refresh tokens are refused from then on (``session_is_active``).

    Every path calls it: sign-out on each face, a user ending one or their other sessions, an
    administrator ending one, a password set or reset, disabling, second factors turned off or
    reset, a passkey removed, the importer, refresh-token reuse, account deletion, an app's
    sign-out (``/oauth2/logout``). Anything that must happen when a session ends (back-channel
    logout, a notice) is a ``SessionEndListener`` of the database (``listen_to_session_ends``):
    each is told what ended, in this same transaction, so it happens exactly for the sessions
    that ended now (one ``UPDATE ... RETURNING``; those that had ended before are not told
    again). Returns what ended."""
    statements = SessionStatements(run) if isinstance(run, AsyncSession) else run
    rows = SessionRows(statements)
    ids = await rows.end_sessions(user_id, now, reason.value, only=only, keep=keep, client_id=client_id)
    ended = [EndedSession(session_id, user_id, reason) for session_id in ids]
    if ended:
        for listener in statements.session_end_listeners:
            await cast(SessionEndListener, listener).sessions_ended(statements, ended)
    return ended


@dataclass(slots=True)
class Principal:
    """Who is calling: the user and the session their token is bound to."""

    user: User
    session_id: str
    auth_time: datetime | None = None


class SessionService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        signer: TokenSigner,
        limiter: RateLimits,
        clock: Clock,
        chain_key: bytes,
        metrics: Metrics = NO_METRICS,
        devices: DeviceKeys | None = None,
        notices: Notices | None = None,
    ) -> None:
        """``chain_key``: the secret (32 bytes, ``data/keys/refresh-chain.key``) successor
        refresh tokens are derived with; every instance must hold the same one. ``metrics``
        counts reuse detections. ``devices`` recognises the clients users sign in from and
        ``notices`` mails a sign-in from a new one (both or neither)."""
        self.devices = devices
        self.notices = notices
        self._chain_key = chain_key
        self.metrics = metrics
        self.settings = settings
        self.db = db
        self.signer = signer
        self.limiter = limiter
        self.clock = clock
        # Worked out once: the token check on every request compares against them.
        self._idle_timeout = timedelta(seconds=settings.session_idle_timeout_seconds)

    async def issue_session(
        self,
        s: AsyncSession | Statements,
        user: User,
        kind: SessionKind,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        amr: tuple[str, ...] = AMR_PASSWORD,
    ) -> IssuedSession:
        """Open a session of ``kind`` inside the caller's transaction (an AsyncSession from
        ``db.write()``, or the Statements of ``db.write_now()``) and sign its first tokens.
        ``amr``: how the person proved who they are (RFC 8176 values), kept on the session for
        the ID tokens of apps signed in through it."""
        policy = session_policy(kind, self.settings)
        now = self.clock.now()
        rows = SessionRows(SessionStatements(s) if isinstance(s, AsyncSession) else s)
        session_id = new_id()
        expires_at = now + timedelta(seconds=policy.lifetime_seconds)
        agent = (user_agent or "")[:512] or None
        await rows.add_session(session_id, user.id, kind.value, now, expires_at, ip, agent, list(amr))
        refresh = None
        if policy.refresh:
            refresh = secrets.token_urlsafe(32)
            await rows.add_token(session_id, hash_refresh_token(refresh), None, now)
        return self._signed(user, session_id, policy, refresh)

    def _signed(
        self, user: User, session_id: str, policy: SessionPolicy, refresh: str | None
    ) -> IssuedSession:
        """The session's new access token, signed per ``policy``, with ``refresh`` alongside."""
        token, exp = self.signer.issue(
            user.id,
            session_id,
            policy.access_ttl_seconds,
            audience=policy.audience.value,
            token_type=policy.token_type,
        )
        return IssuedSession(session_id, user, token, exp, policy.access_ttl_seconds, refresh)

    async def open_signed_in(
        self,
        s: AsyncSession | Statements,
        user: User,
        kind: SessionKind,
        ctx: CallerContext,
        amr: tuple[str, ...] = AMR_PASSWORD,
    ) -> IssuedSession:
        """What a completed sign-in writes, in the caller's transaction: the client address is
        remembered (the lockout rule exempts it for 30 days, docs/security.md) and a session of
        ``kind`` opens, recording ``amr`` (how the person signed in, RFC 8176). Password sign-in
        and its second step (domain/mfa) both end here."""
        run = SessionStatements(s) if isinstance(s, AsyncSession) else s
        await SessionRows(run).record_client(user.id, ctx.ip, self.clock.now())
        cookie, new_device = await self.remember_device(run, user, kind, ctx)
        if new_device and self.notices is not None:
            await self.notices.new_sign_in(run, user, ctx)
        issued = await self.issue_session(run, user, kind, ip=ctx.ip, user_agent=ctx.user_agent, amr=amr)
        issued.device_cookie = cookie
        issued.mail_queued = new_device and self.notices is not None
        return issued

    async def remember_device(
        self, s: AsyncSession | Statements, user: User, kind: SessionKind, ctx: CallerContext
    ) -> tuple[str | None, bool]:
        """Record the device a session of ``kind`` is opened from (``devices.DeviceKeys
        .identify``), in the caller's transaction. Returns the pages' device cookie to set (None
        for API clients) and whether this sign-in deserves a new-device notice
        (``devices.notice_due``). Sign-up calls it too, so that the browser that signed up is
        known at its next sign-in."""
        if self.devices is None:
            return None, False
        run = SessionStatements(s) if isinstance(s, AsyncSession) else s
        device = self.devices.identify(kind, ctx)
        known, first = await SessionRows(run).record_device(user.id, device.hash, self.clock.now())
        return device.cookie, notice_due(known, first)

    async def rotate_refresh_token(self, presented: str, ctx: CallerContext) -> IssuedSession:
        """Trade a refresh token of a runtime session (/api/v1) for a new pair; a token of an
        app's grant (domain/oidc) is refused here like an unknown one.

        The successor refresh token is derived from the presented one with a server key
        (``successor_refresh_token``), so every use of a token inside its grace window
        (``refresh_grace_seconds``: two tabs refreshing at once, a retried request) yields the
        same successor and a session stays one chain; only the first use stores it. Outside
        the window a use is a reuse, and the whole session is revoked (RFC 9700 §4.14.2).
        Raises InvalidRefreshToken.

        One read and three indexed writes as Core statements (``Database.write_now``: inline
        on SQLite), no unit of work: refresh is the busiest write there is. Rate limited per
        client address (RateLimited)."""
        row, refresh = await self.rotate_chain(
            presented, ctx, lambda r: r["session_kind"] == SessionKind.RUNTIME.value
        )
        user = user_from_row(row)
        policy = session_policy(SessionKind.RUNTIME, self.settings)
        return self._signed(user, row["session_id"], policy, refresh)

    async def rotate_chain(
        self,
        presented: str,
        ctx: CallerContext,
        accept: Callable[[dict[str, Any]], bool],
        *,
        counted: bool = False,
    ) -> tuple[dict[str, Any], str]:
        """The rotation of ``rotate_refresh_token`` without the signing, for every kind of
        session with a refresh chain (runtime sessions, app grants): ``accept`` says whether the
        token's row (its session's ``session_kind``, ``session_client_id``, ``session_scope``,
        ``session_auth_time``, ``session_amr``, ``session_sso_id`` and the user's columns) may
        be refreshed by this caller; a token it refuses is answered as unknown, and nothing is
        written (nor when it raises: its exception goes through, the transaction rolled back).
        Returns that row and the successor refresh token. Counted per client address
        (``refresh_ip``) unless ``counted``: the caller has counted the request on its own
        terms (the token endpoint counts a confidential client that authenticated per client,
        ``oidc_token_client``). Raises InvalidRefreshToken, RateLimited."""
        if not counted:
            await self.limiter.hit("refresh_ip", ctx.ip)
        now = self.clock.now()
        reused = False
        async with self.db.write_now() as run:
            tokens = SessionRows(run)
            row = await tokens.token_with_session_and_user(hash_refresh_token(presented))
            if row is None or not self._row_is_active(row, now) or not accept(row):
                raise InvalidRefreshToken()
            session_id = row["session_id"]
            grace = timedelta(seconds=self.settings.refresh_grace_seconds)
            refresh = successor_refresh_token(self._chain_key, presented)
            if row["token_rotated_at"] is None:
                # The UPDATE is conditional: only its winner stores the successor; a concurrent
                # request that lost is within grace and answers the same successor.
                if await tokens.mark_rotated(row["token_id"], now):
                    await tokens.add_token(session_id, hash_refresh_token(refresh), row["token_id"], now)
            elif now - row["token_rotated_at"] > grace:
                await end_sessions(run, row["id"], now, SessionEndReason.REFRESH_REUSE, only=session_id)
                reused = True
            if not reused:
                await tokens.touch_session(session_id, now)
        if reused:
            # A stolen token or a broken client: worth an operator's eye (never the token itself).
            log.warning("refresh token reused outside its grace window: session %s revoked", session_id)
            self.metrics.refresh_token_reused()
            raise InvalidRefreshToken(reused=True)
        return row, refresh

    async def revoke_by_refresh_token(self, presented: str) -> None:
        """Sign out the session a refresh token belongs to; silent for unknown tokens."""
        now = self.clock.now()
        async with self.db.write() as s:
            repo = SessionRepository(s)
            row = await repo.refresh_by_hash(hash_refresh_token(presented))
            session = await repo.get(row.session_id) if row is not None else None
            if session is not None:
                await end_sessions(s, session.user_id, now, SessionEndReason.LOGOUT, only=session.id)

    async def sign_out(
        self, principal: Principal, reason: SessionEndReason = SessionEndReason.LOGOUT
    ) -> None:
        """End the caller's own session (sign-out with an access token or the pages' cookie;
        an app's sign-out through ``/oauth2/logout`` with ``END_SESSION``), with the app
        grants made through it; nothing when it had ended already."""
        async with self.db.write() as s:
            await end_sessions(s, principal.user.id, self.clock.now(), reason, only=principal.session_id)

    async def authenticate(self, token: str, audience: TokenAudience = TokenAudience.API) -> Principal:
        """Verify an access token meant for ``audience`` (the API faces' bearer tokens by
        default; the pages pass ``TokenAudience.PAGES`` for their cookie) and that its session
        is still active (not ended, expired or idle: ``session_is_active``): signature check
        plus one indexed query. A token of another audience or type is refused like a forged
        one. Raises NotAuthenticated.

        The session's last use is written only when the stored one is older than
        ``rules.last_used_granularity`` (a minute by default): at most one small write per
        session per minute, not one per request."""
        try:
            claims = self.signer.verify(token, audience=audience.value, token_type=TOKEN_TYPES[audience])
        except InvalidToken as exc:
            raise NotAuthenticated() from exc
        if self.db.reads_now:  # SQLite: the lookup without the async machinery around it
            row = session_with_user_now(self.db.read_now(), claims.session_id, claims.user_id)
        else:
            async with self.db.read() as s:
                row = await SessionRepository(s).session_with_user(claims.session_id, claims.user_id)
        now = self.clock.now()
        if row is None or not self._row_is_active(row, now):
            raise NotAuthenticated()
        if last_use_is_stale(row["session_last_seen_at"], now, self.idle_timeout):
            await self._record_use(claims.session_id, now)
        return Principal(user=user_from_row(row), session_id=claims.session_id)

    async def _record_use(self, session_id: str, now: datetime) -> None:
        """Store ``now`` as the session's last use, unless a concurrent check just did."""
        stale = now - last_used_granularity(self.idle_timeout)
        async with self.db.write_now() as run:
            await SessionRows(run).touch_session_if_stale(session_id, now, stale)

    @property
    def idle_timeout(self) -> timedelta:
        """``SPROUTGATE_SESSION_IDLE_TIMEOUT_SECONDS`` as a duration."""
        return self._idle_timeout

    def _row_is_active(self, row: dict[str, Any], now: datetime) -> bool:
        """``session_is_active`` for a storage row carrying ``session_revoked_at``,
        ``session_expires_at``, ``session_last_seen_at`` and the user's ``disabled``."""
        return session_is_active(
            row["session_revoked_at"],
            row["session_expires_at"],
            row["disabled"],
            now,
            last_used_at=row["session_last_seen_at"],
            idle_timeout=self.idle_timeout,
        )

    async def session_auth_time(self, session_id: str) -> datetime | None:
        async with self.db.read() as s:
            session = await SessionRepository(s).get(session_id)
            return session.auth_time if session else None

    async def list_for_user(self, user_id: str, current_session_id: str | None = None) -> list[SessionInfo]:
        """The user's active sessions (``session_is_active``), newest first; ``current`` marks
        ``current_session_id``. What every face lists: both APIs, the account page, the
        console. Apps' grants through the OpenID Connect provider (kind
        ``oidc``) are not sign-ins of the person's own: they are listed as connected apps
        (``OidcService.connected_apps``)."""
        now = self.clock.now()
        async with self.db.read() as s:
            rows = await SessionRepository(s).sessions_of_user(user_id, now, now - self.idle_timeout)
        return [
            SessionInfo(
                id=session.id,
                kind=session.kind,
                created_at=session.created_at,
                last_used_at=session.last_seen_at,
                ip=session.ip,
                user_agent=session.user_agent,
                current=session.id == current_session_id,
            )
            for session, disabled in rows
            if session.kind != SessionKind.OIDC.value
            and session_is_active(
                session.revoked_at,
                session.expires_at,
                disabled,
                now,
                last_used_at=session.last_seen_at,
                idle_timeout=self.idle_timeout,
            )
        ]

    async def end_user_session(self, user_id: str, session_id: str, reason: SessionEndReason) -> None:
        """End one active session of the user (``end_sessions``), in a transaction of its own.
        Raises SessionNotFound when the user has no active session of that id (unknown, already
        ended, or another user's)."""
        async with self.db.write() as s:
            await self.end_active_session(s, user_id, session_id, reason)

    async def end_active_session(
        self, s: AsyncSession, user_id: str, session_id: str, reason: SessionEndReason
    ) -> None:
        """``end_user_session`` inside the caller's transaction (an administrator's end, audited
        in the same one). Raises SessionNotFound."""
        now = self.clock.now()
        row = await SessionRepository(s).session_with_user(session_id, user_id)
        if row is None or not self._row_is_active(row, now):
            raise SessionNotFound()
        await end_sessions(s, user_id, now, reason, only=session_id)

    async def end_own(self, principal: Principal, session_id: str) -> None:
        """The caller ends one of their own active sessions (this one included). Raises
        SessionNotFound for any other id, whoever's it is."""
        await self.end_user_session(principal.user.id, session_id, SessionEndReason.REVOKED)

    async def end_others(self, principal: Principal) -> int:
        """The caller ends every session of theirs but the one they call with; how many."""
        async with self.db.write() as s:
            ended = await end_sessions(
                s,
                principal.user.id,
                self.clock.now(),
                SessionEndReason.REVOKED_OTHERS,
                keep=principal.session_id,
            )
        return len(ended)

    async def revoke_all_for_user(
        self, user_id: str, reason: SessionEndReason = SessionEndReason.LOGOUT
    ) -> None:
        """Sign the user out everywhere: every session of theirs ends, in one transaction (a
        session opened meanwhile either ends with the others or was opened after this)."""
        async with self.db.write() as s:
            await end_sessions(s, user_id, self.clock.now(), reason)
