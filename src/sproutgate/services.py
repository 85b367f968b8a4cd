"""The composition root: builds the object graph once per process, adapters first, then the
domain services over them.

``Services`` is the domain's ``DomainServices`` (all a face may call) plus the adapters and
background work only the entry points (``app``, ``cli``) handle: the database, the hasher, the
signer, the limiter, the mail worker, the admin token. Faces never import this module (the
import contracts in pyproject.toml say so); they are handed the ``DomainServices`` part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sproutgate.config import Settings
from sproutgate.domain.accounts.service import AccountService
from sproutgate.domain.admin.service import AdminAccess, AdminService
from sproutgate.domain.backchannel.service import BackchannelLogout, BackchannelService, BackchannelWorker
from sproutgate.domain.chats.service import ChatService
from sproutgate.domain.clients.service import ClientService
from sproutgate.domain.clock import Clock
from sproutgate.domain.codes.service import CodeService
from sproutgate.domain.console_sessions.rules import ConsoleSessionRules
from sproutgate.domain.console_sessions.service import ConsoleSessionService
from sproutgate.domain.health.service import HealthService
from sproutgate.domain.housekeeping.service import Housekeeping
from sproutgate.domain.importing.service import SproutGateImporter
from sproutgate.domain.limits import RateLimits
from sproutgate.domain.logout.service import EndSessionService
from sproutgate.domain.mail.notices import Notices
from sproutgate.domain.mail.service import Outbox, OutboxService, OutboxWorker
from sproutgate.domain.metrics import LABEL_VALUES
from sproutgate.domain.mfa.service import MfaService
from sproutgate.domain.monitoring.service import MonitoringService
from sproutgate.domain.oidc.service import OidcService
from sproutgate.domain.passkeys.service import PasskeyService
from sproutgate.domain.privacy.holds import IdentifierHolds
from sproutgate.domain.privacy.service import PrivacyService
from sproutgate.domain.profiles.service import ProfileService
from sproutgate.domain.registry import DomainServices
from sproutgate.domain.sessions.devices import DeviceKeys
from sproutgate.domain.sessions.service import SessionService, listen_to_session_ends
from sproutgate.infra.admin_token import AdminTokenGuard
from sproutgate.infra.backchannel import LogoutTransport
from sproutgate.infra.backchannel_http import HttpLogoutTransport
from sproutgate.infra.hasher import Argon2Hasher
from sproutgate.infra.keys import load_or_create_secret, load_signing_keys
from sproutgate.infra.mail_templating import JinjaMailTemplates
from sproutgate.infra.mailer import DevMailboxTransport, MailTransport, SmtpTransport
from sproutgate.infra.metrics import PrometheusMetrics
from sproutgate.infra.ratelimit import RULES, LimitsRateLimiter
from sproutgate.infra.sealing import Sealer, SecretSealer, load_mfa_keys, load_outbox_keys
from sproutgate.infra.tokens import JwtSigner
from sproutgate.private_files import private_dir
from sproutgate.storage.db import Database, make_engine


@dataclass(kw_only=True)
class Services(DomainServices):
    db: Database
    hasher: Argon2Hasher
    signer: JwtSigner
    limiter: RateLimits
    outbox: Outbox
    mail_worker: OutboxWorker
    backchannel_worker: BackchannelWorker
    codes: CodeService
    housekeeping: Housekeeping
    admin_guard: AdminTokenGuard
    metrics: PrometheusMetrics

    async def aclose(self) -> None:
        """Release the database connections and end the hash threads (the end of a CLI command
        or of the app)."""
        await self.db.dispose()
        self.hasher.close()


def build_hasher(settings: Settings) -> Argon2Hasher:
    """The password hasher with this deployment's Argon2 cost and hash threads
    (``SPROUTGATE_ARGON2_*``)."""
    return Argon2Hasher(
        settings.argon2_time_cost,
        settings.argon2_memory_kib,
        settings.argon2_parallelism,
        threads=settings.argon2_threads or None,
    )


def build_services(
    settings: Settings,
    clock: Clock | None = None,
    transport: MailTransport | None = None,
    logout_transport: LogoutTransport | None = None,
) -> Services:
    """Every adapter and service of one process. ``transport`` replaces the mail transport
    (default: SMTP when ``SPROUTGATE_SMTP_HOST`` is set, else the dev mailbox);
    ``logout_transport`` the back-channel logout one (default: HTTP). Creates the data dir, the
    keys and the admin token when missing; opens no connection yet."""
    clock = clock or Clock()
    # The data dir holds the database, keys and config: private to the service user.
    private_dir(settings.data_dir)
    metrics = PrometheusMetrics({**LABEL_VALUES, "limit": tuple(RULES)})
    db = Database(make_engine(settings))
    metrics.watch_pool(db.engine)
    hasher = build_hasher(settings)
    signer = JwtSigner(
        load_signing_keys(settings.data_dir),
        settings.issuer,
        clock=clock,
        reload=lambda: load_signing_keys(settings.data_dir, create=False),
    )
    limiter = RateLimits(LimitsRateLimiter(settings, on_local_mode=metrics.rate_limits_local), metrics)
    # Queued mail is sealed at rest with a key shared through data/keys, like the code-hashing key.
    outbox = Outbox(
        settings,
        Sealer(
            load_outbox_keys(settings.data_dir),
            reload=lambda: load_outbox_keys(settings.data_dir, create=False),
        ),
        clock,
    )
    if transport is None:
        transport = SmtpTransport(settings) if settings.smtp_host else DevMailboxTransport()
    worker = OutboxWorker(settings, db, outbox, transport, clock, metrics)
    # Every mail's text: the operator's template files first, then ours (docs/deployment.md).
    notices = Notices(
        settings, outbox, JinjaMailTemplates(settings.product_name, settings.mail_templates_dir), clock
    )
    code_key = load_or_create_secret(settings.data_dir, "code-hmac.key")
    codes = CodeService(settings, code_key, clock)
    # Every session ends through end_sessions; back-channel logout listens to what ends.
    logouts = BackchannelLogout(clock)
    listen_to_session_ends(db, logouts)
    logout_worker = BackchannelWorker(
        settings,
        db,
        logouts,
        signer,
        logout_transport or HttpLogoutTransport(settings.backchannel_logout_timeout_seconds),
        clock,
        metrics,
    )
    sessions = SessionService(
        settings,
        db,
        signer,
        limiter,
        clock,
        load_or_create_secret(settings.data_dir, "refresh-chain.key"),
        metrics,
        devices=DeviceKeys(load_or_create_secret(settings.data_dir, "devices.key")),
        notices=notices,
    )
    # Authenticator secrets are sealed with a key of their own; recovery codes are hashed with
    # the code-hashing key (bound to their purpose and user).
    mfa = MfaService(
        settings,
        db,
        hasher,
        sessions,
        limiter,
        outbox,
        # Re-read before sealing and after a miss: `sproutgate keys rotate-mfa` needs no restart.
        SecretSealer(load_mfa_keys(settings.data_dir), reload=lambda: load_mfa_keys(settings.data_dir)),
        code_key,
        clock,
        notices,
        metrics,
    )
    passkeys = PasskeyService(settings, db, sessions, mfa, limiter, outbox, clock, metrics)
    holds = IdentifierHolds(load_or_create_secret(settings.data_dir, "held-identifiers.key"), clock)
    accounts = AccountService(
        settings,
        db,
        hasher,
        codes,
        sessions,
        limiter,
        outbox,
        clock,
        holds,
        metrics,
        mfa=mfa,
        notices=notices,
    )
    privacy = PrivacyService(settings, db, accounts, holds, outbox, clock)
    admin = AdminService(db, accounts, privacy, clock, mfa=mfa)
    guard = AdminTokenGuard(settings)
    admin_access = AdminAccess(guard, sessions, limiter)
    console_sessions = ConsoleSessionService(
        db,
        clock,
        ConsoleSessionRules.from_settings(settings),
        # The pages' cookie key: it signed the console cookie before sessions moved server-side.
        load_or_create_secret(settings.data_dir, "web-cookies.key"),
        lambda: guard.token,
    )
    mail_outbox = OutboxService(db, outbox, clock)
    backchannel = BackchannelService(db, logouts, clock)
    # OAuth client secrets are stored as a keyed hash under a key of their own (issue 12).
    clients = ClientService(db, clock, load_or_create_secret(settings.data_dir, "client-secrets.key"))
    clients.on_delete(logouts.forget_client)
    oidc = OidcService(settings, db, signer, sessions, clients, limiter, clock, notices)
    clients.on_update(oidc.client_changed)
    health = HealthService(settings, db)
    return Services(
        settings=settings,
        clock=clock,
        db=db,
        hasher=hasher,
        signer=signer,
        limiter=limiter,
        outbox=outbox,
        mail_worker=worker,
        backchannel_worker=logout_worker,
        backchannel=backchannel,
        codes=codes,
        housekeeping=Housekeeping(
            db,
            clock,
            settings.purge_interval_seconds,
            timedelta(seconds=settings.session_idle_timeout_seconds),
        ),
        sessions=sessions,
        accounts=accounts,
        mfa=mfa,
        passkeys=passkeys,
        profiles=ProfileService(db, limiter, clock),
        admin=admin,
        privacy=privacy,
        admin_access=admin_access,
        admin_guard=guard,
        console_sessions=console_sessions,
        mail_outbox=mail_outbox,
        health=health,
        monitoring=MonitoringService(settings, mail_outbox, health, metrics, backchannel),
        metrics=metrics,
        chats=ChatService(settings, db, limiter, clock),
        clients=clients,
        oidc=oidc,
        end_session=EndSessionService(oidc, clients, sessions),
    )


def build_importer(settings: Settings, clock: Clock | None = None) -> tuple[SproutGateImporter, Database]:
    """The importer of ``import-sproutgate`` and the database it writes (dispose it when done).
    Built without ``build_services``: that would generate an admin token before the import could
    adopt the old installation's. Sessions it ends queue their back-channel logouts (a running
    server delivers them)."""
    db = Database(make_engine(settings))
    clock = clock or Clock()
    listen_to_session_ends(db, BackchannelLogout(clock))
    return SproutGateImporter(settings, db, build_hasher(settings), clock), db
