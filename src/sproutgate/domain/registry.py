"""What a face may call: the domain services of one process, and nothing under them.

The API faces, the pages and the agent receive this (``api.deps.get_services``); the
composition root (``sproutgate.services``) builds it, with the adapters a face never touches
(database, hasher, signer, limiter, mail transport) kept on its own subclass. So a route that
reaches for ``services.db`` does not type-check, and an import of storage or infra from a face
breaks the import contracts (docs/architecture.md, "Layers and contracts").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sproutgate.config import Settings
from sproutgate.domain.accounts.service import AccountService
from sproutgate.domain.admin.service import AdminAccess, AdminService
from sproutgate.domain.backchannel.service import BackchannelService
from sproutgate.domain.chats.service import ChatService
from sproutgate.domain.clients.service import ClientService
from sproutgate.domain.clock import Clock
from sproutgate.domain.console_sessions.service import ConsoleSessionService
from sproutgate.domain.health.service import HealthService
from sproutgate.domain.logout.service import EndSessionService
from sproutgate.domain.mail.service import OutboxService
from sproutgate.domain.mfa.service import MfaService
from sproutgate.domain.monitoring.service import MonitoringService
from sproutgate.domain.oidc.service import OidcService
from sproutgate.domain.passkeys.service import PasskeyService
from sproutgate.domain.privacy.service import PrivacyService
from sproutgate.domain.profiles.service import ProfileService
from sproutgate.domain.sessions.service import SessionService


@dataclass(kw_only=True)
class DomainServices:
    settings: Settings
    clock: Clock
    accounts: AccountService
    mfa: MfaService
    passkeys: PasskeyService
    sessions: SessionService
    profiles: ProfileService
    admin: AdminService
    privacy: PrivacyService
    admin_access: AdminAccess
    console_sessions: ConsoleSessionService
    chats: ChatService
    mail_outbox: OutboxService
    backchannel: BackchannelService
    health: HealthService
    monitoring: MonitoringService
    # The OAuth / OpenID Connect client registry (issue 12).
    clients: ClientService
    # The OpenID Connect provider (issue 12).
    oidc: OidcService
    end_session: EndSessionService
    # Objects a face builds on first use and keeps for the process (the agent's chat service;
    # tests place their own). Never a channel between faces: those are typed (api.deps.ApiHooks).
    extras: dict[str, Any] = field(default_factory=dict)
