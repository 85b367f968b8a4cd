"""Apply Alembic migrations, safely when several processes start at once.

PostgreSQL: a session-level advisory lock serialises the upgrade. SQLite: an exclusive
``fcntl`` lock on a file in the data dir does the same for processes sharing that dir.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from sproutgate.config import Settings
from sproutgate.private_files import loose_modes, open_private, private_dir
from sproutgate.storage.db import make_engine

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_ADVISORY_KEY = 0x5370726F7574  # "Sprout"

log = logging.getLogger(__name__)

# Data dirs whose file modes this process looked at already (``serve`` migrates, then its app
# does again on start): one set of warnings per process.
_LOOKED_AT: set[Path] = set()


def alembic_config() -> Config:
    cfg = Config(str(_PACKAGE_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(_PACKAGE_DIR / "migrations"))
    return cfg


async def upgrade_async(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to ``revision``. First, since every start goes through here (``serve``,
    ``migrate``, ``import-sproutgate``, every other command), make what an older version left
    open to other users in the data dir private, and warn about what stays open
    (``private_files.loose_modes``)."""
    data_dir = settings.data_dir.resolve()
    if data_dir not in _LOOKED_AT:
        _LOOKED_AT.add(data_dir)
        for line in loose_modes(data_dir).warnings():
            log.warning(line)
    engine = make_engine(settings, for_migrations=True)
    try:
        if settings.is_sqlite:
            lock_path = private_dir(settings.data_dir) / ".migrate.lock"
            with os.fdopen(open_private(lock_path), "w") as lock_file:
                await asyncio.to_thread(fcntl.flock, lock_file, fcntl.LOCK_EX)
                try:
                    await _run(engine, revision)
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)
        else:
            await _run(engine, revision, advisory=True)
    finally:
        await engine.dispose()


async def _run(engine, revision: str, advisory: bool = False) -> None:  # type: ignore[no-untyped-def]
    cfg = alembic_config()
    async with engine.connect() as conn:
        if advisory:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_KEY})
            await conn.commit()
        try:
            cfg.attributes["connection"] = conn

            def _upgrade(sync_conn) -> None:  # type: ignore[no-untyped-def]
                cfg.attributes["connection"] = sync_conn
                command.upgrade(cfg, revision)

            await conn.run_sync(lambda sync_conn: _upgrade(sync_conn))
            await conn.commit()
        finally:
            if advisory:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
                await conn.commit()


def upgrade(settings: Settings, revision: str = "head") -> None:
    asyncio.run(upgrade_async(settings, revision))
