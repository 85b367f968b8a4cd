"""The in-process test harness and the helpers tests import (``from support.harness import ...``).

They live here rather than in conftest.py because several conftest modules exist and
``from support.harness import`` would pick whichever pytest loaded last."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx

from sproutgate.domain.clock import OffsetClock
from sproutgate.services import Services

_ip_counter = itertools.count(1)


def next_ip() -> str:
    """A client address no earlier call returned (10.0.0.1, 10.0.0.2, ...; host part never 0:
    mapping it to 1 instead gave the next test the same address as this one every 256 calls)."""
    n = next(_ip_counter)
    while n & 255 == 0:
        n = next(_ip_counter)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class AppHarness:
    """The app, its services, and a client speaking to it from one client address."""

    def __init__(self, app: Any, services: Services, client: httpx.AsyncClient, clock: OffsetClock) -> None:
        self.app = app
        self.services = services
        self.client = client
        self.clock = clock

    def new_client(self, ip: str | None = None, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000)),
            base_url="http://testserver",
            headers={"X-Forwarded-For": ip or next_ip(), **headers},
        )

    async def mailbox(self, to: str | None = None) -> list[dict[str, Any]]:
        # The mailbox answers local clients under a loopback Host name only, so read it as one
        # (not as the test's address).
        response = await self.client.get(
            "/dev/mailbox",
            params={"to": to} if to else None,
            headers={"X-Forwarded-For": "127.0.0.1", "Host": "localhost"},
        )
        response.raise_for_status()
        return response.json()

    async def last_code(self, to: str) -> str:
        messages = await self.mailbox(to)
        for m in messages:
            found = re.search(r"\b(\d{6})\b", m["subject"])
            if found:
                return found.group(1)
        raise AssertionError(f"no code mailed to {to}: {messages}")


async def signup(
    h: AppHarness, email: str, password: str = "Sprout#2026pw", username: str = "sprout"
) -> dict[str, Any]:
    """Sign up through the runtime API; returns the session body."""
    r = await h.client.post(
        "/api/v1/auth/verifications", json={"email": email, "password": password, "username": username}
    )
    assert r.status_code == 202, r.text
    code = await h.last_code(email)
    r = await h.client.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
    assert r.status_code == 200, r.text
    return r.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
