"""Rate limits as the domain applies them: the named rules of ``infra.ratelimit`` (their sizes
come from Settings), with an exhausted rule answered by the domain's ``RateLimited``.

The limiter (memory or Redis) only says "exhausted, retry in N seconds"; turning that verdict
into the error every face renders (429 with Retry-After, a form message, a tool's text) is the
domain's, here, once."""

from __future__ import annotations

from sproutgate.domain.errors import RateLimited
from sproutgate.domain.metrics import NO_METRICS, Metrics
from sproutgate.infra.ratelimit import LimitExceeded, RateLimiter


class RateLimits:
    """The limiter every domain service counts against (one per process); every refusal is
    reported to ``metrics`` by rule name."""

    def __init__(self, limiter: RateLimiter, metrics: Metrics = NO_METRICS) -> None:
        self.limiter = limiter
        self.metrics = metrics

    async def hit(self, rule: str, *key: str) -> None:
        """Count one event of ``rule`` for ``key``. Raises RateLimited when the rule is exhausted."""
        try:
            await self.limiter.hit(rule, *key)
        except LimitExceeded as exc:
            self.metrics.rate_limited(exc.rule)
            raise RateLimited(exc.retry_after) from None

    async def check(self, rule: str, *key: str) -> None:
        """Raise RateLimited if ``rule`` is exhausted for ``key``, without counting."""
        try:
            await self.limiter.check(rule, *key)
        except LimitExceeded as exc:
            self.metrics.rate_limited(exc.rule)
            raise RateLimited(exc.retry_after) from None

    async def remember(self, rule: str, *key: str) -> None:
        """Note an event of a memory rule (``infra.ratelimit.MEMORY_RULES``: one event per
        window) for ``key``; nothing when one is noted already. Never raises, never counted as a
        refusal."""
        try:
            await self.limiter.hit(rule, *key)
        except LimitExceeded:
            pass

    async def remembered(self, rule: str, *key: str) -> bool:
        """Whether an event of the memory rule ``rule`` was noted for ``key`` within its window
        (always False with rate limits off)."""
        try:
            await self.limiter.check(rule, *key)
        except LimitExceeded:
            return True
        return False

    async def reset(self, rule: str, *key: str) -> None:
        """Forget the counts of ``rule`` for ``key`` (after a success that clears failures)."""
        await self.limiter.reset(rule, *key)
