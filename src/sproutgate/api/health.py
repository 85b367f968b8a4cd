"""Health checks of the backing services, used by /api/v1/infra/health and the CLI."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import text

from sproutgate.services import Services


async def _timed(coro) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    try:
        await asyncio.wait_for(coro, timeout=3)
        status = "healthy"
    except Exception:  # noqa: BLE001 - any failure is "unhealthy"
        status = "unhealthy"
    return {"status": status, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}


async def check(services: Services) -> dict[str, Any]:
    async def db() -> None:
        async with services.db.read() as s:
            await s.execute(text("SELECT 1"))

    checks = {"database": _timed(db())}
    if services.settings.redis_url:
        settings = services.settings
        checks["redis"] = _timed(_ping_redis(settings.redis_url, settings.redis_timeout_seconds))
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    overall = "healthy" if all(r["status"] == "healthy" for r in results.values()) else "unhealthy"
    return {"status": overall, "services": results}


async def _ping_redis(url: str, timeout_seconds: float) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)
    try:
        await client.ping()
    finally:
        await client.aclose()
