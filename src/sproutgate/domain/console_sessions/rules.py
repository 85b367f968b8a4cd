"""Admin console session rules: how long a session lasts, when it counts, and what is stored.

The rules (docs/security.md, "Admin console sessions"):

- A session lives on the server. The browser's cookie holds 256 random bits; the database holds
  only their SHA-256, so neither a database dump nor a log line yields a usable cookie.
- It ends on sign-out: the row is deleted, and a copy of the cookie taken before is worth nothing.
- It ends when the admin token changes, by any path: each row carries a keyed MAC of the token it
  was opened with and counts only while that is the current token. Rotating with
  ``sproutgate admin-token --rotate`` and an import that adopts a token also delete every row.
- It ends after ``idle_timeout`` without a request (``SPROUTGATE_CONSOLE_IDLE_TIMEOUT_SECONDS``,
  30 minutes by default), and ``MAX_LIFETIME`` after it was opened however busy it was.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sproutgate.config import Settings
from sproutgate.storage.models import AdminConsoleSession

MAX_LIFETIME = timedelta(hours=8)
_MAC_LABEL = b"admin-console-session\x1f"


@dataclass(frozen=True, slots=True)
class ConsoleSessionRules:
    """How long a console session lasts: ``idle_timeout`` after its last request, and never
    beyond ``max_lifetime`` after it was opened."""

    idle_timeout: timedelta
    max_lifetime: timedelta = MAX_LIFETIME

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleSessionRules:
        """The rules ``settings`` ask for (``console_idle_timeout_seconds``)."""
        return cls(idle_timeout=timedelta(seconds=settings.console_idle_timeout_seconds))

    def ends_at(self, created_at: datetime, last_seen_at: datetime) -> datetime:
        """When a session opened at ``created_at`` and last used at ``last_seen_at`` ends if it
        is not used again."""
        return min(created_at + self.max_lifetime, last_seen_at + self.idle_timeout)

    def is_alive(self, row: AdminConsoleSession, now: datetime, admin_token_mac: str) -> bool:
        """Whether ``row`` still opens the console at ``now``, the current admin token's MAC
        being ``admin_token_mac``."""
        if not hmac.compare_digest(row.admin_token_mac, admin_token_mac):
            return False
        return now < self.ends_at(row.created_at, row.last_seen_at)


def cookie_hash(cookie_value: str) -> str:
    """SHA-256 (hex) of a cookie value: what the database keeps. No key is needed at 256 bits
    of entropy, as for refresh tokens."""
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def admin_token_mac(key: bytes, admin_token: str) -> str:
    """HMAC-SHA256 (hex) of the admin token under ``key`` (32 bytes from the data dir): binds a
    session to the token it was opened with, without storing anything a weak token could be
    guessed against offline."""
    return hmac.new(key, _MAC_LABEL + admin_token.encode(), hashlib.sha256).hexdigest()
