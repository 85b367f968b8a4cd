"""Session-end listeners (domain.sessions.service.end_sessions, docs/decisions/
session-end-hook-and-backchannel-outbox.md): every end tells the database's listeners exactly
which sessions ended now, inside the ending transaction, also on the inline SQLite path a
reused refresh token takes; sessions that had ended before are not told again."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import bindparam, func, select

from sproutgate.domain.sessions.rules import SessionEndReason
from sproutgate.domain.sessions.service import EndedSession, listen_to_session_ends
from sproutgate.storage.models import AuthSession
from sproutgate.storage.statements import Statements
from support.harness import bearer, signup

pytestmark = pytest.mark.both_engines

SESSIONS = "/api/v1/auth/sessions"
REFRESH = "/api/v1/auth/sessions/refresh"
OTHERS = "/api/v1/users/me/sessions/revoke-others"


_STILL_ACTIVE = select(func.count().label("n")).where(
    AuthSession.id == bindparam("sid"), AuthSession.revoked_at.is_(None)
)


class _Recording:
    """Records what it is told, and what the ending transaction itself shows at that moment."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str, str]] = []
        self.still_active_then: list[int] = []

    async def sessions_ended(self, run: Statements, ended: Sequence[EndedSession]) -> None:
        self.told.extend((e.session_id, e.user_id, e.reason.value) for e in ended)
        # In the same transaction: the ended rows already read as revoked.
        active = 0
        for e in ended:
            row = await run.first(_STILL_ACTIVE, sid=e.session_id)
            assert row is not None
            active += row["n"]
        self.still_active_then.append(active)


def _sid(access_token: str) -> str:
    import jwt

    return jwt.decode(access_token, options={"verify_signature": False})["sid"]


async def test_a_reused_refresh_token_tells_the_listeners_once(harness):
    recording = _Recording()
    listen_to_session_ends(harness.services.db, recording)
    session = await signup(harness, "listen-reuse@example.com")
    await harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    harness.clock.advance(11)  # past the grace window: a reuse
    r = await harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    assert r.status_code == 401
    sid = _sid(session["access_token"])
    user_id = session["user"]["id"]
    assert recording.told == [(sid, user_id, SessionEndReason.REFRESH_REUSE.value)]
    assert recording.still_active_then == [0]
    # Signing out of the session that ended already ends nothing and tells nobody.
    r = await harness.client.request("DELETE", SESSIONS, json={"refresh_token": session["refresh_token"]})
    assert r.status_code == 204
    assert len(recording.told) == 1


async def test_ending_the_other_sessions_tells_exactly_those(harness):
    recording = _Recording()
    listen_to_session_ends(harness.services.db, recording)
    first = await signup(harness, "listen-others@example.com")
    others = []
    for _ in range(2):
        r = await harness.client.post(
            SESSIONS, json={"email": "listen-others@example.com", "password": "Sprout#2026pw"}
        )
        assert r.status_code == 200
        others.append(_sid(r.json()["access_token"]))
    r = await harness.client.post(OTHERS, headers=bearer(first["access_token"]))
    assert r.status_code == 204, r.text
    assert sorted(sid for sid, _, _ in recording.told) == sorted(others)
    assert {reason for _, _, reason in recording.told} == {SessionEndReason.REVOKED_OTHERS.value}
    # Again: nothing left to end, nobody told.
    r = await harness.client.post(OTHERS, headers=bearer(first["access_token"]))
    assert r.status_code == 204
    assert len(recording.told) == 2
