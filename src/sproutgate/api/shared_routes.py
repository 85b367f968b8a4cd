"""Routers included once per process: every app ``create_app`` builds in a process shares what
FastAPI builds for a router's routes (docs/decisions/shared-route-builds.md).

FastAPI (0.16x) includes a router lazily: ``include_router`` adds one ``_IncludedRouter`` entry,
and the first request that reaches it builds a handler, dependency graph and Pydantic
validators for every route of that router (some 35 ms of CPU for the runtime API, 90 ms for
the pages). A server builds one app, so it pays that once; the test suite builds an app per
test, and paid it some thousand times per run. The built entry depends only on the router and
on the including router's configuration, which ``create_app`` makes the same for every app, and
the handlers read everything per app from the request (``request.app.state``). So the entry the
first app built is appended to later apps as it is.

Feature-detected: with a FastAPI that includes routers another way (eagerly, as before 0.16x),
or a router with start-up or shut-down handlers, this is a plain ``include_router``."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

# id(router) -> (the router, the entry the first app's include_router added for it)
_BUILT: dict[int, tuple[APIRouter, BaseRoute]] = {}


def include_router(app: FastAPI, router: APIRouter) -> None:
    """``app.include_router(router)``, sharing the routes FastAPI builds for ``router`` with every
    other app of this process that includes it the same way (no prefix, tags or dependencies of
    the include's own: ``create_app`` includes every router plainly)."""
    mark_changed: Callable[[], None] | None = getattr(app.router, "_mark_routes_changed", None)
    shareable = mark_changed is not None and not router.on_startup and not router.on_shutdown
    held = _BUILT.get(id(router))
    if mark_changed is not None and shareable and held is not None and held[0] is router:
        app.router.routes.append(held[1])
        mark_changed()
        return
    before = len(app.router.routes)
    app.include_router(router)
    added = app.router.routes[before:]
    if shareable and len(added) == 1 and type(added[0]).__name__ == "_IncludedRouter":
        _BUILT[id(router)] = (router, added[0])
