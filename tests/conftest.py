"""Shared fixtures. Real components only: each test gets its own data dir and database, the
app runs with its lifespan (migrations, mail worker), and each test talks to it from its own
client address so rate limits never leak between tests."""

from __future__ import annotations

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
from support.harness import AppHarness, bearer, next_ip, signup  # noqa: E402, F401 - re-exported
from support.servers import PostgresServer, RedisServer, SmtpServer  # noqa: E402

# Cheap argon2 for speed; tests that are about hashing build their own hasher.
CHEAP_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}

_db_counter = itertools.count(1)

TEST_BACKEND = os.environ.get("SPROUTGATE_TEST_DB", "sqlite")  # sqlite | postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as pg:
        yield pg


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


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


def _runs_on_both_engines(metafunc: pytest.Metafunc) -> bool:
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
    PostgreSQL, whatever SPROUTGATE_TEST_DB says."""
    if "db_engine" in metafunc.fixturenames and _runs_on_both_engines(metafunc):
        metafunc.parametrize(
            "db_engine",
            ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
            indirect=True,
        )


@pytest.fixture
def db_engine(request: pytest.FixtureRequest) -> str:
    """The engine this test runs on: SPROUTGATE_TEST_DB, or each in turn for ``both_engines`` tests."""
    return getattr(request, "param", TEST_BACKEND)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, db_engine: str) -> str:
    """'' (SQLite in the test's data dir) or a fresh PostgreSQL database."""
    if db_engine != "postgres":
        return ""
    pg: PostgresServer = request.getfixturevalue("postgres_server")
    return pg.create_database(f"t{os.getpid()}_{next(_db_counter)}")


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "trusted_proxies": ["127.0.0.1"],
            "public_url": "http://testserver",
            "mail_poll_seconds": 0.2,
            **CHEAP_ARGON2,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
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
