"""aiosqlite, with the calls that do not wait made on the event loop thread.

aiosqlite runs every call (make a cursor, execute, fetch, close the cursor, commit, roll back)
on a thread of its own and wakes the event loop for each result. A one-query read took nine
such hand-offs and a refresh about thirty, each costing context switches and a GIL hand-over
(the worker may wait up to the 5 ms switch interval for the busy loop to let go of the GIL),
several times the SQL itself. Worse, a write transaction held SQLite's write lock across those
waits, so every other writer queued behind them.

In WAL mode nothing here waits on another connection except taking the write lock: readers
never block, and a transaction that holds the lock commits by appending to the WAL. So this
connection runs calls inline, and only these go to the connection's thread:

- ``BEGIN IMMEDIATE``/``EXCLUSIVE`` when the write lock is taken: it is first tried inline
  without waiting (busy timeout 0); if another connection or process holds the lock, the
  thread waits for it with the configured busy timeout;
- statements outside a transaction that take a lock (an autocommit write, a PRAGMA such as
  ``journal_mode``), anything but ``SELECT``, ``WITH``, ``BEGIN`` and ``ROLLBACK``;
- opening and closing the connection, ``backup``, ``executescript``.

A COMMIT may run a WAL auto-checkpoint (PASSIVE, never waiting for locks) inline.

Besides that connection, the module holds what ``Database`` uses for the hot paths on a SQLite
file: query-only and writing sqlite3 connections used straight from the event loop
(``QueryOnlyReader``, ``InlineWriter``), statements compiled once for them
(``PreparedStatement``), background WAL checkpoints (``Checkpointer``) and the check of the one
rule they impose (``LoopRanCheck``): nothing awaited inside an inline write block may suspend.

It relies on private parts of two libraries, which pyproject.toml therefore bounds from above:

- aiosqlite: ``Connection(connector, iter_chunk_size)``, its ``_execute`` (every call of the
  connection and its cursors goes through it), ``_connection`` and ``_running``; the module's
  namespace is copied into the shim module SQLAlchemy is handed;
- SQLAlchemy: ``AsyncAdapt_aiosqlite_dbapi(aiosqlite, sqlite3)`` and its ``aiosqlite``
  attribute; a compiled statement's ``positiontup`` and ``binds`` (``required``,
  ``effective_value``); ``TypeEngine._cached_bind_processor``/``_cached_result_processor``;
  ``Mapper.class_manager.new_instance()``.

``Settings.sqlite_inline_driver = False`` (``SPROUTGATE_SQLITE_INLINE_DRIVER=false``) runs SQLite
on plain aiosqlite, relying on none of these except ``detached`` (the class manager), which
``repositories.user_from_row`` uses on every engine.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
import types
from collections.abc import Callable
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable, SelectBase

_INLINE_OUTSIDE_TRANSACTION = ("SELECT", "WITH", "BEGIN", "ROLLBACK")
_TAKES_WRITE_LOCK = ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")
_THREAD_METHODS = frozenset({"close", "backup", "executescript", "iterdump"})
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_SHIM = "sproutgate_aiosqlite"

log = logging.getLogger(__name__)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs the calls that do not wait inline (module doc)."""

    _busy_timeout_ms: int | None = None

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        conn = self._connection
        if conn is None or not self._running:
            return await super()._execute(fn, *args, **kwargs)
        if getattr(fn, "__self__", None) is conn and fn.__name__ in _THREAD_METHODS:
            return await super()._execute(fn, *args, **kwargs)
        if not args or not isinstance(args[0], str):
            return fn(*args, **kwargs)  # cursor(), fetch*, commit, rollback, cursor.close
        head = args[0].lstrip()[:16].upper()
        if head.startswith(_TAKES_WRITE_LOCK):
            taken, result = self._take_write_lock_now(conn, fn, args, kwargs)
            if taken:
                return result
            return await super()._execute(fn, *args, **kwargs)
        if conn.in_transaction or head.startswith(_INLINE_OUTSIDE_TRANSACTION):
            return fn(*args, **kwargs)
        return await super()._execute(fn, *args, **kwargs)

    def begin_now(self, immediate: bool) -> bool:
        """Open a transaction straight on the sqlite3 connection, skipping SQLAlchemy's statement
        machinery (as costly as the query on a one-query read). False, with nothing done, when
        ``BEGIN IMMEDIATE`` would have to wait for the write lock: the caller then issues it the
        ordinary way, and it waits on the connection's thread."""
        conn = self._connection
        if conn is None:
            return False
        if not immediate:
            conn.execute("BEGIN")
            return True
        taken, _ = self._take_write_lock_now(conn, conn.execute, ("BEGIN IMMEDIATE",), {})
        return bool(taken)

    def _take_write_lock_now(
        self, conn: sqlite3.Connection, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[bool, Any]:
        """Try the locking BEGIN without waiting; (False, None) when the lock is busy."""
        if self._busy_timeout_ms is None:
            self._busy_timeout_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        conn.execute("PRAGMA busy_timeout=0")
        try:
            return True, fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in _BUSY:
                raise
            return False, None
        finally:
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")


def connect(database: Any, *, iter_chunk_size: int = 64, **kwargs: Any) -> InlineConnection:
    """Like ``aiosqlite.connect``; the sqlite3 connection is used from the loop thread too."""
    kwargs["check_same_thread"] = False

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(database, **kwargs)

    return InlineConnection(connector, iter_chunk_size)


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI for SQLAlchemy's aiosqlite dialect: ``create_async_engine(url, module=dbapi())``."""
    shim = types.ModuleType(_SHIM)
    shim.__dict__.update({k: v for k, v in vars(aiosqlite).items() if k not in vars(shim)})
    shim.connect = connect  # type: ignore[attr-defined]
    shim.Connection = InlineConnection  # type: ignore[attr-defined]
    return AsyncAdapt_aiosqlite_dbapi(shim, sqlite3)


def runs_inline(engine: Any) -> bool:
    """True when ``engine`` (sync or async) talks to SQLite through this driver."""
    driver = getattr(getattr(engine.dialect, "dbapi", None), "aiosqlite", None)
    return getattr(driver, "__name__", None) == _SHIM


def begin_now(driver_connection: Any, immediate: bool) -> bool:
    """``InlineConnection.begin_now`` for a pooled connection; False for other drivers."""
    if isinstance(driver_connection, InlineConnection):
        return driver_connection.begin_now(immediate)
    return False


class _PerThreadConnection:
    """A plain sqlite3 connection on the engine's SQLite file, one per thread."""

    pragmas: tuple[str, ...] = ()

    def __init__(self, database: str) -> None:
        self.database = database
        self._local = threading.local()

    @classmethod
    def for_engine(cls, async_engine: Any) -> Any:
        """One on the engine's SQLite file; None for in-memory or unusual URLs."""
        url = async_engine.url
        if not runs_inline(async_engine) or url.query or url.database in (None, "", ":memory:"):
            return None
        return cls(url.database)

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.database, timeout=30, isolation_level=None)
            for pragma in self.pragmas:
                conn.execute(pragma)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class QueryOnlyReader(_PerThreadConnection):
    """Connections that can only read (``PRAGMA query_only``), for single indexed lookups on
    hot paths, run on the event loop thread. A read in WAL mode never waits for a lock and such
    a lookup takes microseconds; going through SQLAlchemy's async engine instead (session,
    greenlets, adapter, result and ORM machinery) cost several times the signature check it
    follows."""

    pragmas = ("PRAGMA query_only=ON",)


class InlineWriter(_PerThreadConnection):
    """Connections for short write transactions of a few statements on hot paths, run on the
    event loop thread. ``begin()`` takes the write lock only if it is free (busy timeout 0):
    the event loop never waits for it. The statements then hold the lock, and committing in WAL
    mode appends to the log (a PASSIVE auto-checkpoint may follow, which waits for no one)."""

    pragmas = (
        "PRAGMA busy_timeout=0",
        "PRAGMA foreign_keys=ON",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA wal_autocheckpoint=0",  # see Checkpointer
    )

    def begin(self) -> sqlite3.Connection | None:
        """The connection inside ``BEGIN IMMEDIATE``, or None when another writer holds the lock."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) in _BUSY:
                return None
            raise
        return conn


class WriteBlockSuspended(RuntimeError):
    """An inline write block (``Database.write_now`` on SQLite) awaited something that suspended
    while it held the write lock. Meanwhile every other inline write found the lock taken and
    queued on a thread, and under load requests ran out of time (503). The transaction was rolled
    back. A programming error: move the await out of the block (hash, call out, sleep before
    ``write_now``), or use ``Database.write()``."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"an inline SQLite write block let the event loop run other work: {detail}")


class LoopRanCheck:
    """Tells whether the event loop ran anything else since this was made, i.e. whether the
    current task suspended: it schedules a no-op callback, which the loop can run only once the
    task gives it control and, callbacks running in the order they were scheduled, before the
    task resumes. About a microsecond (one ``call_soon`` and one ``cancel``), so it is always on.
    Awaiting a coroutine that returns without suspending does not count."""

    __slots__ = ("_handle", "ran")

    def __init__(self) -> None:
        self.ran = False
        self._handle = asyncio.get_running_loop().call_soon(self._mark)

    def _mark(self) -> None:
        self.ran = True

    def check(self) -> None:
        """Raises WriteBlockSuspended if the loop ran other work."""
        if self.ran:
            raise WriteBlockSuspended("refused the next statement")

    def close(self) -> None:
        """Drop the callback (it has run, or it never will)."""
        self._handle.cancel()


class Checkpointer:
    """Copies the WAL back into the database file from a thread of its own, every ``interval``
    seconds (PASSIVE: it waits for no one and no one waits for it).

    SQLite's default is to checkpoint inside whichever COMMIT pushes the WAL past 1000 pages,
    and commits now run on the event loop: a refresh paid about as much for its share of those
    checkpoints as for its own statements, and the unlucky commit stalled the loop for up to
    tens of milliseconds (two fsyncs). Connections of an engine that has a Checkpointer run with
    ``wal_autocheckpoint=0``."""

    def __init__(self, database: str, interval: float = 0.5) -> None:
        self.database = database
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    @classmethod
    def for_engine(cls, async_engine: Any) -> Checkpointer | None:
        url = async_engine.url
        if not runs_inline(async_engine) or url.query or url.database in (None, "", ":memory:"):
            return None
        return cls(url.database)

    def _run(self) -> None:
        conn = sqlite3.connect(self.database, timeout=30, isolation_level=None)
        try:
            while not self._stop.wait(self.interval):
                self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            conn.close()

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed: %s", exc)

    def stop(self) -> None:
        """Checkpoint once more and end the thread."""
        self._stop.set()
        self._thread.join(timeout=10)


class PreparedStatement:
    """A Core statement compiled once for SQLite, run on a plain sqlite3 connection with
    SQLAlchemy's own conversions of parameters and results, so the SQL and the column types
    still come from the models. sqlite3 errors are raised as SQLAlchemy's DBAPIError
    subclasses, as the engine would."""

    _dialect = SQLiteDialect_pysqlite()

    def __init__(self, statement: Executable) -> None:
        # Typed wider than they are: a Core statement (a ClauseElement) compiles to an SQLCompiler.
        compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=self._dialect))
        self.sql = str(compiled)
        self._params = [
            (name, compiled.binds[name].type._cached_bind_processor(self._dialect))
            for name in compiled.positiontup or ()
        ]
        # Literal values in the statement (``x > 0``) become bind parameters with a value.
        self._fixed = {
            name: bind.effective_value
            for name, bind in compiled.binds.items()
            if not bind.required and name in (compiled.positiontup or ())
        }
        writes = compiled.isinsert or compiled.isupdate or compiled.isdelete
        # A write's columns are those of its RETURNING clause (none without one).
        columns = (
            cast(Any, statement).exported_columns if writes else cast(SelectBase, statement).selected_columns
        )
        self._columns = [
            (cast(str, column.key), column.type._cached_result_processor(self._dialect, None))
            for column in columns
        ]

    def _execute(self, conn: sqlite3.Connection, params: dict[str, Any]) -> sqlite3.Cursor:
        if self._fixed:
            params = {**self._fixed, **params}
        args = [convert(params[name]) if convert else params[name] for name, convert in self._params]
        try:
            return conn.execute(self.sql, args)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(self.sql, args, exc, sqlite3.Error) from exc

    def first(self, conn: sqlite3.Connection, **params: Any) -> dict[str, Any] | None:
        """The first row as {column key: value}, or None."""
        row = self._execute(conn, params).fetchone()
        if row is None:
            return None
        return {
            key: convert(value) if convert else value
            for (key, convert), value in zip(self._columns, row, strict=True)
        }

    def all(self, conn: sqlite3.Connection, **params: Any) -> list[tuple[Any, ...]]:
        """Every row, as tuples in the order of the selected columns."""
        rows = self._execute(conn, params).fetchall()
        converters = [convert for _, convert in self._columns]
        if not any(converters):
            return rows
        return [
            tuple(
                convert(value) if convert else value for convert, value in zip(converters, row, strict=True)
            )
            for row in rows
        ]

    def mappings(self, conn: sqlite3.Connection, **params: Any) -> list[dict[str, Any]]:
        """Every row as {column key: value} (of a SELECT, or of a write's RETURNING)."""
        keys = [key for key, _ in self._columns]
        return [dict(zip(keys, row, strict=True)) for row in self.all(conn, **params)]

    def run(self, conn: sqlite3.Connection, **params: Any) -> int:
        """Execute an INSERT, UPDATE or DELETE; the number of rows it touched."""
        return self._execute(conn, params).rowcount


@functools.cache
def prepared(statement: Executable) -> PreparedStatement:
    """``statement`` compiled for SQLite, once (statements are module-level constants)."""
    return PreparedStatement(statement)


def detached(entity: type[DeclarativeBase], values: dict[str, Any]) -> Any:
    """An instance of a mapped class from a row of its table's columns, in the state a query
    in a closed session leaves it (detached, attributes loaded), without the cost of the
    constructor's attribute events.

    When ``values`` holds every column of a class mapped to columns only (``User``), nothing is
    left unloaded, and the instance only needs its identity key
    (``Mapper.identity_key_from_primary_key``): what ``make_transient_to_detached`` would
    do besides comes to nothing there, and it was a tenth of the session check's Python time.
    Otherwise ``make_transient_to_detached`` marks what is missing as unloaded."""
    attribute, primary_key, columns_only = _mapping_of(entity)
    mapper = entity.__mapper__
    instance = mapper.class_manager.new_instance()
    instance.__dict__.update({attribute[key]: value for key, value in values.items()})
    if columns_only and len(values) == len(attribute):
        instance_state(instance).key = mapper.identity_key_from_primary_key(
            tuple(values[key] for key in primary_key)
        )
    else:
        make_transient_to_detached(instance)
    return instance


@functools.cache
def _mapping_of(entity: type[DeclarativeBase]) -> tuple[dict[str, str], tuple[str, ...], bool]:
    """For ``entity``'s table: column key -> mapped attribute name, the primary key's column
    keys, and whether every mapped attribute is one of those columns (no relationships)."""
    mapper = entity.__mapper__
    attribute = {
        column.key: mapper.get_property_by_column(column).key for column in mapper.local_table.columns
    }
    primary_key = tuple(str(column.key) for column in mapper.primary_key)
    columns_only = {prop.key for prop in mapper.attrs} == set(attribute.values())
    return attribute, primary_key, columns_only
