"""Deleting an account and exporting what is stored about it.

A deletion is one transaction, whoever asks (the owner on either API face or the account page,
an administrator on the admin API or console): the user's row and everything that is theirs go
(addresses, sessions and so every access and refresh token, pending codes and sign-ups for
their addresses, sign-in clients and devices, second factors and sign-ins waiting for one, agent
conversations, apps' consents, grants and authorization codes), their addresses and account name are
held for ``deleted_account_hold_seconds`` (``holds.py``), the audit trail records that the
account was deleted and by whom (``user.delete``, ``details.by``: ``self`` or ``admin``, no
profile), and a notice is queued to the primary address. Nothing is written unless all of it is.

The owner re-authenticates with the password every time: a recent sign-in does not replace it
(docs/security.md, "Deleting an account").
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.config import Settings
from sproutgate.domain.accounts.service import AccountService
from sproutgate.domain.clock import Clock
from sproutgate.domain.codes.service import end_outstanding_codes
from sproutgate.domain.context import CallerContext
from sproutgate.domain.errors import InvalidInput, NotAuthenticated
from sproutgate.domain.mail.notices import user_lang
from sproutgate.domain.mail.service import Outbox
from sproutgate.domain.privacy.holds import IdentifierHolds
from sproutgate.domain.privacy.rules import (
    AUDIT_ACTION,
    AccountExport,
    DeletedBy,
    deletion_details,
    exported_address,
    exported_app_grant,
    exported_audit_event,
    exported_chat,
    exported_connected_app,
    exported_mail,
    exported_profile,
    exported_second_factors,
    exported_session,
    exported_sign_in_client,
    exported_sign_in_device,
    hold_ends,
    self_actor,
)
from sproutgate.domain.profiles.errors import UserNotFound
from sproutgate.domain.sessions.rules import SessionEndReason, SessionKind
from sproutgate.domain.sessions.service import Principal, end_sessions
from sproutgate.storage.db import Database
from sproutgate.storage.models import AuditEvent, User
from sproutgate.storage.privacy import AccountDataRepository
from sproutgate.storage.repositories import (
    AuditRepository,
    CodeRepository,
    UserRepository,
)

_NOTICE_KIND = {DeletedBy.SELF: "account_deleted", DeletedBy.ADMIN: "account_deleted_by_admin"}


class PrivacyService:
    """Leaving and taking the data along; each operation is one transaction."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        accounts: AccountService,
        holds: IdentifierHolds,
        outbox: Outbox,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.db = db
        self.accounts = accounts
        self.holds = holds
        self.outbox = outbox
        self.clock = clock

    async def delete_own_account(self, principal: Principal, password: str, ctx: CallerContext) -> None:
        """Delete the caller's account after checking their password (see the module docstring
        for what ends and what stays). The notice is in the user's language.

        Raises InvalidInput({"password": "field_required"}) for an empty password, WrongPassword
        (401; counted like a failed sign-in), RateLimited (after too many wrong passwords),
        NotAuthenticated when the session ended or the password changed meanwhile."""
        if not password:
            raise InvalidInput({"password": "field_required"})
        await self.accounts.verify_own_password(principal, password, ctx)
        verified_hash = principal.user.password_hash
        async with self.db.write() as s:
            user = await AccountDataRepository(s).user_for_update(principal.user.id)
            # Checked again under the lock: a password change (which ends the other sessions)
            # between the check above and now must not let the old password delete the account.
            if user is None or user.password_hash != verified_hash:
                raise NotAuthenticated()
            await self._delete(s, user, self_actor(user.account), DeletedBy.SELF, ctx.ip)
        self.outbox.notify()

    async def delete_account_by_admin(self, account: str, actor: str, ip: str | None = None) -> None:
        """Delete the account named ``account`` (any case) for an administrator: the same rule
        path as ``delete_own_account``, without the password. ``actor`` is who the audit trail
        names (``admin-token`` or ``user:<account>``), ``ip`` the administrator's address; the
        notice is in the user's language, not the administrator's. Raises UserNotFound."""
        async with self.db.write() as s:
            found = await UserRepository(s).by_account(account)
            user = await AccountDataRepository(s).user_for_update(found.id) if found else None
            if user is None:
                raise UserNotFound()
            await self._delete(s, user, actor, DeletedBy.ADMIN, ip)
        self.outbox.notify()

    async def _delete(self, s: AsyncSession, user: User, actor: str, by: DeletedBy, ip: str | None) -> None:
        """The deletion inside the caller's transaction."""
        now = self.clock.now()
        until = hold_ends(now, self.settings.deleted_account_hold_seconds)
        data = AccountDataRepository(s)
        addresses = [a.email for a in await data.addresses(user.id)]
        if user.email not in addresses:
            addresses.insert(0, user.email)
        # What the notice needs, read before the row goes.
        gone = User(account=user.account, email=user.email, locale=user_lang(user))
        await self.holds.hold(s, addresses, user.account_lower, now, until)
        # The user's own codes by the one rule for that, then what their addresses were sent.
        await end_outstanding_codes(CodeRepository(s), user.id)
        # Ended the one way sessions end (whatever follows an end applies), then removed.
        await end_sessions(s, user.id, now, SessionEndReason.ACCOUNT_DELETED)
        await data.remove(user, addresses)
        AuditRepository(s).add(
            AuditEvent(
                at=now,
                actor=actor,
                action=AUDIT_ACTION,
                target=gone.account,
                details=deletion_details(by),
                ip=ip,
            )
        )
        await self.accounts.notices.account_deleted(s, gone, _NOTICE_KIND[by], now, until)

    async def export(self, principal: Principal) -> AccountExport:
        """Everything stored about the caller (``rules.AccountExport``): profile, addresses,
        sessions (their own sign-ins, ended ones too; ``current`` marks the caller's), the apps
        they connected (consents) and the grants apps hold (sessions of kind ``oidc``, ended
        ones too; never a token), the client addresses and devices they
        signed in from, their second factors (when added and used), audit events about them,
        agent conversations with their messages, and the mail kept for their addresses (kinds
        and times only). Never a secret. One read transaction, so the parts agree. Raises
        UserNotFound."""
        async with self.db.read() as s:
            user = await UserRepository(s).get(principal.user.id)
            if user is None:
                raise UserNotFound()
            data = AccountDataRepository(s)
            addresses = await data.addresses(user.id)
            return AccountExport(
                exported_at=self.clock.now(),
                profile=exported_profile(user),
                addresses=[exported_address(a) for a in addresses],
                sessions=[
                    exported_session(x, principal.session_id)
                    for x in await data.sessions(user.id, exclude_kind=SessionKind.OIDC.value)
                ],
                connected_apps=[exported_connected_app(c, name) for c, name in await data.consents(user.id)],
                app_grants=[
                    exported_app_grant(g, name)
                    for g, name in await data.app_grants(user.id, SessionKind.OIDC.value)
                ],
                sign_in_clients=[exported_sign_in_client(c) for c in await data.sign_in_clients(user.id)],
                sign_in_devices=[exported_sign_in_device(d) for d in await data.sign_in_devices(user.id)],
                second_factors=exported_second_factors(
                    await data.authenticator_app(user.id),
                    await data.recovery_codes(user.id),
                    await data.passkeys(user.id),
                ),
                audit_events=[exported_audit_event(e) for e in await data.audit_events_about(user.account)],
                agent_conversations=[exported_chat(c) for c in await data.chats(user.id)],
                mail=[exported_mail(m) for m in await data.mail_to([a.email for a in addresses])],
            )
