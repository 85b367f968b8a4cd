"""UTCDateTime on SQLite: the fused bind step (storage/models.py) stores exactly the text
SQLAlchemy's own composition (``process_bind_param`` then the SQLite DATETIME format) stores,
and reads back the same instant."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Column, MetaData, Table, insert, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.types import DateTime

from sproutgate.storage.models import UTCDateTime
from sproutgate.storage.sqlite_driver import prepared


def _generic(value: datetime) -> str:
    """SQLAlchemy's composition: the type's own bind step, then the SQLite DATETIME format."""
    dialect = sqlite_dialect.dialect()
    step = UTCDateTime().process_bind_param(value, dialect)
    return DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)(step)


def _instants() -> list[datetime]:
    rnd = random.Random(20261130)
    zones = [None, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-9, minutes=-30))]
    values = [datetime(2026, 11, 30), datetime(2026, 3, 29, 1, 0, 0, 1, tzinfo=UTC)]
    for _ in range(500):
        base = datetime(1970, 1, 2) + timedelta(seconds=rnd.randrange(0, 4_000_000_000))
        micro = rnd.choice([0, 1, 999_999, rnd.randrange(1_000_000)])
        values.append(base.replace(microsecond=micro, tzinfo=rnd.choice(zones)))
    return values


def test_the_fused_bind_step_stores_the_text_of_the_generic_one():
    dialect = sqlite_dialect.dialect()
    fused = UTCDateTime()._cached_bind_processor(dialect)  # what statements use
    assert fused is not None
    assert fused.__name__ == "_sqlite_utc_text"  # the fast step is the one in use
    for value in _instants():
        assert fused(value) == _generic(value), value
    assert fused(None) is None


def test_stored_instants_read_back_the_same_through_the_inline_driver():
    table = Table("t", MetaData(), Column("at", UTCDateTime()))
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (at DATETIME)")
    put, get = prepared(insert(table)), prepared(select(table.c.at))
    values = _instants()
    for value in values:
        put.run(conn, at=value)
    read = [row[0] for row in get.all(conn)]
    assert read == [v if v.tzinfo else v.replace(tzinfo=UTC) for v in values]
    assert all(v.tzinfo is UTC for v in read)
