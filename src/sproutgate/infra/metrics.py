"""Metrics for Prometheus, on ``prometheus-client``: the adapter behind the domain's ports
``domain.metrics.Metrics`` and ``MetricsExposition`` (matched by shape: this module imports
nothing of the domain, label values arrive as strings), the HTTP request metrics
``api.middleware.EdgeMiddleware`` records, the database pool watcher, the rate limiter's
local-mode gauge, and the text exposition ``domain.monitoring`` serves at ``/metrics``.

Two kinds of values:

- counted by each process as things happen (requests, sign-ins, codes, refusals, reuses,
  deliveries; pool use and the rate limiter's local mode as gauges). Under ``serve --workers N``
  (or any process manager that sets ``PROMETHEUS_MULTIPROC_DIR``) prometheus-client keeps them
  in memory-mapped files in that directory, and a scrape, answered by any one worker, adds up
  every worker's files (``MultiProcessCollector``). Counters restart from zero with the server,
  as Prometheus expects; ``infra.metrics_files`` gives every run a fresh directory.
- worked out when scraped, by the process answering (``domain.monitoring``): what the outbox
  holds and whether the database and Redis answer. These are facts about shared services, the same
  from every worker and every instance: aggregate them with ``max``, not ``sum``.

docs/deployment.md lists every metric, a scrape configuration and the alerts worth having.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics import disable_created_metrics
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from sproutgate.infra.metrics_files import MULTIPROC_ENV, pid_alive

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Label values that come from the request are bounded: a method outside these is "OTHER", and
# the route is a template or "unmatched" (api.middleware.route_template), never the raw path:
# one series per scanned URL would grow without end.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"

# Seconds. Most answers take milliseconds; a sign-in hashes a password (tens of ms); an agent
# stream may run for a minute.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]*_(\d+)\.db$")


@dataclass(frozen=True, slots=True)
class ScrapeSnapshot:
    """Values worked out at scrape time by the process answering it: ``database_up``;
    ``redis_up`` (None: no Redis configured); ``outbox``, messages per status (empty when it
    could not be read); ``outbox_oldest_waiting_seconds``, age of the oldest message not yet
    delivered (0 when none waits, None when unknown)."""

    database_up: bool
    redis_up: bool | None = None
    outbox: Mapping[str, int] = field(default_factory=dict)
    outbox_oldest_waiting_seconds: float | None = None
    # Back-channel logout deliveries per status (empty when they could not be read).
    logouts: Mapping[str, int] = field(default_factory=dict)


class PrometheusMetrics:
    """The domain's ``Metrics`` and ``MetricsExposition``, and the HTTP request metrics,
    counted with prometheus-client.

    ``label_values`` (label name -> values: ``outcome``, ``purpose``, ``limit``, ``result``)
    are created at zero up front, so a rate() over each exists before its first event. Each
    instance has its own registry (several apps in one process, as in tests, do not collide);
    under multiprocess mode the values live in files shared by name, and ``exposition`` reads
    those instead. Creating an instance turns off the ``_created`` series process-wide (they
    double the series count and multiprocess mode cannot serve them anyway)."""

    content_type = CONTENT_TYPE

    def __init__(self, label_values: Mapping[str, Iterable[str]] | None = None) -> None:
        disable_created_metrics()
        self.registry = CollectorRegistry()
        r = self.registry
        self._requests = Counter(
            "sproutgate_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self._latency = Histogram(
            "sproutgate_http_request_duration_seconds",
            "Time from receiving a request to the end of its answer, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._sign_ins = Counter(
            "sproutgate_sign_ins",
            "Sign-in steps by outcome (password, passkey, second-factor code): success (once per "
            "session opened), wrong_password (also unknown accounts), rate_limited, disabled, "
            "second_factor_required, wrong_code, passkey_refused.",
            ["outcome"],
            registry=r,
        )
        self._codes = Counter(
            "sproutgate_codes_mailed",
            "One-time codes queued for mailing, by purpose (signup, reset, secondary_email).",
            ["purpose"],
            registry=r,
        )
        self._refusals = Counter(
            "sproutgate_rate_limit_refusals",
            "Requests refused by a rate limit, by the limit's rule name.",
            ["limit"],
            registry=r,
        )
        self._reuses = Counter(
            "sproutgate_refresh_token_reuse_detections",
            "Refresh tokens presented again outside their grace window (each revoked its session).",
            registry=r,
        )
        self._deliveries = Counter(
            "sproutgate_mail_deliveries",
            "Delivery attempts of queued mail by result: sent, retry (failed, tried again later), "
            "failed (for good).",
            ["result"],
            registry=r,
        )
        self._logouts = Counter(
            "sproutgate_backchannel_logout_deliveries",
            "Back-channel logout delivery attempts by result: sent (the client answered 2xx), "
            "retry (failed, tried again later), failed (for good).",
            ["result"],
            registry=r,
        )
        self._local_limits = Gauge(
            "sproutgate_rate_limits_local_processes",
            "Server processes counting rate limits in their own memory because Redis is away.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._pool_in_use = Gauge(
            "sproutgate_db_pool_connections_in_use",
            "Database connections checked out of the pools of all server processes.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._pool_capacity = Gauge(
            "sproutgate_db_pool_connections_max",
            "Most connections the pools of all server processes may hold (pool size + overflow).",
            registry=r,
            multiprocess_mode="livesum",
        )
        known = label_values or {}
        for counter, label in (
            (self._sign_ins, "outcome"),
            (self._codes, "purpose"),
            (self._refusals, "limit"),
            (self._deliveries, "result"),
            (self._logouts, "result"),
        ):
            for value in known.get(label, ()):
                counter.labels(str(value))
        self._local_limits.set(0)
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    # -- domain.metrics.Metrics (label values are the domain's StrEnums: strings) -----------
    def sign_in(self, outcome: str) -> None:
        self._sign_ins.labels(str(outcome)).inc()

    def code_mailed(self, purpose: str) -> None:
        self._codes.labels(str(purpose)).inc()

    def rate_limited(self, rule: str) -> None:
        self._refusals.labels(rule).inc()

    def refresh_token_reused(self) -> None:
        self._reuses.inc()

    def mail_delivery(self, result: str) -> None:
        self._deliveries.labels(str(result)).inc()

    def backchannel_delivery(self, result: str) -> None:
        self._logouts.labels(str(result)).inc()

    # -- the rate limiter (infra.ratelimit's ``on_local_mode``) ---------------------------
    def rate_limits_local(self, local: bool) -> None:
        """This process counts rate limits in its own memory (Redis is away) or in Redis again."""
        self._local_limits.set(1 if local else 0)

    # -- HTTP -----------------------------------------------------------------------------
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request taking ``seconds``. ``route`` is the matched route's
        template (or ``unmatched``), never a raw path; a ``method`` outside ``METHODS`` counts
        as OTHER."""
        if method not in METHODS:
            method = OTHER_METHOD
        key = (route, method, status)
        series = self._request_series.get(key)
        if series is None:
            # labels() takes a lock and builds a key each time: keep the children.
            series = (self._requests.labels(route, method, str(status)), self._latency.labels(route, method))
            self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    # -- database pool --------------------------------------------------------------------
    def watch_pool(self, engine: AsyncEngine) -> None:
        """Keep the pool gauges of ``engine`` current: set from the pool's own count on every
        checkout and checkin (never added to, so they cannot drift). Pools that do not count
        (SQLite's in-memory StaticPool, NullPool) are not watched. On SQLite the hot paths use
        connections of their own (storage.sqlite_driver), so the pool shows the rest."""
        pool: Any = engine.sync_engine.pool
        if not hasattr(pool, "checkedout") or not hasattr(pool, "size"):
            return
        overflow = getattr(pool, "_max_overflow", 0)
        self._pool_capacity.set(pool.size() + max(0, overflow))
        self._pool_in_use.set(pool.checkedout())

        def checked_out(*_: Any) -> None:
            self._pool_in_use.set(pool.checkedout())

        def checked_in(*_: Any) -> None:
            # The event fires just before the connection goes back (or, past the pool's size,
            # is closed): either way the count drops by this one.
            self._pool_in_use.set(max(0, pool.checkedout() - 1))

        event.listen(engine.sync_engine, "checkout", checked_out)
        event.listen(engine.sync_engine, "checkin", checked_in)

    # -- domain.metrics.MetricsExposition ------------------------------------------------
    def exposition(
        self,
        *,
        database_up: bool,
        redis_up: bool | None,
        outbox: Mapping[str, int],
        outbox_oldest_waiting_seconds: float | None,
        logouts: Mapping[str, int] | None = None,
    ) -> bytes:
        """The Prometheus text format (version 0.0.4, ``content_type``): every process's counted
        values (under multiprocess mode, after forgetting the gauges of workers that died), then
        the values of this scrape (``ScrapeSnapshot``). Reads files under multiprocess mode: call
        it off the event loop."""
        snapshot = ScrapeSnapshot(database_up, redis_up, outbox, outbox_oldest_waiting_seconds, logouts or {})
        path = os.environ.get(MULTIPROC_ENV)
        if path:
            forget_dead_workers(Path(path))
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path)
            counted = generate_latest(registry)
        else:
            counted = generate_latest(self.registry)
        scraped = CollectorRegistry()
        scraped.register(_SnapshotCollector(snapshot))
        return counted + generate_latest(scraped)


def forget_dead_workers(path: Path) -> list[int]:
    """Remove the live-gauge files of worker processes that have exited (a worker that died and
    was restarted, say), so ``livesum`` gauges add up living processes only. Their counters stay:
    what a dead worker counted still happened. Returns the pids forgotten."""
    dead: list[int] = []
    try:
        names = os.listdir(path)
    except OSError:
        return dead
    for name in names:
        match = _LIVE_GAUGE_FILE.match(name)
        if match and not pid_alive(int(match.group(1))):
            dead.append(int(match.group(1)))
    for pid in set(dead):
        mark_process_dead(pid, str(path))
    return sorted(set(dead))


class _SnapshotCollector:
    def __init__(self, snapshot: ScrapeSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        yield GaugeMetricFamily(
            "sproutgate_database_up",
            "1 when the database answered this scrape's check, else 0.",
            value=1 if s.database_up else 0,
        )
        if s.outbox:
            messages = GaugeMetricFamily(
                "sproutgate_outbox_messages",
                "Mail in the outbox by status: pending and sending wait; sent is kept until purged; "
                "failed gave up (sproutgate outbox retry).",
                labels=["status"],
            )
            for status, count in s.outbox.items():
                messages.add_metric([status], count)
            yield messages
        if s.outbox_oldest_waiting_seconds is not None:
            yield GaugeMetricFamily(
                "sproutgate_outbox_oldest_waiting_seconds",
                "Age of the oldest mail not yet delivered (pending or sending); 0 when none waits.",
                value=s.outbox_oldest_waiting_seconds,
            )
        if s.logouts:
            logouts = GaugeMetricFamily(
                "sproutgate_backchannel_logouts",
                "Back-channel logout deliveries by status: pending and sending wait; delivered is "
                "kept until purged; failed gave up (sproutgate logouts retry).",
                labels=["status"],
            )
            for status, count in s.logouts.items():
                logouts.add_metric([status], count)
            yield logouts
        if s.redis_up is not None:
            yield GaugeMetricFamily(
                "sproutgate_redis_up",
                "1 when Redis answered a ping during this scrape, else 0.",
                value=1 if s.redis_up else 0,
            )
