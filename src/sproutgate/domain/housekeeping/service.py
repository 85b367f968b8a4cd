"""Periodic purge of what is dead: expired codes, abandoned sign-ups, ended sessions (of users
and of the admin console), expired second-step challenges and unconfirmed authenticator
enrolments, passkey challenges never answered, delivered mail after a week (kept that long for
the outbox view), back-channel logout deliveries a week after they were delivered or given up,
and ended holds on the identifiers of deleted accounts."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sproutgate.domain.accounts.rules import KNOWN_CLIENT_SECONDS
from sproutgate.domain.backchannel.rules import DONE_DELIVERY_RETENTION, DeliveryStatus
from sproutgate.domain.clock import Clock
from sproutgate.domain.mail.rules import MailStatus
from sproutgate.domain.mfa.rules import ENROLMENT_TTL_SECONDS
from sproutgate.domain.sessions.devices import DEVICE_FORGET_SECONDS
from sproutgate.storage.backchannel import BackchannelRepository
from sproutgate.storage.db import Database
from sproutgate.storage.mfa import MfaRepository
from sproutgate.storage.oidc import OidcRepository
from sproutgate.storage.passkeys import PasskeyRepository
from sproutgate.storage.privacy import HeldIdentifierRepository
from sproutgate.storage.repositories import (
    CodeRepository,
    ConsoleSessionRepository,
    OutboxRepository,
    PendingSignupRepository,
    SessionRepository,
    purge_sign_in_clients,
    purge_sign_in_devices,
)

log = logging.getLogger(__name__)

REVOKED_SESSION_RETENTION = timedelta(days=7)
SENT_MAIL_RETENTION = timedelta(days=7)


AUTHORIZATION_CODE_RETENTION = timedelta(days=1)

# What the purge assumes when it is not told the idle timeout (the setting's default).
DEFAULT_SESSION_IDLE = timedelta(days=30)


async def purge_once(
    db: Database, clock: Clock, session_idle: timedelta = DEFAULT_SESSION_IDLE
) -> dict[str, int]:
    """Remove what is dead as of ``clock.now()``, in one transaction; counts per kind.
    ``session_idle``: sessions unused this long are dead (``SPROUTGATE_SESSION_IDLE_TIMEOUT_SECONDS``;
    they are refused at their next use already, the purge only removes the rows)."""
    now = clock.now()
    async with db.write() as s:
        codes = await CodeRepository(s).purge(now)
        pending = await PendingSignupRepository(s).purge(now)
        sessions = await SessionRepository(s).purge(now, now - REVOKED_SESSION_RETENTION, now - session_idle)
        mail = await OutboxRepository(s).purge(MailStatus.SENT, now - SENT_MAIL_RETENTION)
        clients = await purge_sign_in_clients(s, now - timedelta(seconds=KNOWN_CLIENT_SECONDS))
        devices = await purge_sign_in_devices(s, now - timedelta(seconds=DEVICE_FORGET_SECONDS))
        console = await ConsoleSessionRepository(s).purge(now)
        mfa = await MfaRepository(s).purge(now, now - timedelta(seconds=ENROLMENT_TTL_SECONDS))
        holds = await HeldIdentifierRepository(s).purge(now)
        passkey_challenges = await PasskeyRepository(s).purge(now)
        logouts = await BackchannelRepository(s).purge(
            (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED), now - DONE_DELIVERY_RETENTION
        )
        # Kept a day past their 60 seconds, so a replayed code still revokes what it gave.
        oauth_codes = await OidcRepository(s).purge_codes(now - AUTHORIZATION_CODE_RETENTION)
        sign_in_demands = await OidcRepository(s).purge_sign_in_demands(now)
    return {
        "codes": codes,
        "pending_signups": pending,
        "sessions": sessions,
        "sent_mail": mail,
        "sign_in_clients": clients,
        "sign_in_devices": devices,
        "console_sessions": console,
        "mfa_challenges_and_enrolments": mfa,
        "held_identifiers": holds,
        "passkey_challenges": passkey_challenges,
        "backchannel_logouts": logouts,
        "authorization_codes": oauth_codes,
        "oidc_sign_in_demands": sign_in_demands,
    }


async def purge_forever(
    db: Database, clock: Clock, interval: float, session_idle: timedelta = DEFAULT_SESSION_IDLE
) -> None:
    """``purge_once`` every ``interval`` seconds until cancelled; a failed pass is logged."""
    while True:
        await asyncio.sleep(interval)
        try:
            counts = await purge_once(db, clock, session_idle)
            if any(counts.values()):
                log.info("purged %s", counts)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - retried next interval
            log.warning("purge failed: %s", exc)


class Housekeeping:
    """The purge as the app's background task and the CLI's ``purge`` call it."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        interval_seconds: float,
        session_idle: timedelta = DEFAULT_SESSION_IDLE,
    ) -> None:
        self.session_idle = session_idle
        self.db = db
        self.clock = clock
        self.interval_seconds = interval_seconds

    async def purge_once(self) -> dict[str, int]:
        """Remove what is dead now; counts per kind (codes, pending_signups, sessions, sent_mail)."""
        return await purge_once(self.db, self.clock, self.session_idle)

    async def run_forever(self) -> None:
        """Purge every ``interval_seconds`` until cancelled."""
        await purge_forever(self.db, self.clock, self.interval_seconds, self.session_idle)
