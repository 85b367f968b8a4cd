"""domain.sessions.rules.session_is_active: the one answer to "does this session count?"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sproutgate.domain.sessions.rules import session_is_active

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def test_a_live_session_of_an_enabled_user_is_active():
    assert session_is_active(None, LATER, False, NOW)


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
    assert not session_is_active(revoked_at, expires_at, disabled, NOW)


def test_a_revocation_counts_even_when_it_is_dated_in_the_future():
    # Another instance's clock may run ahead: a revoked session is revoked.
    assert not session_is_active(LATER, LATER + timedelta(hours=1), False, NOW)
