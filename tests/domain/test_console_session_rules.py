"""The admin console session rules (domain/console_sessions/rules.py), without HTTP or a
database: issue 11 item 7."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sproutgate.config import Settings
from sproutgate.domain.console_sessions.rules import (
    MAX_LIFETIME,
    ConsoleSessionRules,
    admin_token_mac,
    cookie_hash,
)
from sproutgate.storage.models import AdminConsoleSession

KEY = bytes(range(32))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(token: str = "admin-token", created: datetime = T0, seen: datetime = T0) -> AdminConsoleSession:
    return AdminConsoleSession(
        token_hash=cookie_hash("cookie"),
        admin_token_mac=admin_token_mac(KEY, token),
        created_at=created,
        last_seen_at=seen,
        expires_at=seen,
    )


def test_the_default_idle_timeout_is_30_minutes_and_the_limit_8_hours():
    rules = ConsoleSessionRules.from_settings(Settings())
    assert rules.idle_timeout == timedelta(minutes=30) and rules.max_lifetime == MAX_LIFETIME == timedelta(
        hours=8
    )


def test_a_session_ends_after_the_idle_time_counted_from_its_last_use():
    rules = ConsoleSessionRules(idle_timeout=timedelta(minutes=30))
    mac = admin_token_mac(KEY, "admin-token")
    assert rules.is_alive(row(), T0 + timedelta(minutes=29, seconds=59), mac)
    assert not rules.is_alive(row(), T0 + timedelta(minutes=30), mac)
    used = row(seen=T0 + timedelta(hours=2))
    assert rules.is_alive(used, T0 + timedelta(hours=2, minutes=29), mac)


def test_a_busy_session_still_ends_8_hours_after_sign_in():
    rules = ConsoleSessionRules(idle_timeout=timedelta(minutes=30))
    busy = row(seen=T0 + timedelta(hours=7, minutes=59))
    mac = admin_token_mac(KEY, "admin-token")
    assert rules.ends_at(busy.created_at, busy.last_seen_at) == T0 + timedelta(hours=8)
    assert not rules.is_alive(busy, T0 + timedelta(hours=8), mac)


def test_a_session_counts_only_under_the_token_it_was_opened_with():
    rules = ConsoleSessionRules(idle_timeout=timedelta(minutes=30))
    assert not rules.is_alive(row(), T0, admin_token_mac(KEY, "rotated-token"))
    assert not rules.is_alive(row(), T0, admin_token_mac(bytes(32), "admin-token"))  # another key


def test_neither_the_cookie_nor_the_admin_token_is_stored():
    stored = row()
    assert "cookie" not in stored.token_hash and len(stored.token_hash) == 64
    assert "admin-token" not in stored.admin_token_mac and len(stored.admin_token_mac) == 64
