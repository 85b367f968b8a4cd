"""The background loop both outboxes share (queued mail, back-channel logout tokens): one task
per process that delivers what is due, a batch at a time with a bounded number at once, and
otherwise sleeps until woken (something was queued in this process) or until the next poll
(something was queued by another instance, or a retry came due)."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class DeliveryLoop(ABC):
    """Runs ``_due`` and ``_deliver`` of a subclass until stopped.

    ``label`` names the loop in logs and its task; ``wakeup`` is the queue's event (set after a
    commit that queued something); ``poll_seconds`` bounds the sleep between passes;
    ``batch_size`` rows are read per pass and at most ``at_once`` delivered concurrently. A
    pass that fails (the database is down) is logged and the loop goes on."""

    def __init__(
        self, label: str, wakeup: asyncio.Event, poll_seconds: float, batch_size: int, at_once: int
    ) -> None:
        self._label = label
        self._wakeup = wakeup
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(at_once)

    @abstractmethod
    async def _due(self, limit: int) -> list[str]:
        """Ids of at most ``limit`` rows due for delivery now."""

    @abstractmethod
    async def _deliver(self, row_id: str) -> None:
        """Claim and deliver one row (a row another instance claimed meanwhile is skipped)."""

    def start(self) -> None:
        """Run the loop as a task of the running event loop (the app's lifespan)."""
        self._task = asyncio.create_task(self._loop(), name=f"sproutgate-{self._label}")

    async def stop(self) -> None:
        """Cancel the loop; a delivery in flight is left to its lease."""
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
                log.warning("%s: pass failed: %s", self._label, exc)
                busy = False
            if busy:
                continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
            # arrives just as the event is set, and stop() then waits for ever.
            try:
                async with asyncio.timeout(self._poll_seconds):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
            self._wakeup.clear()

    async def run_once(self) -> bool:
        """Deliver what is due; True when there may be more."""
        ids = await self._due(self._batch_size)
        results = await asyncio.gather(*(self._deliver_one(i) for i in ids), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]
        return len(ids) >= self._batch_size

    async def _deliver_one(self, row_id: str) -> None:
        async with self._slots:
            await self._deliver(row_id)
