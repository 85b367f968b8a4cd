"""Every mail SproutGate sends, composed in one place: codes, and the security notices, one
function per kind of event. Each is rendered from the template files (``infra.mailer
.MailTemplates``: per language, overridable by an operator) and queued in the caller's
transaction (``Outbox``), so a mail goes out exactly when what it announces commits.

Language: a mail to a user is in *their* stored language (``users.locale``), whoever caused
it (the user on another device, an administrator); only mail to an address with no account
behind it (a sign-up code, a reset request for an unknown address) follows the language of
the request.

Every notice says what happened, when (UTC, to the minute), from where (the client address
and user agent of the request; "an administrator" for an administrator's action, whose address
is not the user's business) and what to do if it was not them (docs/security.md, notices).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.config import Settings
from sproutgate.domain.clock import Clock
from sproutgate.domain.context import CallerContext
from sproutgate.domain.mail.service import Outbox
from sproutgate.i18n import DEFAULT_LANG, LANGS
from sproutgate.infra.mailer import MailTemplates
from sproutgate.storage.models import User
from sproutgate.storage.repositories import add_outbox_row
from sproutgate.storage.statements import SessionStatements, Statements

# A notice's "from where" for an administrator's action.
BY_ADMIN = None


class FactorChange(StrEnum):
    """What happened to a second factor; the value names the mail template (and its kind)."""

    ENABLED = "mfa_enabled"  # an authenticator app was confirmed
    DISABLED = "mfa_disabled"  # it was turned off (recovery codes with it)
    RECOVERY_REGENERATED = "mfa_recovery_regenerated"
    RECOVERY_USED = "mfa_recovery_used"  # a recovery code signed in; ``left`` remain
    RECOVERY_LOW = "mfa_recovery_low"  # the same, with few left
    RESET = "mfa_reset"  # an administrator turned every factor off
    PASSKEY_ADDED = "passkey_added"  # ``name``: the passkey's
    PASSKEY_REMOVED = "passkey_removed"


@dataclass(frozen=True, slots=True)
class RevokedSession:
    """The session an administrator ended, as its notice describes it."""

    created_at: datetime
    ip: str | None
    user_agent: str | None


def when(at: datetime) -> str:
    """A moment as mail shows it: UTC, to the minute."""
    return at.strftime("%Y-%m-%d %H:%M UTC")


USER_AGENT_SHOWN = 200  # characters of a user agent a notice quotes


def shown_agent(user_agent: str | None) -> str | None:
    """A client's user agent as a notice quotes it: printable characters only (no line breaks
    to forge lines of the mail with), at most ``USER_AGENT_SHOWN``; None when nothing is left."""
    printable = "".join(ch for ch in (user_agent or "") if ch.isprintable())
    return printable[:USER_AGENT_SHOWN].strip() or None


def user_lang(user: User) -> str:
    """The language of mail to ``user``: their stored locale (the default when unset or unknown)."""
    locale = getattr(user, "locale", None)
    return locale if locale in LANGS else DEFAULT_LANG


class Notices:
    """Composes and queues mail (one per process). ``templates`` renders it (the operator's
    files first); ``Outbox`` seals and stores it; the caller calls ``outbox.notify()`` after
    its transaction commits (``Notices.queued`` tells whether anything was queued)."""

    def __init__(self, settings: Settings, outbox: Outbox, templates: MailTemplates, clock: Clock) -> None:
        self.settings = settings
        self.outbox = outbox
        self.templates = templates
        self.clock = clock

    # -- the one way a mail is composed and queued --------------------------------------------
    def link(self, path: str, **params: str) -> str:
        """An absolute link to ``path`` on ``SPROUTGATE_PUBLIC_URL`` with query ``params``."""
        query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
        return f"{self.settings.public_url.rstrip('/')}{path}" + (f"?{query}" if query else "")

    async def send(
        self, target: AsyncSession | Statements, to: str, kind: str, lang: str, **params: Any
    ) -> None:
        """Render ``kind`` in ``lang`` with ``params`` (plus ``minutes``, a code's lifetime) and
        queue it to ``to`` in ``target``'s transaction: a unit of work, or the Statements of an
        inline write (sign-in)."""
        params.setdefault("minutes", self.settings.code_ttl_seconds // 60)
        text = self.templates.render(kind, lang, params)
        message = self.outbox.message(to, text.subject, text.text_body, kind, text.html_body)
        run = SessionStatements(target) if isinstance(target, AsyncSession) else target
        await add_outbox_row(run, message)

    async def _notice(
        self,
        target: AsyncSession | Statements,
        user: User,
        kind: str,
        where: CallerContext | None,
        *,
        to: str | None = None,
        at: datetime | None = None,
        **params: Any,
    ) -> None:
        """A notice to ``user`` (their primary address unless ``to``) in their language, with
        what every notice carries: account, when, from where (``where``; None: an
        administrator), and a link to the account page unless ``params`` has another."""
        params.setdefault("link", self.link("/account"))
        await self.send(
            target,
            to or user.email,
            kind,
            user_lang(user),
            account=user.account,
            at=when(at or self.clock.now()),
            ip=where.ip if where else None,
            user_agent=shown_agent(where.user_agent) if where else None,
            by_admin=where is None,
            **params,
        )

    # -- security notices, one per event --------------------------------------------------------
    async def new_sign_in(self, target: AsyncSession | Statements, user: User, where: CallerContext) -> None:
        """A sign-in from a browser or app not seen for the account (domain/sessions/devices.py)."""
        await self._notice(target, user, "new_sign_in", where)

    async def password_changed(
        self, target: AsyncSession | Statements, user: User, where: CallerContext | None
    ) -> None:
        """The password changed: by the user (profile, reset; ``where`` their request) or by an
        administrator (``where`` None)."""
        await self._notice(
            target,
            user,
            "password_changed",
            where,
            link=self.link("/forgot-password", email=user.email),
        )

    async def address_added(
        self, target: AsyncSession | Statements, user: User, email: str, where: CallerContext | None
    ) -> None:
        """``email`` became a secondary address of ``user`` (it signs in and receives reset codes)."""
        await self._notice(
            target, user, "secondary_added", where, email=email, link=self.link("/account#emails")
        )

    async def address_removed(
        self, target: AsyncSession | Statements, user: User, email: str, where: CallerContext | None
    ) -> None:
        """``email`` stopped being one of ``user``'s addresses."""
        await self._notice(
            target,
            user,
            "secondary_removed",
            where,
            email=email,
            link=self.link("/forgot-password", email=user.email),
        )

    async def primary_changed(
        self,
        target: AsyncSession | Statements,
        user: User,
        old_email: str,
        where: CallerContext | None,
        *,
        old_kept: bool = False,
    ) -> None:
        """``user.email`` became the primary address, replacing ``old_email`` (``old_kept``:
        it stays as a secondary one). Both addresses are told: the old one may be the only
        one its owner still reads."""
        params: dict[str, Any] = {"email": user.email, "old_email": old_email, "old_kept": old_kept}
        link = self.link("/forgot-password", email=user.email)
        await self._notice(target, user, "primary_changed", where, link=link, **params)
        if old_email != user.email:
            await self._notice(target, user, "primary_changed", where, to=old_email, link=link, **params)

    async def session_revoked_by_admin(
        self, target: AsyncSession | Statements, user: User, session: RevokedSession
    ) -> None:
        """An administrator ended one of ``user``'s sessions (which one: when and where it began)."""
        await self._notice(
            target,
            user,
            "session_revoked",
            BY_ADMIN,
            session_created_at=when(session.created_at),
            session_ip=session.ip,
            session_user_agent=shown_agent(session.user_agent),
        )

    async def account_disabled(
        self, target: AsyncSession | Statements, user: User, where: CallerContext | None = BY_ADMIN
    ) -> None:
        """The account was disabled (by an administrator, so far the only way)."""
        await self._notice(target, user, "account_disabled", where)

    async def factor_changed(
        self,
        target: AsyncSession | Statements,
        user: User,
        change: FactorChange,
        where: CallerContext | None,
        **params: Any,
    ) -> None:
        """A second factor changed (``change``; ``left`` for recovery codes used, ``name`` for a
        passkey)."""
        await self._notice(target, user, change.value, where, **params)

    async def app_connected(
        self, target: AsyncSession | Statements, user: User, app: str, where: CallerContext | None
    ) -> None:
        """An app (the client named ``app``) got lasting access to the account: a grant that
        outlives the sign-out (``offline_access``), the first one of that app while none is live.
        ``where``: the browser sign-in it was given through. The owner learns of access a copied
        session cookie could otherwise hand out unseen, and where to disconnect it."""
        await self._notice(
            target, user, "app_connected", where, app=app, link=self.link("/account") + "#apps"
        )

    async def account_deleted(
        self, target: AsyncSession | Statements, user: User, kind: str, at: datetime, until: datetime
    ) -> None:
        """The account was deleted (``kind``: ``account_deleted`` by its owner,
        ``account_deleted_by_admin``); its address and name are free again from ``until``."""
        await self.send(
            target, user.email, kind, user_lang(user), account=user.account, at=when(at), until=when(until)
        )
