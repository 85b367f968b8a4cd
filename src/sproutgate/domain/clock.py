"""Time, injectable so tests can travel (``FrozenClock``) without patching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# How far apart the clocks of two instances may be where an instant one wrote is compared with
# one another wrote, and a second too late would ask the person for the same thing again: a
# demand for a fresh sign-in (stored by the instance that answered ``prompt=login`` /
# ``max_age``) against the sign-in that answers it (timed by the instance that served the
# sign-in page). NTP keeps hosts within milliseconds; 5 s covers a host that drifted a little
# while being far shorter than anyone takes to sign in (docs/security.md, "Clocks").
CLOCK_SKEW = timedelta(seconds=5)


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class OffsetClock(Clock):
    """Real time plus an offset that tests can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)
