"""Mail: an outbox written in the caller's transaction, a worker that delivers it, and the
operations administrators and developers have on it.

- ``Outbox.enqueue`` stores a message in the same transaction as the code it carries, so a code
  is never issued without its mail, nor a mail without its code. Subject and bodies are sealed
  at rest (``infra.mailer.seal_mail``).
- ``OutboxWorker`` claims due messages with a lease (one atomic UPDATE per message, so several
  instances never send one message twice in normal operation), hands each to the
  ``MailTransport`` (SMTP or the dev mailbox, ``infra.mailer``) and records the outcome by the
  rules of ``domain.mail.rules`` (statuses, backoff, attempt budget).
- ``OutboxService``: counts, listings (subject with any code masked, never a body), retries,
  and the dev mailbox (messages in clear, for a local developer without SMTP).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sproutgate.config import Settings
from sproutgate.domain.clock import Clock
from sproutgate.domain.delivery_loop import DeliveryLoop
from sproutgate.domain.errors import InvalidInput, NotFound
from sproutgate.domain.mail.rules import (
    BATCH_SIZE,
    DELIVERIES_AT_ONCE,
    DUE_LEASED,
    DUE_WAITING,
    MARK_SENT_DELAYS,
    RETRYABLE,
    WAITING,
    MailStatus,
    RetryPolicy,
    error_text,
    lease,
    mask_codes,
)
from sproutgate.domain.metrics import NO_METRICS, MailDelivery, Metrics
from sproutgate.infra.mailer import (
    UNREADABLE,
    MailText,
    MailTransport,
    OutgoingMail,
    UnreadableMail,
    new_message_id,
    open_mail,
    seal_mail,
)
from sproutgate.infra.sealing import Sealer
from sproutgate.storage.db import Database
from sproutgate.storage.models import OutboxMessage
from sproutgate.storage.repositories import OutboxRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpenedMail:
    """A queued message with its subject and bodies in clear (``readable`` False: they did not
    open, and hold a placeholder). Only the dev mailbox and the worker see this."""

    id: str
    message_id: str
    to_addr: str
    subject: str
    text_body: str
    html_body: str | None
    kind: str
    status: str
    created_at: datetime
    readable: bool = True


@dataclass(frozen=True, slots=True)
class QueuedMail:
    """A message as administrators see it: the subject with any code masked, no body.
    ``next_attempt_at`` only while it is still on its way; ``sent_at`` once sent."""

    id: str
    message_id: str
    to_addr: str
    subject: str
    kind: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None


@dataclass(slots=True)
class OutboxCounts:
    """Messages per status; ``retrying`` counts the pending ones that already failed once."""

    pending: int
    sending: int
    sent: int
    failed: int
    retrying: int


@dataclass(slots=True)
class OutboxBacklog:
    """What the outbox holds now: messages per status, and how long the oldest message not yet
    delivered (pending or sending) has waited, in seconds (0.0 when none waits)."""

    counts: OutboxCounts
    oldest_waiting_seconds: float


@dataclass(slots=True)
class OutboxPage:
    counts: OutboxCounts
    total: int  # messages matching the status filter
    messages: list[QueuedMail]


class Outbox:
    """Queues mail in the caller's transaction and opens it again; one per process."""

    def __init__(self, settings: Settings, sealer: Sealer, clock: Clock) -> None:
        self.settings = settings
        self.sealer = sealer
        self.clock = clock
        self.wakeup = asyncio.Event()
        self._warned: set[str] = set()  # unreadable messages already logged

    def enqueue(
        self,
        repo: OutboxRepository,
        to: str,
        subject: str,
        text_body: str,
        kind: str,
        html_body: str | None = None,
    ) -> OutboxMessage:
        """Add a message to ``repo``'s transaction, due now. Call ``notify`` after the commit."""
        message = self.message(to, subject, text_body, kind, html_body)
        repo.add(message)
        return message

    def message(
        self, to: str, subject: str, text_body: str, kind: str, html_body: str | None = None
    ) -> OutboxMessage:
        """A message due now, sealed, not yet added to any transaction (``enqueue`` adds it to
        a unit of work; ``storage.repositories.add_outbox_row`` writes it as a Core statement)."""
        now = self.clock.now()
        message_id = new_message_id(self.settings.mail_from)
        sealed = seal_mail(self.sealer, message_id, to, MailText(subject, text_body, html_body))
        message = OutboxMessage(
            message_id=message_id,
            to_addr=to,
            subject=sealed.subject,
            text_body=sealed.text_body,
            html_body=sealed.html_body,
            kind=kind,
            status=MailStatus.PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        return message

    def notify(self) -> None:
        """Wake the worker after the enqueuing transaction has committed."""
        self.wakeup.set()

    def open(self, row: OutboxMessage) -> OpenedMail:
        """The message in clear. Raises UnreadableMail when a sealed field does not open."""
        clear = open_mail(
            self.sealer, row.message_id, row.to_addr, MailText(row.subject, row.text_body, row.html_body)
        )
        return OpenedMail(
            row.id,
            row.message_id,
            row.to_addr,
            clear.subject,
            clear.text_body,
            clear.html_body,
            row.kind,
            row.status,
            row.created_at,
        )

    def view(self, row: OutboxMessage) -> OpenedMail:
        """For listings: like ``open``, but an unreadable message shows a placeholder instead
        of raising (and is logged once)."""
        try:
            return self.open(row)
        except UnreadableMail as exc:
            self.warn_unreadable(row, exc)
            return OpenedMail(
                row.id,
                row.message_id,
                row.to_addr,
                UNREADABLE,
                UNREADABLE,
                None,
                row.kind,
                row.status,
                row.created_at,
                readable=False,
            )

    def listed(self, row: OutboxMessage) -> QueuedMail:
        """The message as administrators' listings show it."""
        return QueuedMail(
            id=row.id,
            message_id=row.message_id,
            to_addr=row.to_addr,
            subject=mask_codes(self.view(row).subject),
            kind=row.kind,
            status=row.status,
            attempts=row.attempts,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at if row.status in WAITING else None,
            sent_at=row.sent_at,
            last_error=row.last_error,
        )

    def warn_unreadable(self, row: OutboxMessage, exc: Exception) -> None:
        """Log an unreadable message, once per message and process."""
        if row.id in self._warned:
            return
        if len(self._warned) >= 10_000:
            self._warned.clear()
        self._warned.add(row.id)
        log.warning("outbox: message %s %s to %s: %s", row.id, row.message_id, row.to_addr, exc)


class OutboxService:
    """What administrators (API, CLI) and the dev mailbox do with the outbox."""

    def __init__(self, db: Database, outbox: Outbox, clock: Clock) -> None:
        self.db = db
        self.outbox = outbox
        self.clock = clock

    async def counts(self) -> OutboxCounts:
        """Messages per status."""
        async with self.db.read() as s:
            repo = OutboxRepository(s)
            by_status = await repo.counts()
            retrying = await repo.retrying_count(MailStatus.PENDING)
        return OutboxCounts(**{st.value: by_status.get(st, 0) for st in MailStatus}, retrying=retrying)

    async def backlog(self) -> OutboxBacklog:
        """Counts and the age of the oldest waiting message, for monitoring (``/metrics``).
        Raises the database's errors when it is away."""
        counts = await self.counts()
        async with self.db.read() as s:
            since = await OutboxRepository(s).oldest_waiting_since(tuple(WAITING))
        age = 0.0 if since is None else max(0.0, (self.clock.now() - since).total_seconds())
        return OutboxBacklog(counts, age)

    async def overview(self, status: str | None = None, page: int = 1, page_size: int = 50) -> OutboxPage:
        """Counts and one page of messages, newest first. Raises InvalidInput for an unknown status."""
        if status is not None and status not in MailStatus.__members__.values():
            raise InvalidInput({"status": "invalid_value"})
        page, page_size = max(1, page), max(1, min(500, page_size))
        counts = await self.counts()
        async with self.db.read() as s:
            total, rows = await OutboxRepository(s).page(status, (page - 1) * page_size, page_size)
        return OutboxPage(counts, total, [self.outbox.listed(r) for r in rows])

    async def retry(self, message_id: str) -> None:
        """Send a failed (or waiting) message again now, with a fresh attempt budget.
        Raises NotFound when there is no such message in either state."""
        async with self.db.write() as s:
            found = await OutboxRepository(s).requeue(
                self.clock.now(), RETRYABLE, MailStatus.PENDING, message_id=message_id
            )
        if not found:
            raise NotFound("message_not_found")
        self.outbox.notify()

    async def retry_failed(self) -> int:
        """Put every failed message back in line; returns how many."""
        async with self.db.write() as s:
            count = await OutboxRepository(s).requeue(
                self.clock.now(), (MailStatus.FAILED,), MailStatus.PENDING
            )
        self.outbox.notify()
        return count

    async def dev_mailbox(self, to: str | None = None, limit: int = 100) -> list[OpenedMail]:
        """The newest messages in clear, for the dev mailbox (only ever served to a local client
        while no SMTP host is configured); ``to`` keeps one recipient's. A message sealed with
        another key shows a placeholder."""
        async with self.db.read() as s:
            rows = await OutboxRepository(s).latest(limit=500)
        if to:
            rows = [r for r in rows if r.to_addr == to.lower()]
        return [self.outbox.view(r) for r in rows[:limit]]


class OutboxWorker(DeliveryLoop):
    """Delivers due mail in the background: one per process, started with the app."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        outbox: Outbox,
        transport: MailTransport,
        clock: Clock,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        """``metrics`` counts what each delivery attempt came to (``Metrics.mail_delivery``)."""
        self.settings = settings
        self.metrics = metrics
        self.db = db
        self.outbox = outbox
        self.transport = transport
        self.clock = clock
        self.retry_policy = RetryPolicy.from_settings(settings)
        self.sent = 0
        self.failed = 0
        super().__init__("outbox", outbox.wakeup, settings.mail_poll_seconds, BATCH_SIZE, DELIVERIES_AT_ONCE)

    async def _due(self, limit: int) -> list[str]:
        async with self.db.read() as s:
            return await OutboxRepository(s).due_ids(
                self.clock.now(), limit, waiting=DUE_WAITING, leased=DUE_LEASED
            )

    async def _deliver(self, message_id: str) -> None:
        now = self.clock.now()
        async with self.db.write() as s:
            repo = OutboxRepository(s)
            claimed = await repo.claim(
                message_id,
                now,
                now + lease(self.settings.smtp_timeout_seconds),
                waiting=DUE_WAITING,
                leased=DUE_LEASED,
            )
            if not claimed:
                return
            row = await repo.get(message_id)
            assert row is not None
            await s.refresh(row)
        try:
            mail = self.outbox.open(row)
            await self.transport.send(
                OutgoingMail(
                    mail.message_id,
                    mail.to_addr,
                    mail.subject,
                    mail.text_body,
                    mail.html_body,
                    mail.created_at,
                )
            )
        except UnreadableMail as exc:  # the key changed: retrying cannot help
            await self._unreadable(row, exc)
            return
        except Exception as exc:  # noqa: BLE001 - any delivery failure is retried
            await self._failed(row, exc)
            return
        await self._record_sent(message_id)
        self.sent += 1
        self.metrics.mail_delivery(MailDelivery.SENT)

    async def _record_sent(self, message_id: str) -> None:
        """Mark a delivered message sent. The mail is already out: if the database is briefly
        away, keep trying for a while rather than let the lease expire and send it twice."""
        for delay in (*MARK_SENT_DELAYS, None):
            try:
                async with self.db.write() as s:
                    live = await OutboxRepository(s).get(message_id)
                    if live is not None:
                        live.status = MailStatus.SENT
                        live.sent_at = self.clock.now()
                        live.locked_until = None
                        live.last_error = None
                return
            except Exception as exc:  # noqa: BLE001 - database trouble; retried, then logged
                if delay is None:
                    log.error("outbox: %s was sent but could not be marked sent: %s", message_id, exc)
                    return
                await asyncio.sleep(delay)

    async def _unreadable(self, row: OutboxMessage, exc: UnreadableMail) -> None:
        """A message this key cannot open fails at once: retrying cannot help until the right
        key is back in data/keys (then ``sproutgate outbox retry`` sends it)."""
        self.outbox.warn_unreadable(row, exc)
        self.failed += 1
        self.metrics.mail_delivery(MailDelivery.FAILED)
        async with self.db.write() as s:
            live = await OutboxRepository(s).get(row.id)
            if live is None:
                return
            live.status = MailStatus.FAILED
            live.locked_until = None
            live.last_error = f"not sent: {exc}"[:1000]

    async def _failed(self, row: OutboxMessage, exc: Exception) -> None:
        """A failed attempt: back in line after the backoff, or ``failed`` once the budget is spent."""
        attempts = row.attempts
        log.warning("outbox: sending %s failed (attempt %d): %s", row.message_id, attempts, exc)
        self.failed += 1
        gives_up = self.retry_policy.gives_up(attempts)
        self.metrics.mail_delivery(MailDelivery.FAILED if gives_up else MailDelivery.RETRY)
        async with self.db.write() as s:
            live = await OutboxRepository(s).get(row.id)
            if live is None:
                return
            live.status = MailStatus.FAILED if gives_up else MailStatus.PENDING
            live.next_attempt_at = self.clock.now() + self.retry_policy.delay(attempts)
            live.locked_until = None
            live.last_error = error_text(exc)
