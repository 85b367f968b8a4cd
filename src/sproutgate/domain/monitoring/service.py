"""What operators read at ``/metrics``: every value the processes counted (the rules report
them through ``domain.metrics.Metrics``) and, worked out at the moment of the scrape, the state
of the services every instance shares: the outbox (through ``OutboxService``), the back-channel
logout queue (``BackchannelService``), the database and Redis (through ``HealthService``). A
service that is away makes its values say so; the scrape itself never fails for it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sproutgate.config import Settings
from sproutgate.domain.backchannel.service import BackchannelService
from sproutgate.domain.errors import Forbidden, NotAuthenticated
from sproutgate.domain.health.service import HEALTHY, HealthService
from sproutgate.domain.mail.service import OutboxBacklog, OutboxService
from sproutgate.domain.metrics import MetricsExposition
from sproutgate.domain.monitoring.rules import may_scrape

# The outbox is asked for at most this long; Prometheus gives a scrape 10 s by default, and the
# health checks run beside it within their own 3 s.
OUTBOX_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class Scrape:
    """A rendered exposition and its media type."""

    body: bytes
    content_type: str


class MonitoringService:
    def __init__(
        self,
        settings: Settings,
        outbox: OutboxService,
        health: HealthService,
        exposition: MetricsExposition,
        logouts: BackchannelService | None = None,
    ) -> None:
        """``logouts``: the back-channel logout queue, counted per status at each scrape."""
        self.settings = settings
        self.outbox = outbox
        self.health = health
        self.exposition = exposition
        self.logouts = logouts

    def authorize_scrape(
        self, presented_token: str | None, local_client: bool, *, loopback_name: bool
    ) -> None:
        """Raises NotAuthenticated when a metrics token is configured and ``presented_token`` is
        not it, Forbidden when none is and the caller is not a local client naming the host by a
        loopback name (``rules.may_scrape``)."""
        expected = self.settings.metrics_token
        if may_scrape(expected, presented_token, local_client, loopback_name=loopback_name):
            return
        raise NotAuthenticated() if expected else Forbidden()

    async def scrape(self) -> Scrape:
        """Everything counted, plus the outbox, database and Redis as they are now. Never raises
        for a backing service that is away."""
        report, backlog, logouts = await asyncio.gather(self.health.check(), self._backlog(), self._logouts())
        redis = report.services.get("redis")
        database = report.services.get("database")
        outbox: dict[str, int] = {}
        oldest: float | None = None
        if backlog is not None:
            c = backlog.counts
            outbox = {"pending": c.pending, "sending": c.sending, "sent": c.sent, "failed": c.failed}
            oldest = backlog.oldest_waiting_seconds
        body = await asyncio.to_thread(
            self.exposition.exposition,
            database_up=database is not None and database.status == HEALTHY,
            redis_up=None if redis is None else redis.status == HEALTHY,
            outbox=outbox,
            outbox_oldest_waiting_seconds=oldest,
            logouts=logouts,
        )
        return Scrape(body, self.exposition.content_type)

    async def _logouts(self) -> dict[str, int] | None:
        if self.logouts is None:
            return None
        try:
            return await asyncio.wait_for(self.logouts.counts(), OUTBOX_SECONDS)
        except Exception:  # noqa: BLE001 - the database is away: the gauge is left out
            return None

    async def _backlog(self) -> OutboxBacklog | None:
        try:
            return await asyncio.wait_for(self.outbox.backlog(), OUTBOX_SECONDS)
        except Exception:  # noqa: BLE001 - the database is away: the outbox gauges are left out
            return None
