"""Every end of a session goes through domain.sessions.service.end_sessions (issue 14): whatever
must follow an end (back-channel logout, a notice) is added there once and applies to all. This
guards the rule in the source: no other module sets a session's ``revoked_at``."""

from __future__ import annotations

import re
from pathlib import Path

import sproutgate

SRC = Path(sproutgate.__file__).resolve().parent
# Writes of revoked_at: an ORM/Core ``values(revoked_at=...)`` or an attribute assignment.
WRITES_REVOKED_AT = re.compile(r"revoked_at\s*=(?!=)")
CALLS_THE_STATEMENTS = re.compile(r"\.end_sessions\(")


def _modules() -> dict[str, str]:
    return {p.relative_to(SRC).as_posix(): p.read_text(encoding="utf-8") for p in SRC.rglob("*.py")}


def test_only_the_storage_statements_behind_end_sessions_write_revoked_at():
    modules = _modules()
    writers = {name for name, text in modules.items() if WRITES_REVOKED_AT.search(text)}
    assert writers == {"storage/repositories.py"}, writers
    # The statements SessionRows.end_sessions runs (one session with the apps' grants made
    # through it; all of a user's but one; all of a user's grants to one app).
    assert len(WRITES_REVOKED_AT.findall(modules["storage/repositories.py"])) == 3


def test_only_end_sessions_runs_those_statements():
    callers = {name for name, text in _modules().items() if CALLS_THE_STATEMENTS.search(text)}
    assert callers == {"domain/sessions/service.py"}, callers
    service = _modules()["domain/sessions/service.py"]
    assert service.count("rows.end_sessions(") == 1  # inside end_sessions itself
