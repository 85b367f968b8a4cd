"""Waiting for a condition instead of sleeping for a fixed time: the wait ends as soon as the
condition holds, and a busy machine gets the whole timeout before the test fails."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(
    predicate: Callable[[], T | Awaitable[T]],
    within: float = 10.0,
    *,
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """Call ``predicate`` (plain or async) every ``interval`` seconds until it returns a truthy
    value, and return that value. Raises AssertionError naming ``what`` and the last value if
    ``within`` seconds pass first (the last try is made once the time is up)."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {within}s (last: {value!r})")
        await asyncio.sleep(interval)


def wait_until_sync(
    predicate: Callable[[], T], within: float = 10.0, *, interval: float = 0.05, what: str = "the condition"
) -> T:
    """``wait_until`` for a plain predicate in code without an event loop (it blocks the thread)."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {within}s (last: {value!r})")
        time.sleep(interval)
