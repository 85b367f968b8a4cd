"""Builds the object graph once per process: adapters first, then the domain services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sproutgate.config import Settings
from sproutgate.domain.accounts.service import AccountService
from sproutgate.domain.admin.service import AdminService
from sproutgate.domain.chats.service import ChatService
from sproutgate.domain.clock import Clock
from sproutgate.domain.codes.service import CodeService
from sproutgate.domain.console_sessions.rules import ConsoleSessionRules
from sproutgate.domain.console_sessions.service import ConsoleSessionService
from sproutgate.domain.mail.service import OutboxService
from sproutgate.domain.profiles.service import ProfileService
from sproutgate.domain.sessions.service import SessionService
from sproutgate.infra.admin_token import AdminTokenGuard
from sproutgate.infra.hasher import Argon2Hasher
from sproutgate.infra.keys import load_or_create_secret, load_signing_keys
from sproutgate.infra.mailer import DevMailboxTransport, MailTransport, Outbox, OutboxWorker, SmtpTransport
from sproutgate.infra.ratelimit import LimitsRateLimiter
from sproutgate.infra.sealing import Sealer, load_outbox_keys
from sproutgate.infra.tokens import JwtSigner
from sproutgate.storage.db import Database, make_engine
from sproutgate.storage.private_files import private_dir


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    hasher: Argon2Hasher
    signer: JwtSigner
    limiter: LimitsRateLimiter
    outbox: Outbox
    mail_worker: OutboxWorker
    codes: CodeService
    sessions: SessionService
    accounts: AccountService
    profiles: ProfileService
    admin: AdminService
    admin_guard: AdminTokenGuard
    console_sessions: ConsoleSessionService
    mail_outbox: OutboxService
    chats: ChatService
    extras: dict[str, Any] = field(default_factory=dict)


def build_services(
    settings: Settings, clock: Clock | None = None, transport: MailTransport | None = None
) -> Services:
    clock = clock or Clock()
    # The data dir holds the database, keys and config: private to the service user.
    private_dir(settings.data_dir)
    db = Database(make_engine(settings))
    hasher = Argon2Hasher(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    signer = JwtSigner(
        load_signing_keys(settings.data_dir),
        settings.issuer,
        reload=lambda: load_signing_keys(settings.data_dir, create=False),
    )
    limiter = LimitsRateLimiter(settings)
    # Queued mail is sealed at rest with a key shared through data/keys, like the code-hashing key.
    outbox = Outbox(
        settings,
        Sealer(
            load_outbox_keys(settings.data_dir),
            reload=lambda: load_outbox_keys(settings.data_dir, create=False),
        ),
    )
    if transport is None:
        transport = SmtpTransport(settings) if settings.smtp_host else DevMailboxTransport()
    worker = OutboxWorker(settings, db, outbox, transport)
    codes = CodeService(settings, load_or_create_secret(settings.data_dir, "code-hmac.key"), clock)
    sessions = SessionService(
        settings, db, signer, limiter, clock, load_or_create_secret(settings.data_dir, "refresh-chain.key")
    )
    accounts = AccountService(settings, db, hasher, codes, sessions, limiter, outbox, clock)
    admin = AdminService(db, accounts, clock)
    guard = AdminTokenGuard(settings)
    console_sessions = ConsoleSessionService(
        db,
        clock,
        ConsoleSessionRules.from_settings(settings),
        # The pages' cookie key: it signed the console cookie before sessions moved server-side.
        load_or_create_secret(settings.data_dir, "web-cookies.key"),
        lambda: guard.token,
    )
    return Services(
        settings=settings,
        clock=clock,
        db=db,
        hasher=hasher,
        signer=signer,
        limiter=limiter,
        outbox=outbox,
        mail_worker=worker,
        codes=codes,
        sessions=sessions,
        accounts=accounts,
        profiles=ProfileService(db, limiter, clock),
        admin=admin,
        admin_guard=guard,
        console_sessions=console_sessions,
        mail_outbox=OutboxService(db, clock),
        chats=ChatService(settings, db, limiter, clock),
    )
