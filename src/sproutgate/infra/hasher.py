"""Password hashing: argon2id, off the event loop, with verification of imported legacy hashes.

Hashes run on a queue of their own with one thread per core the process may use (divided by
the argon2 lanes per hash), so that they queue instead of sharing a core: each argon2id hash
works through 19 MiB of memory, and two hashes time-sliced on one core evict each other's
working set from the cache (docs/decisions/argon2-hashes-one-per-core.md).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import os
import queue
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHasher(Protocol):
    """Hashes and checks passwords. Implementations never block the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True when ``password`` matches; False for a mismatch or an unreadable hash."""
        ...

    def needs_rehash(self, stored_hash: str) -> bool: ...

    async def burn(self, password: str) -> None:
        """Spend the time of one verification, for unknown users (no timing oracle)."""
        ...


_T = TypeVar("_T")

_CGROUP = Path("/sys/fs/cgroup")


def usable_cores() -> int:
    """The number of CPU cores this process may run on: its affinity mask
    (``os.sched_getaffinity``, e.g. set by ``taskset`` or a cpuset), capped by a cgroup CPU
    quota rounded up (a container's ``--cpus``). At least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def _cgroup_cpu_quota() -> float | None:
    """CPUs' worth of time per period allowed by the cgroup (v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us``/``cpu.cfs_period_us``), None when unlimited or unreadable."""
    try:
        quota, period = (_CGROUP / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((_CGROUP / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((_CGROUP / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def hashing_threads(parallelism: int = 1, processes: int = 1) -> int:
    """How many argon2 hashes one of ``processes`` processes sharing this machine's usable cores
    may run at once without two hashes sharing a core: the cores divided by the lanes (threads)
    each hash uses and by the processes, at least 1."""
    return max(1, usable_cores() // (max(1, parallelism) * max(1, processes)))


class HashQueue:
    """A FIFO of blocking calls served by ``threads`` daemon threads (named ``argon2_N``,
    started on first use): the lean counterpart of ``loop.run_in_executor`` for the one kind
    of work a sign-in waits on.

    ``ThreadPoolExecutor`` wraps every call in a ``concurrent.futures.Future`` chained to an
    asyncio future and re-checks its idle threads under a lock on every submit; measured on a
    server pinned to one core, that bookkeeping was a tenth of a sign-in's event-loop time
    (docs/benchmarks.md). Here a call is one ``SimpleQueue.put`` on the way in and one
    ``call_soon_threadsafe`` on the way out. A call whose awaiting task was cancelled while
    it waited in line (a client that went away) is skipped without running.

    Results are handed to the event loop in groups of up to ``hand_over`` while more calls
    wait in line, and at once when none does. Every hand-over wakes the event loop, which
    then runs its share of a sign-in with the caches just emptied by a 19 MiB hash: on a
    server pinned to one core that cold share was twice the warm one, and handing results
    over in pairs under a backlog cut the loop's CPU per sign-in by a fifth
    (docs/decisions/argon2-hashes-one-per-core.md). The price is latency only when sign-ins
    already queue: the first of a pair waits for one more hash (about 20 ms) on top of its
    time in line. Without a backlog nothing waits."""

    def __init__(self, threads: int, hand_over: int = 2) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        if hand_over < 1:
            raise ValueError("hand_over must be at least 1")
        self.threads = threads
        self.hand_over = hand_over
        self._items: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._started = False
        self._start_lock = threading.Lock()

    def _start(self) -> None:
        with self._start_lock:
            if self._started:
                return
            for i in range(self.threads):
                threading.Thread(target=self._serve, name=f"argon2_{i}", daemon=True).start()
            self._started = True

    def close(self) -> None:
        """Let the threads end once the calls already in line have run (one stop mark each, in
        line behind them); nothing when none was started. A later ``run`` starts new threads.
        Called when the app or a command ends (``Services.aclose``), so that a process that
        builds many apps (the test suite) does not keep their idle threads."""
        with self._start_lock:
            if not self._started:
                return
            for _ in range(self.threads):
                self._items.put(None)
            self._started = False

    def _serve(self) -> None:
        items, hand_over = self._items, self.hand_over
        held: list[tuple[asyncio.AbstractEventLoop, Callable[..., None], Any, Any]] = []
        while True:
            if held:
                # Never block while holding results: a line that emptied hands them over now.
                try:
                    item = items.get_nowait()
                except queue.Empty:
                    _hand_over(held)
                    held = []
                    item = items.get()
            else:
                item = items.get()
            if item is None:  # close(): what is held goes out, and the thread ends
                if held:
                    _hand_over(held)
                return
            fn, args, future, loop = item
            if future.cancelled():
                continue
            try:
                held.append((loop, _set_result, future, fn(*args)))
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                held.append((loop, _set_exception, future, exc))
            if len(held) >= hand_over:
                _hand_over(held)
                held = []

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` on one of the threads, in arrival order; its result or exception."""
        if not self._started:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._items.put((fn, args, future, loop))
        return await future


def _hand_over(held: list[tuple[asyncio.AbstractEventLoop, Callable[..., None], Any, Any]]) -> None:
    """Settle ``held`` outcomes (loop, setter, future, value) with one wake-up per event loop."""
    if len(held) == 1:
        _deliver(*held[0])
        return
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Callable[..., None], Any, Any]]] = {}
    for loop, setter, future, value in held:
        by_loop.setdefault(loop, []).append((setter, future, value))
    for loop, outcomes in by_loop.items():
        _deliver(loop, _settle, outcomes)


def _settle(outcomes: list[tuple[Callable[..., None], Any, Any]]) -> None:
    for setter, future, value in outcomes:
        setter(future, value)


def _deliver(loop: asyncio.AbstractEventLoop, setter: Callable[..., None], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(setter, *args)
    except RuntimeError:  # the loop closed while the call ran: nobody is waiting
        pass


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class Argon2Hasher:
    """argon2id with configurable cost. Also verifies bcrypt and werkzeug (pbkdf2/scrypt) hashes
    brought in by ``sproutgate import-sproutgate``; those report ``needs_rehash`` so that the
    next successful login upgrades them to argon2id.

    Every hash, verify and burn runs on this hasher's own ``HashQueue`` of ``threads`` threads
    (default ``hashing_threads(parallelism)``: one per usable core), never on the event loop's
    default pool: at most ``threads`` hashes run at once and the rest wait their turn in FIFO
    order, and other blocking work (``asyncio.to_thread``) never queues behind hashes. A call
    cancelled while it waits (a client that went away) drops out of the queue without hashing."""

    def __init__(
        self, time_cost: int = 2, memory_kib: int = 19456, parallelism: int = 1, threads: int | None = None
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1")
        self._ph = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._dummy = self._ph.hash("sproutgate-dummy-password")
        self.threads = threads or hashing_threads(parallelism)
        self._queue = HashQueue(self.threads)

    async def _run(self, fn: Callable[..., _T], *args: str) -> _T:
        return await self._queue.run(fn, *args)

    async def hash(self, password: str) -> str:
        return await self._run(self._ph.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        return await self._run(self._verify_sync, stored_hash, password)

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        if stored_hash.startswith("$argon2"):
            try:
                return self._ph.verify(stored_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
        if stored_hash.startswith(("$2a$", "$2b$", "$2y$")):
            import bcrypt

            try:
                return bcrypt.checkpw(password.encode()[:72], stored_hash.encode())
            except ValueError:
                return False
        if stored_hash.startswith(("pbkdf2:", "scrypt:")):
            from werkzeug.security import check_password_hash

            try:
                return check_password_hash(stored_hash, password)
            except (ValueError, TypeError):
                return False
        # Unknown format: still spend the time, never match.
        self._burn_sync(password)
        return False

    def _burn_sync(self, password: str) -> None:
        try:
            self._ph.verify(self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            pass

    async def burn(self, password: str) -> None:
        await self._run(self._burn_sync, password)

    def close(self) -> None:
        """End the hash threads once the calls in line have run (``HashQueue.close``)."""
        self._queue.close()

    def needs_rehash(self, stored_hash: str) -> bool:
        if not stored_hash.startswith("$argon2id"):
            return True
        try:
            return self._ph.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True


# The stored formats Argon2Hasher verifies, as they look on disk (used to vet imported records).
_SCHEMES = (
    ("argon2", re.compile(r"^\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")),
    ("bcrypt", re.compile(r"^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$")),
    ("pbkdf2", re.compile(r"^pbkdf2:sha(1|224|256|384|512)(:\d+)?\$[^$]+\$[0-9a-f]+$")),
    ("scrypt", re.compile(r"^scrypt(:\d+:\d+:\d+)?\$[^$]+\$[0-9a-f]+$")),
)


def hash_scheme(stored_hash: str) -> str | None:
    """ "argon2", "bcrypt", "pbkdf2" or "scrypt" for a well-formed hash this module verifies,
    None for anything else (including plain text)."""
    for name, pattern in _SCHEMES:
        if pattern.match(stored_hash):
            return name
    return None


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
