"""Mail outbox operations for administrators: what is waiting, what was sent, what failed for
good, and putting failed mail back in line. Delivery itself is ``infra.mailer.OutboxWorker``."""

from __future__ import annotations

from dataclasses import dataclass

from sproutgate.domain.clock import Clock
from sproutgate.domain.errors import InvalidInput, NotFound
from sproutgate.storage.db import Database
from sproutgate.storage.models import OutboxMessage
from sproutgate.storage.repositories import OutboxRepository

STATUSES = ("pending", "sending", "sent", "failed")


@dataclass(slots=True)
class OutboxCounts:
    """Messages per status; ``retrying`` counts the pending ones that already failed once."""

    pending: int
    sending: int
    sent: int
    failed: int
    retrying: int


@dataclass(slots=True)
class OutboxPage:
    counts: OutboxCounts
    total: int  # messages matching the status filter
    messages: list[OutboxMessage]


class OutboxService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def counts(self) -> OutboxCounts:
        async with self.db.read() as s:
            repo = OutboxRepository(s)
            by_status = await repo.counts()
            retrying = await repo.retrying_count()
        return OutboxCounts(**{st: by_status.get(st, 0) for st in STATUSES}, retrying=retrying)

    async def overview(self, status: str | None = None, page: int = 1, page_size: int = 50) -> OutboxPage:
        """Counts and one page of messages, newest first. Raises InvalidInput for an unknown status."""
        if status is not None and status not in STATUSES:
            raise InvalidInput({"status": "invalid_value"})
        page, page_size = max(1, page), max(1, min(500, page_size))
        counts = await self.counts()
        async with self.db.read() as s:
            total, rows = await OutboxRepository(s).page(status, (page - 1) * page_size, page_size)
        return OutboxPage(counts, total, rows)

    async def retry(self, message_id: str) -> None:
        """Send a failed (or waiting) message again now, with a fresh attempt budget.
        Raises NotFound when there is no such message in either state."""
        async with self.db.write() as s:
            if not await OutboxRepository(s).requeue(self.clock.now(), message_id):
                raise NotFound("message_not_found")

    async def retry_failed(self) -> int:
        """Put every failed message back in line; returns how many."""
        async with self.db.write() as s:
            return await OutboxRepository(s).requeue(self.clock.now())
