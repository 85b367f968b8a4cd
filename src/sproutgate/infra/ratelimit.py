"""Rate limits on the ``limits`` library: in-process memory by default, Redis when configured.

Rules are named; their limits come from Settings (``SPROUTGATE_LIMIT_*``). With Redis every
instance counts in one place. When Redis is unreachable the limiter fails *to local*, not open:
it counts in per-process memory (never unlimited; with N processes an attacker gets at most N
times the limit) and, for ``redis_retry_seconds``, does not wait on Redis again, so requests
stay fast. It then tries Redis again and, once Redis answers, counts there again.
See docs/deployment.md.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol, cast

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from sproutgate.config import Settings

log = logging.getLogger(__name__)

RULES = {
    "code_mail_address": "limit_code_mail_per_address",
    "code_request_ip": "limit_code_requests_per_ip",
    "verify_ip": "limit_verify_per_ip",
    "login_fail_account_ip": "limit_login_fail_account_ip",
    "login_fail_account": "limit_login_fail_account",
    "login_fail_ip": "limit_login_fail_ip",
    "refresh_ip": "limit_refresh_per_ip",
    "search_user": "limit_search_per_user",
    "admin_auth_fail_ip": "limit_admin_auth_fail_per_ip",
    "agent_run_user": "limit_agent_runs_per_user",
    "mfa_fail_account_ip": "limit_mfa_fail_account_ip",
    "mfa_fail_account": "limit_mfa_fail_account",
    "mfa_fail_ip": "limit_mfa_fail_ip",
    "mfa_fail_reset_account": "limit_mfa_fail_resets_per_account",
    "passkey_options_ip": "limit_passkey_options_per_ip",
    "oidc_token_ip": "limit_oidc_token_per_ip",
    "oidc_token_client": "limit_oidc_token_per_client",
    "client_auth_fail_ip": "limit_client_auth_fail_per_ip",
    # Failed authentications naming a client, from an address it authenticated from lately.
    "client_auth_fail_client_ip": "limit_client_auth_fail_per_ip",
}

# Rules that remember rather than limit: one event per window, so "exhausted" means "seen in
# the window". Not settings: their windows are rules of the domain (docs/security.md).
MEMORY_RULES = {
    # A confidential client authenticated from this address (the key: client id, address).
    "client_auth_known": "1/30 days",
}


class LimitExceeded(Exception):
    """A rule is exhausted for this key: try again in ``retry_after`` seconds (at least 1).

    The limiter's own verdict; the domain turns it into its ``RateLimited`` error
    (``domain.limits.RateLimits``), so this layer knows nothing of the domain."""

    def __init__(self, rule: str, retry_after: int) -> None:
        super().__init__(f"{rule}: retry after {retry_after}s")
        self.rule = rule
        self.retry_after = max(1, int(retry_after))


class RateLimiter(Protocol):
    """Named rules (``RULES``), each counted per key (an address, an account, a user id)."""

    async def hit(self, rule: str, *key: str) -> None:
        """Count one event; raises LimitExceeded when the rule is exhausted."""
        ...

    async def check(self, rule: str, *key: str) -> None:
        """Raise LimitExceeded if the rule is exhausted, without counting."""
        ...

    async def reset(self, rule: str, *key: str) -> None:
        """Forget the counts of ``rule`` for ``key`` (never raises)."""
        ...


class LimitsRateLimiter:
    def __init__(self, settings: Settings, on_local_mode: Callable[[bool], None] | None = None) -> None:
        """``on_local_mode(True)`` is called when this process starts counting in its own memory
        because Redis failed, ``on_local_mode(False)`` when it counts in Redis again."""
        self.enabled = settings.rate_limits_enabled
        self._on_local_mode = on_local_mode or (lambda local: None)
        self._items: dict[str, list[RateLimitItem]] = {
            rule: parse_many(str(getattr(settings, field)).replace(";", ",")) for rule, field in RULES.items()
        }
        self._items.update({rule: parse_many(value) for rule, value in MEMORY_RULES.items()})
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._redis: MovingWindowRateLimiter | None = None
        self._redis_storage: Storage | None = None
        self._timeout = settings.redis_timeout_seconds
        self._retry_seconds = settings.redis_retry_seconds
        self._next_redis_try = 0.0
        if settings.redis_url:
            url = settings.redis_url
            if not url.startswith("async+"):
                url = "async+" + url
            # An ``async+`` URL gives an asyncio storage (the factory is typed for both kinds).
            redis_storage = cast(
                Storage,
                storage_from_string(
                    url,
                    socket_timeout=self._timeout,
                    socket_connect_timeout=self._timeout,
                    implementation="redispy",
                ),
            )
            self._redis_storage = redis_storage
            self._redis = MovingWindowRateLimiter(redis_storage)
        self.degraded_since: float | None = None

    @property
    def shared(self) -> bool:
        """True while counts are kept in Redis (shared by every instance)."""
        return self._redis is not None and self.degraded_since is None

    async def _call(self, method: str, *args):  # type: ignore[no-untyped-def]
        if self._redis is not None and time.monotonic() >= self._next_redis_try:
            try:
                result = await asyncio.wait_for(getattr(self._redis, method)(*args), self._timeout * 2)
                if self.degraded_since is not None:
                    log.warning("rate limiter: Redis is back, counters shared again")
                    self.degraded_since = None
                    self._on_local_mode(False)
                return result
            except Exception as exc:  # noqa: BLE001 - any storage failure degrades to memory
                self._next_redis_try = time.monotonic() + self._retry_seconds
                if self.degraded_since is None:
                    log.error("rate limiter: Redis unavailable (%r); using per-process limits", exc)
                    self.degraded_since = time.time()
                    self._on_local_mode(True)
        return await getattr(self._memory, method)(*args)

    async def _retry_after(self, item: RateLimitItem, key: tuple[str, ...]) -> int:
        stats = await self._call("get_window_stats", item, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def hit(self, rule: str, *key: str) -> None:
        if not self.enabled:
            return
        for item in self._items[rule]:
            if not await self._call("hit", item, rule, *key):
                raise LimitExceeded(rule, await self._retry_after(item, (rule, *key)))

    async def check(self, rule: str, *key: str) -> None:
        if not self.enabled:
            return
        for item in self._items[rule]:
            if not await self._call("test", item, rule, *key):
                raise LimitExceeded(rule, await self._retry_after(item, (rule, *key)))

    async def reset(self, rule: str, *key: str) -> None:
        for item in self._items[rule]:
            try:
                await self._call("clear", item, rule, *key)
            except Exception:  # noqa: BLE001, S110
                pass


async def ping_redis(url: str, timeout_seconds: float) -> None:
    """Raise unless the Redis server at ``url`` answers a PING within ``timeout_seconds``."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)
    try:
        await client.ping()
    finally:
        await client.aclose()
