"""Helpers for tests that run real ``sproutgate serve`` processes on real PostgreSQL and Redis:
the environment each process gets, starting several at once, and an HTTP client per caller."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from support.servers import ServerProcess

PASSWORD = "Sprout#2026pw"
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
_ips = itertools.count(1)


def fresh_ip() -> str:
    """A client address of its own, so that per-IP limits of one test never touch another."""
    n = next(_ips)
    return f"172.{16 + (n >> 16) % 16}.{(n >> 8) & 255}.{n & 255 or 1}"


def server_env(
    data_dir: Path, database_url: str = "", redis_url: str = "", **settings: Any
) -> dict[str, Any]:
    """Environment of a server process: the brief's fixed values plus ``settings`` as
    ``SPROUTGATE_<NAME>``; any other SPROUTGATE_* of the developer's shell is removed."""
    env: dict[str, Any] = {
        "SPROUTGATE_DATA_DIR": str(data_dir),
        "SPROUTGATE_DATABASE_URL": database_url,
        "SPROUTGATE_REDIS_URL": redis_url,
        "SPROUTGATE_TRUSTED_PROXIES": "127.0.0.1",
        "SPROUTGATE_ARGON2_TIME_COST": "1",
        "SPROUTGATE_ARGON2_MEMORY_KIB": "1024",
        "SPROUTGATE_MAIL_POLL_SECONDS": "0.2",
    }
    env.update({f"SPROUTGATE_{k.upper()}": str(v) for k, v in settings.items()})
    for key in os.environ:
        if key.startswith("SPROUTGATE_") and key not in env:
            env[key] = None
    return env


def start_all(processes: Iterable[ServerProcess]) -> None:
    """Start several server processes at the same time; raise the first failure."""
    errors: list[BaseException] = []

    def run(p: ServerProcess) -> None:
        try:
            p.start()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in processes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def client(base_url: str, ip: str | None = None, timeout: float = 15.0) -> httpx.AsyncClient:
    """A caller of one instance, from its own (forwarded) address."""
    return httpx.AsyncClient(
        base_url=base_url, headers={"X-Forwarded-For": ip or fresh_ip()}, timeout=timeout, trust_env=False
    )


async def mailed_code(base_url: str, email: str, within: float = 10.0) -> str:
    """The newest code the dev mailbox of an instance holds for ``email``."""
    deadline = time.monotonic() + within
    # Straight from loopback: the mailbox refuses requests forwarded for anyone else.
    async with httpx.AsyncClient(base_url=base_url, timeout=15, trust_env=False) as c:
        while True:
            r = await c.get("/dev/mailbox", params={"to": email})
            r.raise_for_status()
            for m in r.json():
                found = CODE.search(m["subject"]) or CODE.search(m["text"])
                if found:
                    return found.group(0)
            if time.monotonic() > deadline:
                raise AssertionError(f"no code mailed to {email}")
            await asyncio.sleep(0.1)


async def sign_up(
    base_url: str, email: str, username: str = "sprout", ip: str | None = None
) -> dict[str, Any]:
    """Complete sign-up through the runtime API; returns the session body."""
    async with client(base_url, ip) as c:
        r = await c.post(
            "/api/v1/auth/verifications", json={"email": email, "password": PASSWORD, "username": username}
        )
        assert r.status_code == 202, r.text
        code = await mailed_code(base_url, email)
        r = await c.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
        assert r.status_code == 200, r.text
        return r.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def wait_until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Poll ``check`` until it is true; returns the seconds it took."""
    start = time.monotonic()
    while True:
        try:
            if await check():
                return time.monotonic() - start
        except httpx.TransportError:
            pass
        if time.monotonic() - start > within:
            raise AssertionError(f"{what}: not within {within}s")
        await asyncio.sleep(0.2)


async def sql(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Read the database directly (what the instances wrote, not what they say)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()
