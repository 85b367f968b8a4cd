"""Engine and unit-of-work plumbing.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for write transactions so that
concurrent writers queue on the lock instead of failing with "database is locked" half-way.
Reads use plain deferred transactions so they never wait for writers.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from sproutgate.config import Settings
from sproutgate.private_files import private_dir, private_file
from sproutgate.storage import sqlite_driver
from sproutgate.storage.statements import (
    SESSION_END_LISTENERS,
    SessionStatements,
    SqliteStatements,
    Statements,
)

_WRITE = "sproutgate_write"


def make_engine(settings: Settings, *, for_migrations: bool = False) -> AsyncEngine:
    """The engine for ``settings``. On SQLite it uses ``sqlite_driver`` unless
    ``settings.sqlite_inline_driver`` is false or it is for migrations; then plain aiosqlite. On
    PostgreSQL every wait is bounded (connect, pool checkout, statement) so that a request fails
    fast with a DB error, rendered as 503, while the server is away; pre-ping replaces dead pooled
    connections, so service resumes by itself. Migrations (``for_migrations``) may wait for each
    other's lock and run long DDL: no statement timeout."""
    url = settings.resolved_database_url
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        private_dir(settings.data_dir)
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            # Made here, 0600, before SQLite makes it with the umask's mode (and its -wal/-shm
            # files after it).
            private_file(Path(database))
        kwargs["connect_args"] = {"timeout": 30, "isolation_level": None}
        inline = settings.sqlite_inline_driver and not for_migrations
        if inline:
            kwargs["module"] = sqlite_driver.dbapi()  # short calls inline, see sqlite_driver
        engine = create_async_engine(url, **kwargs)
        # Database runs a sqlite_driver.Checkpointer for the inline engine; plain aiosqlite
        # (migrations, or the driver turned off) keeps SQLite's own checkpoints.
        _configure_sqlite(engine, background_checkpoints=inline)
        return engine
    statement_ms = 0 if for_migrations else int(settings.db_statement_timeout_seconds * 1000)
    server_settings = {
        "application_name": "sproutgate",
        "statement_timeout": str(statement_ms),
        "lock_timeout": str(statement_ms),
        "idle_in_transaction_session_timeout": "60000",
    }
    kwargs.update(
        pool_size=1 if for_migrations else settings.db_pool_size,
        max_overflow=0 if for_migrations else settings.db_max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            # Client side as well, for a server that stops answering without closing the socket.
            "command_timeout": None if for_migrations else settings.db_statement_timeout_seconds + 0.5,
            "server_settings": server_settings,
        },
    )
    return create_async_engine(url, **kwargs)


def _configure_sqlite(engine: AsyncEngine, background_checkpoints: bool = False) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        if background_checkpoints:
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = bool(conn.get_execution_options().get(_WRITE))
        if sqlite_driver.begin_now(conn.connection.driver_connection, immediate):
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Hands out sessions: ``read()`` for queries, ``write()`` for a transaction that commits."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Told about every session that ends in a write of this database, in its transaction
        # (domain.sessions.service: ``end_sessions`` calls them, ``listen_to_session_ends``
        # adds one). Every write carries them: ``write()`` in its session's ``info``,
        # ``write_now()`` on its statements.
        self.session_end_listeners: list[Any] = []
        self._read = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._write = async_sessionmaker(
            engine.execution_options(**{_WRITE: True}), expire_on_commit=False, autoflush=False
        )
        # On SQLite (sqlite_driver) commit, rollback and close run inline and never suspend, so
        # a cancellation cannot cut them short and the session is closed directly. Elsewhere
        # AsyncSession's own exit runs close() in a task of its own, shielded from
        # cancellation; on SQLite that task only cost a loop round-trip per request, during
        # which other requests found the connection still out and grew the pool.
        self._closes_inline = sqlite_driver.runs_inline(engine)
        self._reader = sqlite_driver.QueryOnlyReader.for_engine(engine)
        self._writer = sqlite_driver.InlineWriter.for_engine(engine)
        self._checkpointer = sqlite_driver.Checkpointer.for_engine(engine)

    @property
    def reads_now(self) -> bool:
        """Whether ``read_now()`` is available (a SQLite file with the inline driver)."""
        return self._reader is not None

    def read_now(self) -> sqlite3.Connection:
        """A query-only sqlite3 connection for a single indexed lookup on a hot path, run right
        on the event loop thread (see ``sqlite_driver.QueryOnlyReader``); the repository that
        uses it holds the SQL. Raises RuntimeError when ``reads_now`` is false."""
        if self._reader is None:
            raise RuntimeError("read_now() needs a SQLite file")
        return self._reader.connection()

    @asynccontextmanager
    async def write_now(self) -> AsyncIterator[Statements]:
        """A short write transaction of Core statements (``storage.statements``), committed when
        the block ends. On SQLite with the inline driver, when the write lock is free, it runs
        inline on a plain sqlite3 connection (see ``sqlite_driver.InlineWriter``): nothing
        awaited inside may suspend, as the lock is held meanwhile and other requests' inline
        writes would find it taken. That rule is checked: a block that let the event loop run
        other work is rolled back and raises ``sqlite_driver.WriteBlockSuspended`` (at its next
        statement, or at its end). Otherwise, and on other databases, it is ``write()``."""
        conn = self._writer.begin() if self._writer is not None else None
        if conn is None:
            async with self.write() as session:
                yield SessionStatements(session)
            return
        loop_ran = sqlite_driver.LoopRanCheck()
        statements = SqliteStatements(conn, loop_ran, self.session_end_listeners)
        try:
            yield statements
        except BaseException as exc:
            loop_ran.close()
            conn.execute("ROLLBACK")
            # A cancellation can only arrive at a suspension: let it through as it is.
            suspended = sqlite_driver.WriteBlockSuspended
            if loop_ran.ran and isinstance(exc, Exception) and not isinstance(exc, suspended):
                raise suspended("the block raised after it suspended; rolled back") from exc
            raise
        loop_ran.close()
        if loop_ran.ran:
            conn.execute("ROLLBACK")
            raise sqlite_driver.WriteBlockSuspended("rolled back instead of committed")
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise DBAPIError.instance("COMMIT", (), exc, sqlite3.Error) from exc
        for callback in statements.committed:
            callback()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        if not self._closes_inline:
            async with self._read() as session:
                yield session
            return
        session = self._read()
        try:
            yield session
        finally:
            await session.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        if not self._closes_inline:
            async with self._write() as session, session.begin():
                session.info[SESSION_END_LISTENERS] = self.session_end_listeners
                yield session
            return
        session = self._write()
        session.info[SESSION_END_LISTENERS] = self.session_end_listeners
        try:
            async with session.begin():
                yield session
        finally:
            await session.close()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def dispose(self) -> None:
        await self.engine.dispose()
        for own in (self._reader, self._writer):
            if own is not None:
                own.close()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
