"""A lean HTTP/1.1 keep-alive load generator on asyncio (uvloop when installed).

httpx spends a few hundred microseconds of CPU per request; on a machine where the load
generator has one core to itself that would cap the offered load below what the server can
take, and every ratio would drift towards 1. This client writes pre-built request bytes and
parses only the status line, ``Content-Length`` and chunked bodies, so it stays far from
being the bottleneck. It talks to loopback only and every run is bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

LOOPBACK = "127.0.0.1"


def request_bytes(
    method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None
) -> bytes:
    """One HTTP/1.1 request; ``body`` is sent as JSON when not None."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


class Connection:
    """One keep-alive connection; ``exchange`` sends a request and reads its response."""

    def __init__(self, port: int, host: str = LOOPBACK) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            await self._open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        chunked = close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            body = await self._read_chunked()
        else:
            body = await self._reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, body

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._reader = self._writer = None


class Client(Protocol):
    """One simulated client: what to send next, and whether an answer counts as a success."""

    def next_request(self) -> bytes: ...

    def on_response(self, status: int, body: bytes) -> bool: ...


@dataclass
class FixedClient:
    """Sends the same request again and again; success is ``expect``."""

    raw: bytes
    expect: int = 200

    def next_request(self) -> bytes:
        return self.raw

    def on_response(self, status: int, body: bytes) -> bool:
        return status == self.expect


@dataclass
class LoadResult:
    duration: float
    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    # With a probe returning (server CPU seconds, busy seconds of the server's cores): how much
    # of each the window used.
    cpu_seconds: float = 0.0
    busy_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.duration if self.duration else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies, p)

    @classmethod
    def merged(cls, parts: Sequence[LoadResult]) -> LoadResult:
        """One result for several windows of the same measurement."""
        out = cls(sum(p.duration for p in parts))
        for p in parts:
            out.ok += p.ok
            out.errors += p.errors
            for status, n in p.statuses.items():
                out.statuses[status] = out.statuses.get(status, 0) + n
            out.latencies += p.latencies
            out.cpu_seconds += p.cpu_seconds
            out.busy_seconds += p.busy_seconds
        return out


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def run_load(
    port: int,
    clients: Sequence[Client],
    duration: float,
    warmup: float = 2.0,
    probe: Callable[[], tuple[float, float]] | None = None,
) -> LoadResult:
    """Drive every client on its own connection, closed loop, for ``warmup + duration`` seconds.

    Every request that finishes inside the measured window (after the warm-up) counts, wherever
    it started: in a closed loop that is the steady-state throughput. (Counting only those that
    also started inside would drop the ``len(clients)`` requests in flight when the window
    opens, a bias that grows with the clients and shrinks with the window: 16 of about 175
    logins in a 5 s window.) The rate is successes per second of that window. ``probe`` (e.g.
    the server's CPU time) is called when the window opens and when it closes."""
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    end = start + duration
    result = LoadResult(duration)
    probes: list[tuple[float, float]] = []
    if probe is not None:
        loop.call_at(start, lambda: probes.append(probe()))
        loop.call_at(end, lambda: probes.append(probe()))

    async def drive(client: Client) -> None:
        conn = Connection(port)
        try:
            while loop.time() < end:
                raw = client.next_request()
                t0 = time.perf_counter()
                try:
                    status, body = await conn.exchange(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    await conn.close()
                    status, body = 0, b""
                ok = client.on_response(status, body)
                finished = loop.time()
                if start <= finished <= end:
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    if ok:
                        result.ok += 1
                        result.latencies.append(time.perf_counter() - t0)
                    else:
                        result.errors += 1
                if status == 0:
                    await asyncio.sleep(0.05)
        finally:
            await conn.close()

    await asyncio.gather(*(drive(c) for c in clients))
    if len(probes) == 2:
        result.cpu_seconds = probes[1][0] - probes[0][0]
        result.busy_seconds = probes[1][1] - probes[0][1]
    return result


async def run_sequence(
    port: int, requests: Sequence[bytes], check: Callable[[int, bytes], bool] | None = None
) -> tuple[list[float], int]:
    """Send ``requests`` one after another on one connection; returns latencies and failures."""
    conn = Connection(port)
    latencies: list[float] = []
    failures = 0
    try:
        for raw in requests:
            t0 = time.perf_counter()
            status, body = await conn.exchange(raw)
            latencies.append(time.perf_counter() - t0)
            if (check(status, body) if check else status == 200) is False:
                failures += 1
    finally:
        await conn.close()
    return latencies, failures


def install_uvloop() -> str:
    """Use uvloop for the load generator when it is installed (it comes with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
