"""domain.sessions.rules.session_is_active: the one answer to "does this session count?", and
how often an access-token check records a session's last use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sproutgate.domain.sessions.rules import (
    last_use_is_stale,
    last_used_granularity,
    session_is_active,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
IDLE = timedelta(days=30)


def active(revoked_at, expires_at, disabled, now=NOW, *, last_used_at=NOW, idle=IDLE) -> bool:  # type: ignore[no-untyped-def]
    return session_is_active(
        revoked_at, expires_at, disabled, now, last_used_at=last_used_at, idle_timeout=idle
    )


def test_a_live_session_of_an_enabled_user_is_active():
    assert active(None, LATER, False)


@pytest.mark.parametrize(
    ("revoked_at", "expires_at", "disabled"),
    [
        (NOW - timedelta(seconds=1), LATER, False),  # revoked
        (None, NOW, False),  # expires this very instant
        (None, NOW - timedelta(seconds=1), False),  # expired
        (None, LATER, True),  # the user is disabled
    ],
)
def test_revoked_expired_or_disabled_sessions_are_not_active(revoked_at, expires_at, disabled):
    assert not active(revoked_at, expires_at, disabled)


def test_a_revocation_counts_even_when_it_is_dated_in_the_future():
    # Another instance's clock may run ahead: a revoked session is revoked.
    assert not active(LATER, LATER + timedelta(hours=1), False)


def test_a_session_idle_for_the_timeout_ends_exactly_then():
    far = NOW + timedelta(days=365)
    last = NOW - IDLE
    # Unused for exactly the idle timeout: over, at that instant (exclusive, like expires_at).
    assert not active(None, far, False, last_used_at=last)
    assert active(None, far, False, last_used_at=last + timedelta(microseconds=1))
    # Whatever the timeout: a short one counts the same way.
    short = timedelta(seconds=5)
    assert active(None, far, False, last_used_at=NOW - timedelta(seconds=4), idle=short)
    assert not active(None, far, False, last_used_at=NOW - timedelta(seconds=5), idle=short)


def test_the_last_use_is_recorded_at_most_once_a_minute():
    assert last_used_granularity(IDLE) == timedelta(seconds=60)
    assert not last_use_is_stale(NOW - timedelta(seconds=59), NOW, IDLE)
    assert last_use_is_stale(NOW - timedelta(seconds=60), NOW, IDLE)
    # A short timeout records more often, so the lag stays a quarter of it at most.
    assert last_used_granularity(timedelta(seconds=40)) == timedelta(seconds=10)
    assert last_used_granularity(timedelta(seconds=2)) == timedelta(seconds=1)
