"""Migrated databases for the tests: the schema is built once per session and each test starts
from a copy of it, instead of running every migration again for every test.

SQLite: one file is migrated, its write-ahead log checkpointed into it, and each test gets a
copy of that file as ``<data dir>/sproutgate.db``. PostgreSQL: one database is migrated, marked
as a template that nobody may connect to, and each test gets ``CREATE DATABASE ... TEMPLATE``.

The app still runs its own ``migrate`` step at start-up; on such a copy it finds the schema at
head and changes nothing. Tests about migrating itself (a first start, several processes
starting together) start from an empty database and run the real migrations."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sproutgate.config import Settings
from sproutgate.storage.migrate import upgrade_async

from .servers import PostgresServer

SQLITE_FILE = "sproutgate.db"  # the file name Settings.resolved_database_url gives a data dir

T = TypeVar("T")


def run_in_fresh_loop(make: Callable[[], Coroutine[Any, Any, T]], timeout: float = 120.0) -> T:
    """Run the coroutine ``make()`` on a new event loop in a thread of its own and return its result.

    Works whether or not the caller's thread is running an event loop (fixtures may be set up
    from inside an async test), and leaves the caller's loop alone. Raises what the coroutine
    raises, or TimeoutError after ``timeout`` seconds."""
    result: dict[str, Any] = {}

    def worker() -> None:
        try:
            result["value"] = asyncio.run(make())
        except BaseException as exc:  # handed to the caller below
            result["error"] = exc

    thread = threading.Thread(target=worker, name="sproutgate-test-migrate", daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" in result:
        raise result["error"]
    if "value" not in result:
        raise TimeoutError(f"not done within {timeout}s")
    return result["value"]


def migrate_sqlite_template(directory: Path) -> Path:
    """Migrate ``directory/sproutgate.db`` to head and return its path, ready to be copied.

    The migration leaves the file in WAL mode; here the log is checkpointed into the main file
    and truncated, so the one file holds the whole database (WAL mode itself is kept: it is
    recorded in the file header). Raises RuntimeError if the checkpoint could not complete."""
    settings = Settings(data_dir=directory, database_url="")
    run_in_fresh_loop(lambda: upgrade_async(settings))
    path = directory / SQLITE_FILE
    conn = sqlite3.connect(path)
    try:
        busy, _log_frames, _checkpointed = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    if busy:
        raise RuntimeError(f"could not checkpoint {path}: a connection is still open")
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        raise RuntimeError(f"{wal} still holds {wal.stat().st_size} bytes after the checkpoint")
    assert mode == "wal", mode
    return path


def copy_sqlite_database(template: Path, data_dir: Path) -> Path:
    """Copy the migrated ``template`` to ``data_dir/sproutgate.db`` (creating ``data_dir``).

    Raises FileExistsError if that data dir already has a database."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / SQLITE_FILE
    for stale in (target, target.with_name(target.name + "-wal")):
        if stale.exists():
            raise FileExistsError(stale)
    shutil.copyfile(template, target)
    return target


def migrate_postgres_template(pg: PostgresServer, name: str) -> str:
    """Create database ``name`` on ``pg``, migrate it to head and make it a template that
    accepts no connections (``CREATE DATABASE ... TEMPLATE`` needs it idle). Returns ``name``."""
    url = pg.create_database(name)
    with tempfile.TemporaryDirectory(prefix="sproutgate-template-") as scratch:
        settings = Settings(data_dir=Path(scratch), database_url=url)
        run_in_fresh_loop(lambda: upgrade_async(settings))
    pg.psql(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
    return name
