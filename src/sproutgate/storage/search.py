"""User search (``/users/search``): one primary address exactly, or display names, best first.

Display names are matched on ``users.username_lower``: a b-tree range for prefixes on every
engine; for substrings and similar names the FTS5 trigram index on SQLite and ``pg_trgm`` on
PostgreSQL. Candidates are fetched as (id, name) pairs only, ranked here (exact, prefix,
substring, then similar), and only the winners are loaded as users: materialising a couple of
hundred full rows to keep twenty cost more than the index lookups themselves.

The same code runs on an AsyncSession (every engine) or, on SQLite, on the query-only sqlite3
connection of ``Database.read_now()``, through the two small adapters below
(``SessionSearchRows``, ``ConnectionSearchRows``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Select

from sproutgate.storage import sqlite_driver
from sproutgate.storage.models import User

# Shared trigrams / all trigrams above which a name counts as similar, on every engine.
SIMILARITY_THRESHOLD = 0.2
# How many of the newest names a one- or two-character query looks through for substrings on
# SQLite (prefixes use the index and are always found).
SHORT_QUERY_WINDOW = 20_000

_ACTIVE = User.disabled.is_(False)
_NAMES = select(User.id, User.username_lower)

# Built once (bind parameters throughout), so SQLAlchemy and sqlite_driver compile each once.
_PREFIX_RANGE = (  # SQLite: a range on the b-tree; index order, so the scan stops at :n rows
    _NAMES.where(User.username_lower >= bindparam("lo"), User.username_lower < bindparam("hi"), _ACTIVE)
    .order_by(User.username_lower)
    .limit(bindparam("n"))
)
_PREFIX_LIKE = (  # PostgreSQL: LIKE 'q%' uses the text_pattern_ops index (a range depends on collation)
    _NAMES.where(User.username_lower.like(bindparam("pattern"), escape="\\"), _ACTIVE)
    .order_by(User.username_lower)
    .limit(bindparam("n"))
)
_SHORT_NEWEST = (  # SQLite, 1-2 characters: no index serves them; look among the newest names only
    _NAMES.where(
        text("users.rowid > (SELECT max(rowid) FROM users) - :window"),
        func.instr(User.username_lower, bindparam("q")) > 0,
        _ACTIVE,
    ).limit(bindparam("n"))
)
_SHORT_ANY = _NAMES.where(User.username_lower.like(bindparam("pattern"), escape="\\"), _ACTIVE).limit(
    bindparam("n")
)
# No ORDER BY in the FTS queries: sorting needs every match (tens of thousands for a common
# trigram among a million names), which took 100-200 ms; a bounded window in index order takes
# a few, and rank() orders it. With that many matches the shortest names containing the query
# may be missed; exact and prefix matches never are (the b-tree above).
_FTS = _NAMES.where(
    text("users.rowid IN (SELECT rowid FROM users_fts WHERE users_fts MATCH :match LIMIT :window)"),
    _ACTIVE,
)
_SUBSTRING_PG = (
    _NAMES.where(User.username_lower.like(bindparam("pattern"), escape="\\"), _ACTIVE)
    .order_by(func.length(User.username_lower), User.username_lower)
    .limit(bindparam("n"))
)
# The % operator (GIN-indexed) uses pg_trgm.similarity_threshold, set for the transaction.
_SIMILAR_THRESHOLD_PG = select(func.set_config("pg_trgm.similarity_threshold", bindparam("threshold"), True))
_SIMILAR_PG = (
    _NAMES.where(User.username_lower.op("%")(bindparam("q")), _ACTIVE)
    .order_by(func.similarity(User.username_lower, bindparam("q")).desc())
    .limit(bindparam("n"))
)
_USER_BY_ID = select(*User.__table__.columns).where(User.id == bindparam("uid"))
_USER_BY_PRIMARY_EMAIL = select(*User.__table__.columns).where(User.email == bindparam("email"))


class Rows(Protocol):
    dialect: str

    async def all(self, statement: Select, **params: Any) -> list[tuple[Any, ...]]: ...

    async def users(self, ids: list[str]) -> list[User]:
        """The users with these ids, in any order (missing ones left out)."""
        ...

    async def by_primary_email(self, email: str) -> User | None: ...


class SessionSearchRows:
    """Statements in an AsyncSession (every engine)."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session
        self.dialect = session.get_bind().dialect.name

    async def all(self, statement: Select, **params: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self.s.execute(statement, params)]

    async def users(self, ids: list[str]) -> list[User]:
        return list((await self.s.execute(select(User).where(User.id.in_(ids)))).scalars())

    async def by_primary_email(self, email: str) -> User | None:
        return (await self.s.execute(select(User).where(User.email == email))).scalar_one_or_none()


class ConnectionSearchRows:
    """The same statements on a plain sqlite3 connection (``Database.read_now()``): no session,
    no ORM loading, nothing that suspends."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def all(self, statement: Select, **params: Any) -> list[tuple[Any, ...]]:
        return sqlite_driver.prepared(statement).all(self.conn, **params)

    async def users(self, ids: list[str]) -> list[User]:
        query = sqlite_driver.prepared(_USER_BY_ID)
        rows = (query.first(self.conn, uid=uid) for uid in ids)
        return [sqlite_driver.detached(User, row) for row in rows if row is not None]

    async def by_primary_email(self, email: str) -> User | None:
        row = sqlite_driver.prepared(_USER_BY_PRIMARY_EMAIL).first(self.conn, email=email)
        return sqlite_driver.detached(User, row) if row is not None else None


def _escape_like(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _fts_phrase(q: str) -> str:
    return '"' + q.replace('"', '""') + '"'


async def search_users(rows: Rows, query: str, limit: int = 20) -> list[User]:
    """An address (contains @, matched lower-cased) gives its one active owner by primary
    email; anything else (``query`` already normalised like ``username_lower``) the best
    ``limit`` active users by display name."""
    if "@" in query:
        user = await rows.by_primary_email(query.lower())
        return [user] if user is not None and not user.disabled else []
    q = query.lower()
    found = dict(await _prefix(rows, q, limit))
    if len(q) < 3 or rows.dialect not in ("sqlite", "postgresql"):
        if len(found) < limit:
            if rows.dialect == "sqlite":
                more = await rows.all(_SHORT_NEWEST, window=SHORT_QUERY_WINDOW, q=q, n=limit * 2)
            else:
                more = await rows.all(_SHORT_ANY, pattern=f"%{_escape_like(q)}%", n=limit * 2)
            found.update(more)
        return await _load(rows, rank(found, q)[:limit])
    if rows.dialect == "sqlite":
        found.update(await rows.all(_FTS, match=_fts_phrase(q), window=limit * 10))
        if len(found) < limit:
            match = _similar_match(q)
            if match:
                qgrams = trigrams(q)
                for uid, name in await rows.all(_FTS, match=match, window=limit * 5):
                    if uid not in found and similarity(qgrams, name) >= SIMILARITY_THRESHOLD:
                        found[uid] = name
    else:
        found.update(await rows.all(_SUBSTRING_PG, pattern=f"%{_escape_like(q)}%", n=limit * 5))
        if len(found) < limit:
            await rows.all(_SIMILAR_THRESHOLD_PG, threshold=str(SIMILARITY_THRESHOLD))
            found.update(await rows.all(_SIMILAR_PG, q=q, n=limit * 2))
    return await _load(rows, rank(found, q)[:limit])


def _similar_match(q: str) -> str | None:
    """An FTS5 query for names that may be similar to ``q`` (three or more characters): a
    bounded window of them in index order, not a bm25 ranking of every name sharing a trigram.
    Up to five characters, names sharing any of its trigrams; from six on, where one shared
    trigram says little, names sharing a run of four characters with it (each a phrase of two
    adjacent trigrams) -- a typo or a different ending still leaves several such runs."""
    if len(q) < 6:
        grams = sorted({q[i : i + 3] for i in range(len(q) - 2)})
        return " OR ".join(_fts_phrase(g) for g in grams) if len(grams) > 1 else None
    return " OR ".join(_fts_phrase(g) for g in sorted({q[i : i + 4] for i in range(len(q) - 3)}))


async def _prefix(rows: Rows, q: str, limit: int) -> list[tuple[Any, ...]]:
    if rows.dialect == "postgresql":
        return await rows.all(_PREFIX_LIKE, pattern=_escape_like(q) + "%", n=limit)
    # Index order, not length: the exact name sorts first anyway, and the range scan stops after
    # `limit` rows instead of sorting every match of a one-letter prefix.
    return await rows.all(_PREFIX_RANGE, lo=q, hi=q + "\U0010ffff", n=limit)


async def _load(rows: Rows, ids: list[str]) -> list[User]:
    if not ids:
        return []
    by_id = {u.id: u for u in await rows.users(ids)}
    return [by_id[i] for i in ids if i in by_id and not by_id[i].disabled]


def trigrams(s: str) -> set[str]:
    """pg_trgm's trigrams of one word: padded with two spaces in front and one behind."""
    s = f"  {s} "
    return {s[i : i + 3] for i in range(len(s) - 2)}


def similarity(qgrams: set[str], name: str) -> float:
    """Shared trigrams / all trigrams of the query's (``qgrams``) and ``name``'s."""
    grams = trigrams(name)
    return len(qgrams & grams) / max(1, len(qgrams | grams))


def rank(candidates: dict[str, str] | Iterable[tuple[str, str]], q: str) -> list[str]:
    """Ids of (id, name) candidates, best first: the exact name, prefixes, substrings, then
    similar names by similarity; shorter names first within a tier, then by name."""
    qgrams = trigrams(q)

    def key(item: tuple[str, str]) -> tuple[int, float, int, str]:
        name = item[1]
        if name == q:
            return (0, 0.0, len(name), name)
        if name.startswith(q):
            return (1, 0.0, len(name), name)
        if q in name:
            return (2, 0.0, len(name), name)
        return (3, -similarity(qgrams, name), len(name), name)

    items = candidates.items() if isinstance(candidates, dict) else dict(candidates).items()
    return [uid for uid, _ in sorted(items, key=key)]
