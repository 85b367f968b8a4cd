"""What the adapters need of the process's clock.

There is one clock per process, ``domain.clock.Clock`` (or a test's ``OffsetClock``), built in
``services.build_services`` and handed to every module that writes or checks a time: the domain
services (the outbox and its worker among them) and, here in infra, the token signer. Adapters
declare the small ``TimeSource`` protocol instead of importing the domain (infra never imports
domain); the domain's clocks satisfy it. Intervals of the process itself (key re-reads, SMTP
timeouts) use ``time.monotonic``, which no test needs to move.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class TimeSource(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...
