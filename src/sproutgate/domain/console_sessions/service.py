"""Admin console sessions: browsers that presented the admin token on the console's sign-in
form. Open, check (and touch), close, end all; the rules are in rules.py.

Checking the admin token itself (constant time, throttled) is the caller's job: ``open`` is
called only after it matched.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sproutgate.domain.clock import Clock
from sproutgate.domain.console_sessions.rules import ConsoleSessionRules, admin_token_mac, cookie_hash
from sproutgate.storage.db import Database
from sproutgate.storage.models import AdminConsoleSession
from sproutgate.storage.repositories import ConsoleSessionRepository


@dataclass(frozen=True, slots=True)
class OpenedConsoleSession:
    """A new console session: ``cookie_value`` goes to the browser and nowhere else;
    ``max_age_seconds`` is the longest the cookie can be of use."""

    cookie_value: str
    max_age_seconds: int


async def end_every_console_session(db: Database) -> int:
    """Delete every console session (the admin token was replaced); returns how many."""
    async with db.write() as s:
        return await ConsoleSessionRepository(s).delete_all()


class ConsoleSessionService:
    """Opens, checks and ends admin console sessions.

    ``key`` (32 bytes, from the data dir) keys the MAC of the admin token stored with each
    session, so the database never holds a value to guess a weak token against;
    ``current_admin_token`` returns the token in force now (re-read after a rotation)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        rules: ConsoleSessionRules,
        key: bytes,
        current_admin_token: Callable[[], str],
    ) -> None:
        self.db = db
        self.clock = clock
        self.rules = rules
        self._key = key
        self._current_admin_token = current_admin_token

    def _admin_token_mac(self) -> str:
        return admin_token_mac(self._key, self._current_admin_token())

    async def open(self, ip: str | None) -> OpenedConsoleSession:
        """Start a session for a browser that has just presented the current admin token."""
        value = secrets.token_urlsafe(32)
        now = self.clock.now()
        async with self.db.write() as s:
            ConsoleSessionRepository(s).add(
                AdminConsoleSession(
                    token_hash=cookie_hash(value),
                    admin_token_mac=self._admin_token_mac(),
                    created_at=now,
                    last_seen_at=now,
                    expires_at=self.rules.ends_at(now, now),
                    ip=ip,
                )
            )
        return OpenedConsoleSession(value, int(self.rules.max_lifetime.total_seconds()))

    async def check(self, cookie_value: str | None) -> bool:
        """Whether ``cookie_value`` belongs to a live session; a live one counts as used now
        (its idle time starts over), a dead one is deleted."""
        if not cookie_value:
            return False
        now = self.clock.now()
        async with self.db.write() as s:
            sessions = ConsoleSessionRepository(s)
            row = await sessions.by_token_hash(cookie_hash(cookie_value))
            if row is None:
                return False
            if not self.rules.is_alive(row, now, self._admin_token_mac()):
                await sessions.delete(row.id)
                return False
            await sessions.touch(row.id, now, self.rules.ends_at(row.created_at, now))
        return True

    async def close(self, cookie_value: str | None) -> None:
        """Sign-out: the session ends for this cookie and every copy of it. Unknown values are
        ignored."""
        if not cookie_value:
            return
        async with self.db.write() as s:
            await ConsoleSessionRepository(s).delete_by_token_hash(cookie_hash(cookie_value))

    async def end_all(self) -> int:
        """End every console session; returns how many there were."""
        return await end_every_console_session(self.db)
