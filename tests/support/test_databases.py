"""Self-test of tests/support/databases.py: a test's copy of the session's migrated database is
what the app's own start-up migration builds, and the start-up leaves such a copy alone."""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from sproutgate.config import Settings
from sproutgate.storage.migrate import alembic_config

from .databases import SQLITE_FILE, copy_sqlite_database


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def _sqlite_schema(path: Path) -> tuple[list[tuple[str, ...]], list[str]]:
    conn = sqlite3.connect(path)
    try:
        objects = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        versions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
        return [tuple(r) for r in objects], versions
    finally:
        conn.close()


def _postgres_schema(request: pytest.FixtureRequest, database: str) -> tuple[str, list[str]]:
    pg = request.getfixturevalue("postgres_server")
    versions = pg.psql("SELECT version_num FROM alembic_version", database=database).split()
    return pg.dump_schema(database), versions


def _schema_of(request: pytest.FixtureRequest, settings: Settings) -> object:
    if settings.is_sqlite:
        return _sqlite_schema(settings.data_dir / SQLITE_FILE)
    return _postgres_schema(request, urllib.parse.urlsplit(settings.database_url).path.lstrip("/"))


def _template_schema(request: pytest.FixtureRequest, db_engine: str) -> object:
    if db_engine == "sqlite":
        return _sqlite_schema(request.getfixturevalue("sqlite_template"))
    # The template takes no connections: read a copy of it.
    pg = request.getfixturevalue("postgres_server")
    pg.create_database("template_copy", template=request.getfixturevalue("postgres_template"))
    try:
        return _postgres_schema(request, "template_copy")
    finally:
        pg.drop_database("template_copy")


def test_sqlite_copies_start_at_head_and_are_independent(sqlite_template: Path, tmp_path: Path):
    assert not sqlite_template.with_name(SQLITE_FILE + "-wal").exists()
    a = copy_sqlite_database(sqlite_template, tmp_path / "a")
    b = copy_sqlite_database(sqlite_template, tmp_path / "b")
    with sqlite3.connect(a) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("CREATE TABLE only_in_a (x INTEGER)")
    conn.close()
    for path in (a, b, sqlite_template):
        objects, versions = _sqlite_schema(path)
        assert versions == [_head()]
        assert ("only_in_a" in {o[1] for o in objects}) is (path == a)


def test_copy_refuses_a_data_dir_that_has_a_database(sqlite_template: Path, tmp_path: Path):
    copy_sqlite_database(sqlite_template, tmp_path)
    with pytest.raises(FileExistsError):
        copy_sqlite_database(sqlite_template, tmp_path)


@pytest.mark.both_engines
@pytest.mark.fresh_database
async def test_start_up_on_an_empty_database_builds_the_template_schema(
    request, db_engine, make_harness, make_settings
):
    settings = make_settings()
    if db_engine == "sqlite":
        assert not (settings.data_dir / SQLITE_FILE).exists()
    else:
        database = urllib.parse.urlsplit(settings.database_url).path.lstrip("/")
        tables = request.getfixturevalue("postgres_server").psql(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database=database
        )
        assert tables.strip() == "0"
    await make_harness(settings)  # the lifespan runs every migration
    fresh = _schema_of(request, settings)
    assert fresh[1] == [_head()]
    assert fresh == _template_schema(request, db_engine)


@pytest.mark.both_engines
async def test_start_up_on_a_copy_of_the_template_changes_nothing(request, make_harness, make_settings):
    settings = make_settings()
    before = _schema_of(request, settings)
    assert before[1] == [_head()]
    h = await make_harness(settings)
    assert (await h.client.get("/api/v1/infra/health")).json()["status"] == "healthy"
    assert _schema_of(request, settings) == before
