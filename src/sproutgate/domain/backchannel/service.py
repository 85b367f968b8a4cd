"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a session ends, every
client it was used with that registered a ``backchannel_logout_uri`` is sent a logout token.

- ``BackchannelLogout`` is a session-end listener (``domain.sessions.service.end_sessions``,
  the one way a session ends, tells it what ended): inside the transaction that ends a session
  it queues one delivery per such client (``backchannel_outbox``), so a session never ends
  without its logout tokens queued, nor is a token queued for a session that did not end.
- ``BackchannelWorker`` claims due deliveries with a lease (one atomic UPDATE each, so several
  instances never POST one twice in normal operation), signs the logout token at each attempt
  (``rules.logout_token_claims``, ES256, ``typ: logout+jwt``) and hands it to the
  ``LogoutTransport`` (``infra.backchannel``: an HTTP POST). A failure is retried with the
  mail outbox's backoff (``rules.retry_policy``) until its budget is spent; every outcome is
  counted (``Metrics.backchannel_delivery``) and failures are logged.
- ``BackchannelService``: what operators read (counts, recent deliveries) and retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.config import Settings
from sproutgate.domain.backchannel.rules import (
    BATCH_SIZE,
    DELIVERIES_AT_ONCE,
    DUE_LEASED,
    DUE_WAITING,
    LOGOUT_TOKEN_FIELD,
    LOGOUT_TOKEN_TTL_SECONDS,
    LOGOUT_TOKEN_TYPE,
    DeliveryStatus,
    LogoutTarget,
    error_text,
    lease,
    logout_token_claims,
    new_jti,
    retry_policy,
)
from sproutgate.domain.clock import Clock
from sproutgate.domain.delivery_loop import DeliveryLoop
from sproutgate.domain.errors import NotFound
from sproutgate.domain.metrics import NO_METRICS, LogoutDelivery, Metrics
from sproutgate.domain.oidc.rules import issuer_of
from sproutgate.domain.sessions.service import EndedSession
from sproutgate.infra.backchannel import LogoutTransport
from sproutgate.infra.tokens import TokenSigner
from sproutgate.storage.backchannel import BackchannelRepository, BackchannelRows
from sproutgate.storage.db import Database
from sproutgate.storage.models import BackchannelDelivery, new_id
from sproutgate.storage.statements import SessionStatements, Statements

log = logging.getLogger(__name__)

# Who is to be told about ended sessions, read in the ending transaction: for each ended
# session, the clients it was used with that registered a back-channel logout URI.
TargetLookup = Callable[[Statements, Sequence[EndedSession]], Awaitable[list[LogoutTarget]]]


async def registered_targets(run: Statements, ended: Sequence[EndedSession]) -> list[LogoutTarget]:
    """The clients to tell about ``ended``: for each ended browser sign-in, every client it was
    used with (``oidc_session_clients``, recorded by domain/oidc when it issued a code) that
    registered a ``backchannel_logout_uri``. ``sid`` is the sign-in's id, as in the ID tokens
    those clients got. Grants and API sessions were used with no client: nobody to tell."""
    users = {e.session_id: e.user_id for e in ended}
    found = await BackchannelRows(run).clients_to_tell(list(users))
    return [LogoutTarget(client_id, uri, users[sid], sid) for sid, client_id, uri in found]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A queued logout as operators see it (no token: it is signed at each attempt)."""

    id: str
    client_id: str
    uri: str
    session_id: str
    reason: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None


class BackchannelLogout:
    """Queues logout tokens when sessions end; the ``SessionEndListener`` of back-channel
    logout (``domain.sessions.service.listen_to_session_ends``). ``targets`` finds who to tell
    (by default ``registered_targets``)."""

    def __init__(self, clock: Clock, targets: TargetLookup = registered_targets) -> None:
        self.clock = clock
        self.targets = targets
        self.wakeup = asyncio.Event()

    async def sessions_ended(self, run: Statements, ended: Sequence[EndedSession]) -> None:
        """Queue, in ``run``'s transaction, one delivery per client told about an ended
        session; the worker is woken once it commits. Only ``run``'s statements are awaited
        (it may be an inline SQLite block)."""
        reasons = {e.session_id: e.reason.value for e in ended}
        await self.enqueue(run, await self.targets(run, ended), reasons)

    async def enqueue(
        self,
        run: AsyncSession | Statements,
        targets: Sequence[LogoutTarget],
        reasons: dict[str, str] | None = None,
    ) -> list[str]:
        """Queue a delivery for each of ``targets`` in ``run``'s transaction, due now (the same
        client told twice about one session gets one delivery); returns their ids."""
        now = self.clock.now()
        statements = SessionStatements(run) if isinstance(run, AsyncSession) else run
        rows = BackchannelRows(statements)
        ids: list[str] = []
        seen: set[tuple[str, str]] = set()
        for t in targets:
            if (t.client_id, t.session_id) in seen:
                continue
            seen.add((t.client_id, t.session_id))
            row = BackchannelDelivery(
                id=new_id(),
                jti=new_jti(),
                client_id=t.client_id,
                uri=t.uri,
                user_id=t.user_id,
                session_id=t.session_id,
                reason=(reasons or {}).get(t.session_id, "logout")[:32],
                status=DeliveryStatus.PENDING,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
            await rows.add(row)
            ids.append(row.id)
        if ids:
            statements.after_commit(self.wakeup.set)
        return ids

    async def forget_client(self, s: AsyncSession, client_id: str) -> None:
        """A client is being deleted (``ClientService.on_delete``, same transaction): the
        deliveries still waiting for it are dropped; those done stay for operators."""
        await BackchannelRepository(s).forget_client(
            client_id, (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
        )


class BackchannelService:
    """What operators see of back-channel logout, and their retries."""

    def __init__(self, db: Database, queue: BackchannelLogout, clock: Clock) -> None:
        self.db = db
        self.queue = queue
        self.clock = clock

    async def counts(self) -> dict[str, int]:
        """Deliveries per status (every status present, 0 when none)."""
        async with self.db.read() as s:
            found = await BackchannelRepository(s).counts()
        return {st.value: found.get(st.value, 0) for st in DeliveryStatus}

    async def recent(self, limit: int = 50, status: str | None = None) -> list[Delivery]:
        """The newest deliveries, optionally of one status (unknown statuses list nothing)."""
        async with self.db.read() as s:
            rows = await BackchannelRepository(s).latest(max(1, min(500, limit)), status)
        return [_listed(r) for r in rows]

    async def retry_failed(self) -> int:
        """Put every failed delivery back in line with a fresh attempt budget; how many."""
        async with self.db.write() as s:
            count = await BackchannelRepository(s).requeue(
                self.clock.now(), (DeliveryStatus.FAILED,), DeliveryStatus.PENDING
            )
        self.queue.wakeup.set()
        return count

    async def retry(self, delivery_id: str) -> None:
        """Try a failed (or waiting) delivery again now, with a fresh attempt budget. Raises
        NotFound when there is no such delivery in either state."""
        async with self.db.write() as s:
            found = await BackchannelRepository(s).requeue(
                self.clock.now(),
                (DeliveryStatus.FAILED, DeliveryStatus.PENDING),
                DeliveryStatus.PENDING,
                delivery_id=delivery_id,
            )
        if not found:
            raise NotFound("delivery_not_found")
        self.queue.wakeup.set()


def _listed(row: BackchannelDelivery) -> Delivery:
    waiting = row.status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
    return Delivery(
        id=row.id,
        client_id=row.client_id,
        uri=row.uri,
        session_id=row.session_id,
        reason=row.reason,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at if waiting else None,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )


class BackchannelWorker(DeliveryLoop):
    """Delivers due logout tokens in the background: one per process, started with the app."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        queue: BackchannelLogout,
        signer: TokenSigner,
        transport: LogoutTransport,
        clock: Clock,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.settings = settings
        self.db = db
        self.queue = queue
        self.signer = signer
        self.transport = transport
        self.clock = clock
        self.metrics = metrics
        self.retry_policy = retry_policy(settings)
        self.delivered = 0
        self.failed = 0
        super().__init__(
            "back-channel logout", queue.wakeup, settings.mail_poll_seconds, BATCH_SIZE, DELIVERIES_AT_ONCE
        )

    async def stop(self) -> None:
        """Cancel the loop (a POST in flight is left to the lease) and close the transport."""
        await super().stop()
        await self.transport.aclose()

    async def _due(self, limit: int) -> list[str]:
        async with self.db.read() as s:
            return await BackchannelRepository(s).due_ids(
                self.clock.now(), limit, waiting=DUE_WAITING, leased=DUE_LEASED
            )

    async def _deliver(self, delivery_id: str) -> None:
        now = self.clock.now()
        timeout = self.settings.backchannel_logout_timeout_seconds
        async with self.db.write() as s:
            repo = BackchannelRepository(s)
            claimed = await repo.claim(
                delivery_id, now, now + lease(timeout), waiting=DUE_WAITING, leased=DUE_LEASED
            )
            if not claimed:
                return
            row = await repo.get(delivery_id)
            assert row is not None
            await s.refresh(row)
        claims = logout_token_claims(
            issuer_of(self.settings.public_url), row.client_id, row.user_id, row.session_id, row.jti
        )
        try:
            token, _ = self.signer.sign_claims(
                claims, token_type=LOGOUT_TOKEN_TYPE, ttl_seconds=LOGOUT_TOKEN_TTL_SECONDS
            )
            await self.transport.deliver(row.uri, {LOGOUT_TOKEN_FIELD: token})
        except Exception as exc:  # noqa: BLE001 - any failure is retried
            await self._failed(row, exc)
            return
        await self._record(delivery_id, DeliveryStatus.DELIVERED, error=None)
        self.delivered += 1
        self.metrics.backchannel_delivery(LogoutDelivery.SENT)

    async def _failed(self, row: BackchannelDelivery, exc: Exception) -> None:
        """A failed attempt: back in line after the backoff, or ``failed`` once the budget is
        spent (logged as an error: the client keeps a session the user ended)."""
        gives_up = self.retry_policy.gives_up(row.attempts)
        self.failed += 1
        self.metrics.backchannel_delivery(LogoutDelivery.FAILED if gives_up else LogoutDelivery.RETRY)
        if gives_up:
            log.error(
                "back-channel logout to client %s (%s) failed for good after %d attempts: %s",
                row.client_id,
                row.uri,
                row.attempts,
                exc,
            )
        else:
            log.warning(
                "back-channel logout to client %s (%s) failed (attempt %d): %s",
                row.client_id,
                row.uri,
                row.attempts,
                exc,
            )
        await self._record(
            row.id,
            DeliveryStatus.FAILED if gives_up else DeliveryStatus.PENDING,
            error=error_text(exc),
            next_attempt_at=self.clock.now() + self.retry_policy.delay(row.attempts),
        )

    async def _record(
        self,
        delivery_id: str,
        status: DeliveryStatus,
        *,
        error: str | None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        async with self.db.write() as s:
            live = await BackchannelRepository(s).get(delivery_id)
            if live is None:
                return
            live.status = status
            live.locked_until = None
            live.last_error = error
            if next_attempt_at is not None:
                live.next_attempt_at = next_attempt_at
            if status is DeliveryStatus.DELIVERED:
                live.delivered_at = self.clock.now()
