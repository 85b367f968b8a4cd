"""Mail: an outbox written in the caller's transaction, and a worker that delivers it.

``Outbox.enqueue`` stores the message in the same transaction as the code it carries, so a
code is never issued without its mail, nor a mail without its code. ``OutboxWorker`` claims due
rows with a lease (one atomic UPDATE per row, so several instances never send one message
twice in normal operation), sends them through a ``MailTransport`` and retries failures with
exponential backoff. Every message has a stable Message-ID, so a retry after a lost answer is
recognisable downstream (delivery is at least once).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Protocol

from sproutgate.config import Settings
from sproutgate.storage.db import Database
from sproutgate.storage.models import OutboxMessage
from sproutgate.storage.repositories import OutboxRepository

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver one message; raises on failure (the worker retries)."""
        ...


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        self.s = settings

    async def send(self, message: EmailMessage) -> None:
        import aiosmtplib

        security = self.s.smtp_security
        await aiosmtplib.send(
            message,
            hostname=self.s.smtp_host,
            port=self.s.smtp_port,
            username=self.s.smtp_username or None,
            password=self.s.smtp_password or None,
            use_tls=security == "tls",
            start_tls=True if security == "starttls" else False,
            timeout=self.s.smtp_timeout_seconds,
        )


class DevMailboxTransport:
    """No network: the outbox row itself is the dev mailbox (``GET /dev/mailbox``)."""

    async def send(self, message: EmailMessage) -> None:
        log.info("dev mailbox: message to %s: %s", message["To"], message["Subject"])


class Outbox:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._domain = parseaddr(settings.mail_from)[1].partition("@")[2] or "sproutgate.local"
        self.wakeup = asyncio.Event()

    def enqueue(
        self, repo: OutboxRepository, to: str, subject: str, text_body: str, kind: str
    ) -> OutboxMessage:
        now = utcnow()
        message = OutboxMessage(
            message_id=f"<{secrets.token_hex(16)}@{self._domain}>",
            to_addr=to,
            subject=subject,
            text_body=text_body,
            kind=kind,
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        repo.add(message)
        return message

    def notify(self) -> None:
        """Wake the worker after the enqueuing transaction has committed."""
        self.wakeup.set()


def build_email(settings: Settings, row: OutboxMessage) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = row.to_addr
    msg["Subject"] = row.subject
    msg["Message-ID"] = row.message_id
    msg["Date"] = formatdate(row.created_at.timestamp(), usegmt=True)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(row.text_body)
    return msg


class OutboxWorker:
    def __init__(self, settings: Settings, db: Database, outbox: Outbox, transport: MailTransport) -> None:
        self.settings = settings
        self.db = db
        self.outbox = outbox
        self.transport = transport
        self.sent = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(4)  # SMTP connections at once, per process

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="sproutgate-outbox")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: S110
                pass

    async def _loop(self) -> None:
        while True:
            try:
                busy = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be down; keep going
                log.warning("outbox: pass failed: %s", exc)
                busy = False
            if busy:
                continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
            # arrives just as the event is set, and stop() then waits for ever.
            try:
                async with asyncio.timeout(self.settings.mail_poll_seconds):
                    await self.outbox.wakeup.wait()
            except TimeoutError:
                pass
            self.outbox.wakeup.clear()

    async def run_once(self) -> bool:
        """Send what is due; True when there may be more."""
        now = utcnow()
        async with self.db.read() as s:
            ids = await OutboxRepository(s).due_ids(now)
        results = await asyncio.gather(*(self._deliver_one(i) for i in ids), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]
        return len(ids) >= 20

    async def _deliver_one(self, message_id: str) -> None:
        async with self._slots:
            await self._deliver(message_id)

    async def _deliver(self, message_id: str) -> None:
        now = utcnow()
        lease = now + timedelta(seconds=max(60.0, self.settings.smtp_timeout_seconds * 3))
        async with self.db.write() as s:
            repo = OutboxRepository(s)
            if not await repo.claim(message_id, now, lease):
                return
            row = await repo.get(message_id)
            assert row is not None
            await s.refresh(row)
        try:
            await self.transport.send(build_email(self.settings, row))
        except Exception as exc:  # noqa: BLE001 - any delivery failure is retried
            await self._failed(row, exc)
            return
        await self._record_sent(message_id)
        self.sent += 1

    async def _record_sent(self, message_id: str) -> None:
        """Mark a delivered message sent. The mail is already out: if the database is briefly
        away, keep trying for a while rather than let the lease expire and send it twice."""
        for delay in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, None):
            try:
                async with self.db.write() as s:
                    live = await OutboxRepository(s).get(message_id)
                    if live is not None:
                        live.status = "sent"
                        live.sent_at = utcnow()
                        live.locked_until = None
                        live.last_error = None
                return
            except Exception as exc:  # noqa: BLE001 - database trouble; retried, then logged
                if delay is None:
                    log.error("outbox: %s was sent but could not be marked sent: %s", message_id, exc)
                    return
                await asyncio.sleep(delay)

    async def _failed(self, row: OutboxMessage, exc: Exception) -> None:
        attempts = row.attempts
        delay = min(
            self.settings.mail_retry_max_seconds,
            self.settings.mail_retry_base_seconds * (2 ** (attempts - 1)),
        )
        give_up = attempts >= self.settings.mail_max_attempts
        log.warning("outbox: sending %s failed (attempt %d): %s", row.message_id, attempts, exc)
        self.failed += 1
        async with self.db.write() as s:
            live = await OutboxRepository(s).get(row.id)
            if live is None:
                return
            live.status = "failed" if give_up else "pending"
            live.next_attempt_at = utcnow() + timedelta(seconds=delay)
            live.locked_until = None
            live.last_error = f"{type(exc).__name__}: {exc}"[:1000]
