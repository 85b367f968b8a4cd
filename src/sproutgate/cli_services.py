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
    """Migrate the database, then build the services. If this generated the admin token, say
    on stderr where it is, as ``serve`` would have (never the token)."""
    from sproutgate.services import build_services
    from sproutgate.storage.migrate import upgrade

    settings = Settings.load()
    upgrade(settings)
    services = build_services(settings)
    if services.admin_guard.generated:
        # Where the generated token is and how to read it, never the token itself.
        from sproutgate.infra.admin_token import generated_notice

        typer.echo(generated_notice(settings), err=True)
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
