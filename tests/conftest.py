"""Shared fixtures. Real components only: each test gets its own data dir and database, the
app runs with its lifespan (migrations, mail worker), and each test talks to it from its own
client address so rate limits never leak between tests.

A test's database is a copy of one migrated once per session (tests/support/databases.py); the
app's start-up migration then finds it at head. Tests marked ``fresh_database`` start from an
empty one and so run every migration."""

from __future__ import annotations

import compileall
import itertools
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sproutgate.app import create_app  # noqa: E402
from sproutgate.config import Settings  # noqa: E402
from sproutgate.domain.clock import OffsetClock  # noqa: E402
from sproutgate.services import build_services  # noqa: E402
from support.databases import (  # noqa: E402
    SQLITE_FILE,
    copy_sqlite_database,
    migrate_postgres_template,
    migrate_sqlite_template,
)
from support.harness import AppHarness, bearer, next_ip, signup  # noqa: E402, F401 - re-exported
from support.servers import (  # noqa: E402
    PostgresServer,
    RedisServer,
    SmtpServer,
    memory_scratch_root,
)
from support.suite_order import LONG_FIRST  # noqa: E402

# Cheap argon2 for speed; tests that are about hashing build their own hasher.
CHEAP_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
# The same for the processes the tests start (set in the controlling process, so inherited by
# pytest-xdist's workers and everything they start; a test's own value or None still wins).
CHEAP_ARGON2_ENV = {f"SPROUTGATE_{name.upper()}": str(value) for name, value in CHEAP_ARGON2.items()}

_db_counter = itertools.count(1)

TEST_BACKEND = os.environ.get("SPROUTGATE_TEST_DB", "sqlite")  # sqlite | postgres


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before any test runs (in the controlling process, so that pytest-xdist's workers and every
    process a test starts inherit it): the tests' temporary directories go to memory, and the
    application's bytecode is compiled once. See docs/decisions/parallel-tests.md."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    # pytest-xdist (3.x) hands out whole files ordered by how many tests each holds unless told
    # not to, which put the longest files (a few long tests each) last; keep our order instead
    # (pytest_collection_modifyitems below). Only the controlling process schedules.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    # Every `sproutgate` process and command the tests start hashes at the cheap cost too, unless
    # its test says otherwise: at the default cost each start (the hasher's dummy hash) and each
    # sign-in cost some 50 ms of CPU that no such test is about.
    for name, value in CHEAP_ARGON2_ENV.items():
        os.environ.setdefault(name, value)
    # tmp_path holds every test's data dir (SQLite files, keys written with fsync, server logs).
    # On a disk other processes keep busy an fsync can stall a worker for a tenth of a second;
    # in memory (/dev/shm, when it has room, as for the PostgreSQL cluster) it does not.
    # pytest's own numbering and cleanup of old runs still apply under that root.
    scratch = memory_scratch_root()
    if scratch and not os.environ.get("PYTEST_DEBUG_TEMPROOT") and config.option.basetemp is None:
        os.environ["PYTEST_DEBUG_TEMPROOT"] = scratch
    # Where bytecode writing is off (PYTHONDONTWRITEBYTECODE), each `sproutgate` process the
    # tests start, and each app's start-up migration check (Alembic loads the migration files),
    # would compile the sources again; compiled once here, they are read from __pycache__.
    # Where writing is on, Python has done this already and the check costs a few milliseconds.
    import sproutgate

    compileall.compile_dir(Path(sproutgate.__file__).parent, quiet=2, workers=1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    # In memory: the tests create and drop a database each (see PostgresServer).
    with PostgresServer(in_memory=True) as pg:
        yield pg


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session; each test's data dir gets a copy."""
    return migrate_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """A PostgreSQL database migrated to head once per session; each test gets a copy."""
    return migrate_postgres_template(postgres_server, "migrated_template")


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


# The core subset that every `make test` also runs on PostgreSQL: the modules that exercise most
# SQL (sign-up, sessions, reset, search, admin). Everything else runs on SQLite unless
# SPROUTGATE_TEST_DB=postgres (`make test-postgres` runs the whole suite on PostgreSQL).
BOTH_ENGINES_MODULES = {
    "test_smoke.py",
    "v1/test_v1_signup.py",
    "v1/test_v1_sessions.py",
    "v1/test_v1_password_reset.py",
    "v1/test_v1_users.py",
    "gate/test_gate_admin.py",
    "gate/test_gate_auth.py",
    "gate/test_gate_cross_face.py",
}


# Parameters under which a test never touches its own database, so that running it once per
# engine would run the same test twice. ("face", "server"): the gate tests' real server process
# keeps its own SQLite database (tests/gate/gate_support.py).
ENGINE_FREE_PARAMS = {("face", "server")}


def _runs_on_both_engines(metafunc: pytest.Metafunc) -> bool:
    if metafunc.definition.get_closest_marker("engine_independent"):
        return False
    if metafunc.definition.get_closest_marker("both_engines"):
        return True
    module = Path(metafunc.definition.fspath).resolve()
    try:
        return module.relative_to(Path(__file__).parent).as_posix() in BOTH_ENGINES_MODULES
    except ValueError:
        return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_engines`` (on the test, its class or as ``pytestmark`` of its module),
    and those in BOTH_ENGINES_MODULES, run twice in the same session, on SQLite and on
    PostgreSQL, whatever SPROUTGATE_TEST_DB says. Tests marked ``engine_independent`` (what they
    check is decided before any SQL runs, e.g. a request refused by validation) run once, on
    SPROUTGATE_TEST_DB's engine, even in such a module."""
    if "db_engine" in metafunc.fixturenames and _runs_on_both_engines(metafunc):
        metafunc.parametrize(
            "db_engine",
            ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
            indirect=True,
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the PostgreSQL run of a both-engines test under an ENGINE_FREE_PARAMS parameter:
    it would repeat its SQLite run exactly."""
    keep: list[pytest.Item] = []
    repeats: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        engine_free = any(params.get(name) == value for name, value in ENGINE_FREE_PARAMS)
        (repeats if engine_free and params.get("db_engine") == "postgres" else keep).append(item)
    if repeats:
        config.hook.pytest_deselected(items=repeats)
    # The files that take longest go first, then the folders whose files take long (server
    # processes, Chromium, Apache), so that `make test`'s workers (pytest-xdist hands out whole
    # files in this order: see pytest_configure) do not end on one long file while the others
    # idle. A stable sort: the order within a file, and of the files within a rank, stays.
    keep.sort(key=_long_first_rank)
    items[:] = keep


def _long_first_rank(item: pytest.Item) -> int:
    path = Path(str(item.path))
    try:
        relative = path.relative_to(Path(__file__).parent).as_posix()
    except ValueError:
        return len(LONG_FIRST)
    return LONG_FIRST.get(relative, LONG_FIRST.get(path.parent.name, len(LONG_FIRST)))


@pytest.fixture
def db_engine(request: pytest.FixtureRequest) -> str:
    """The engine this test runs on: SPROUTGATE_TEST_DB, or each in turn for ``both_engines`` tests."""
    return getattr(request, "param", TEST_BACKEND)


def _new_postgres_database(
    request: pytest.FixtureRequest, template: str | None
) -> tuple[PostgresServer, str]:
    pg: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"t{os.getpid()}_{next(_db_counter)}"
    pg.create_database(name, template=template)
    return pg, name


def _drop_postgres_database(pg: PostgresServer, name: str) -> None:
    if pg.is_running:  # a test about outages may have left it stopped
        pg.drop_database(name)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, db_engine: str) -> Iterator[str]:
    """An empty database for tests that start ``sproutgate`` processes on it themselves (they
    migrate it): '' (SQLite in their data dir) or a new PostgreSQL database, dropped after the
    test. In-process apps take make_settings, which gives them a migrated copy."""
    if db_engine != "postgres":
        yield ""
        return
    pg, name = _new_postgres_database(request, template=None)
    yield pg.url(name)
    _drop_postgres_database(pg, name)


@pytest.fixture
def make_settings(
    request: pytest.FixtureRequest, tmp_path: Path, db_engine: str
) -> Iterator[Callable[..., Settings]]:
    """``make_settings(**overrides)``: Settings for the app under test, with the test's own data
    dir and database. The database is made on first use: a copy of the session's migrated
    template (empty for tests marked ``fresh_database``), the same for every call of the test;
    on SQLite, a copy in whichever data dir the settings name, unless one is there already.
    A ``database_url`` among the overrides names another database instead. A PostgreSQL
    database is dropped after the test (after its apps have stopped: see make_harness)."""
    fresh = request.node.get_closest_marker("fresh_database") is not None
    postgres_db: list[tuple[PostgresServer, str]] = []  # made on first use, then reused

    def test_database_url(data_dir: Path) -> str:
        if db_engine == "postgres":
            if not postgres_db:
                template = None if fresh else request.getfixturevalue("postgres_template")
                postgres_db.append(_new_postgres_database(request, template))
            pg, name = postgres_db[0]
            return pg.url(name)
        if not fresh and not (data_dir / SQLITE_FILE).exists():
            copy_sqlite_database(request.getfixturevalue("sqlite_template"), data_dir)
        return ""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "trusted_proxies": ["127.0.0.1"],
            "public_url": "http://testserver",
            "mail_poll_seconds": 0.2,
            # A loaded CI machine (several workers, each with its own PostgreSQL) can take more
            # than the production 3 s to accept a connection; outage tests set their own.
            "db_connect_timeout_seconds": 15.0,
            **CHEAP_ARGON2,
        }
        values.update(overrides)
        if "database_url" not in overrides:
            values["database_url"] = test_database_url(Path(values["data_dir"]))
        return Settings(**values)

    yield factory
    for pg, name in postgres_db:
        _drop_postgres_database(pg, name)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def make_harness(make_settings: Callable[..., Settings]) -> AsyncIterator[Callable[..., Any]]:
    """``await make_harness(settings)``: the app started with its lifespan, an in-process client
    and the injectable clock; everything started is stopped after the test. It depends on
    make_settings only so that the apps stop before the test's database is dropped."""
    stack: list[Any] = []

    async def factory(settings: Settings) -> AppHarness:
        clock = OffsetClock()
        services = build_services(settings, clock=clock)
        app = create_app(settings, services=services)
        ctx = app.router.lifespan_context(app)
        await ctx.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50000)),
            base_url="http://testserver",
            headers={"X-Forwarded-For": next_ip()},
        )
        stack.append((ctx, client))
        return AppHarness(app, services, client, clock)

    yield factory
    for ctx, client in reversed(stack):
        await client.aclose()
        await ctx.__aexit__(None, None, None)


@pytest.fixture
async def harness(make_harness: Callable[..., Any], settings: Settings) -> AppHarness:
    return await make_harness(settings)


@pytest.fixture
async def client(harness: AppHarness) -> httpx.AsyncClient:
    return harness.client
