"""Readiness of the backing services (database, Redis when configured), each with its
latency: what /api/v1/infra/health reports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from sproutgate.config import Settings
from sproutgate.infra.ratelimit import ping_redis
from sproutgate.storage.db import Database
from sproutgate.storage.repositories import ping

CHECK_TIMEOUT_SECONDS = 3.0
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    status: str  # HEALTHY or UNHEALTHY
    latency_ms: float


@dataclass(frozen=True, slots=True)
class HealthReport:
    """``status`` is HEALTHY only when every service is; ``services`` by name."""

    status: str
    services: dict[str, ServiceHealth]


async def _timed(check: Awaitable[None]) -> ServiceHealth:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check, timeout=CHECK_TIMEOUT_SECONDS)
        status = HEALTHY
    except Exception:  # noqa: BLE001 - any failure is "unhealthy"
        status = UNHEALTHY
    return ServiceHealth(status, round((time.perf_counter() - start) * 1000, 2))


class HealthService:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    async def _database(self) -> None:
        async with self.db.read() as s:
            await ping(s)

    async def check(self) -> HealthReport:
        """Every backing service checked at once, each within CHECK_TIMEOUT_SECONDS. Never raises."""
        checks: dict[str, Awaitable[None]] = {"database": self._database()}
        if self.settings.redis_url:
            checks["redis"] = ping_redis(self.settings.redis_url, self.settings.redis_timeout_seconds)
        results = dict(zip(checks, await asyncio.gather(*(_timed(c) for c in checks.values())), strict=True))
        overall = HEALTHY if all(r.status == HEALTHY for r in results.values()) else UNHEALTHY
        return HealthReport(overall, results)
