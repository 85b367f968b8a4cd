"""The services as the ``sproutgate`` commands use them: built after migrating (outside any
event loop), then one coroutine run with them and the database released. Shared by ``cli`` and
``cli_ops``, which so never import each other."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from sproutgate.config import Settings

if TYPE_CHECKING:  # built on first use: commands that need no services start faster
    from sproutgate.services import Services

T = TypeVar("T")


def open_services() -> Services:
    """Migrate the database, then build the services. If this generated the admin token, show
    it now on stderr, as ``serve`` would have."""
    from sproutgate.services import build_services
    from sproutgate.storage.migrate import upgrade

    settings = Settings.load()
    upgrade(settings)
    services = build_services(settings)
    if services.admin_guard.generated:
        typer.echo(
            f"SproutGate admin token (saved to {settings.config_dir / 'admin.json'}, shown once): "
            f"{services.admin_guard.token}",
            err=True,
        )
        services.admin_guard.generated = False
    return services


def run_with_services(work: Callable[[Services], Awaitable[T]]) -> T:
    """``work(services)`` on a fresh event loop, the services built first (``open_services``
    migrates with an event loop of its own) and closed after."""
    services = open_services()

    async def go() -> T:
        try:
            return await work(services)
        finally:
            await services.aclose()

    return asyncio.run(go())
