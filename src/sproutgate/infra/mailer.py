"""Mail: an outbox written in the caller's transaction, and a worker that delivers it.

``Outbox.enqueue`` stores the message in the same transaction as the code it carries, so a
code is never issued without its mail, nor a mail without its code. ``OutboxWorker`` claims due
rows with a lease (one atomic UPDATE per row, so several instances never send one message
twice in normal operation), sends them through a ``MailTransport`` and retries failures with
exponential backoff. Every message has a stable Message-ID, so a retry after a lost answer is
recognisable downstream (delivery is at least once).

The subject and bodies are sealed at rest (``infra.sealing``, key ``data/keys/outbox.key``): they
carry one-time codes. ``Outbox.open`` gives them back in clear to the worker and the dev mailbox;
the admin listings show the subject only, with any code masked.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Protocol

from sproutgate.config import Settings
from sproutgate.infra.sealing import KEY_FILE, Sealer, UnsealError
from sproutgate.storage.db import Database
from sproutgate.storage.models import OutboxMessage
from sproutgate.storage.repositories import OutboxRepository

log = logging.getLogger(__name__)


CODE_IN_TEXT = re.compile(r"(?<!\d)\d{6}(?!\d)")
CODE_MASK = "******"
UNREADABLE = f"(cannot be decrypted with data/keys/{KEY_FILE} or a later outbox key)"


def utcnow() -> datetime:
    return datetime.now(UTC)


def mask_codes(text: str) -> str:
    """``text`` with every 6-digit code replaced by ``******``."""
    return CODE_IN_TEXT.sub(CODE_MASK, text)


class UnreadableMail(Exception):
    """A queued message whose sealed fields do not open with this data dir's outbox key."""


@dataclass(frozen=True, slots=True)
class OpenedMail:
    """An outbox row with its subject and bodies in clear (``readable`` False: placeholders)."""

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
        log.info("dev mailbox: message to %s: %s", message["To"], mask_codes(str(message["Subject"])))


class Outbox:
    def __init__(self, settings: Settings, sealer: Sealer) -> None:
        self.settings = settings
        self.sealer = sealer
        self._domain = parseaddr(settings.mail_from)[1].partition("@")[2] or "sproutgate.local"
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
        now = utcnow()
        message_id = f"<{secrets.token_hex(16)}@{self._domain}>"

        def seal(field: str, value: str) -> str:
            return self.sealer.seal(value, field=field, message_id=message_id, to_addr=to)

        message = OutboxMessage(
            message_id=message_id,
            to_addr=to,
            subject=seal("subject", subject),
            text_body=seal("text_body", text_body),
            html_body=None if html_body is None else seal("html_body", html_body),
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

    def open(self, row: OutboxMessage) -> OpenedMail:
        """The message in clear. Rows queued before sealing (no ``enc1:`` prefix) come back as
        stored. Raises UnreadableMail when a sealed field does not open with this key."""

        def clear(field: str, value: str) -> str:
            return self.sealer.open(value, field=field, message_id=row.message_id, to_addr=row.to_addr)

        try:
            subject = clear("subject", row.subject)
            text_body = clear("text_body", row.text_body)
            html_body = None if row.html_body is None else clear("html_body", row.html_body)
        except UnsealError as exc:
            raise UnreadableMail(
                f"its {exc.field} does not decrypt with data/keys/{KEY_FILE} or a later outbox key: "
                "queued with another outbox key (was the data dir replaced?) or altered"
            ) from exc
        return OpenedMail(
            row.id,
            row.message_id,
            row.to_addr,
            subject,
            text_body,
            html_body,
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

    def listed_subject(self, row: OutboxMessage) -> str:
        """The subject for administrators' listings: in clear, but with any code masked."""
        return mask_codes(self.view(row).subject)

    def warn_unreadable(self, row: OutboxMessage, exc: Exception) -> None:
        """Log an unreadable message, once per message and process."""
        if row.id in self._warned:
            return
        if len(self._warned) >= 10_000:
            self._warned.clear()
        self._warned.add(row.id)
        log.warning("outbox: message %s %s to %s: %s", row.id, row.message_id, row.to_addr, exc)


def build_email(settings: Settings, mail: OpenedMail) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = mail.to_addr
    msg["Subject"] = mail.subject
    msg["Message-ID"] = mail.message_id
    msg["Date"] = formatdate(mail.created_at.timestamp(), usegmt=True)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(mail.text_body)
    if mail.html_body is not None:
        msg.add_alternative(mail.html_body, subtype="html")
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
            await self.transport.send(build_email(self.settings, self.outbox.open(row)))
        except UnreadableMail as exc:  # the key changed: retrying cannot help
            await self._unreadable(row, exc)
            return
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

    async def _unreadable(self, row: OutboxMessage, exc: UnreadableMail) -> None:
        """A message this key cannot open fails at once: retrying cannot help until the right
        key is back in data/keys (then ``sproutgate outbox retry`` sends it)."""
        self.outbox.warn_unreadable(row, exc)
        self.failed += 1
        async with self.db.write() as s:
            live = await OutboxRepository(s).get(row.id)
            if live is None:
                return
            live.status = "failed"
            live.locked_until = None
            live.last_error = f"not sent: {exc}"[:1000]

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
