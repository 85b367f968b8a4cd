"""Administration of users (the SproutGate admin API, the admin pages and the CLI) and the
audit trail of every change made that way: each operation is one transaction that writes its
own audit record (``admin.rules.audit_details``), so no face audits anything itself."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.domain.accounts.rules import (
    NewUser,
    address_search_key,
    normalize_email,
    require_account,
    sign_in_key,
)
from sproutgate.domain.accounts.service import AccountService, add_user, replace_primary_email
from sproutgate.domain.admin.rules import audit_details, changed_fields
from sproutgate.domain.clock import Clock
from sproutgate.domain.codes.service import end_outstanding_codes
from sproutgate.domain.errors import Conflict, DomainError, InvalidInput, NotAuthenticated, NotFound
from sproutgate.domain.limits import RateLimits
from sproutgate.domain.mail.notices import BY_ADMIN, RevokedSession
from sproutgate.domain.mfa.service import MfaService, MfaSummary
from sproutgate.domain.privacy.service import PrivacyService
from sproutgate.domain.profiles.rules import (
    SPROUTGATE_PROFILE,
    UNSET,
    ProfileChanges,
    display_name_lower,
    locale_of,
    profile_errors,
)
from sproutgate.domain.sessions.rules import SessionEndReason
from sproutgate.domain.sessions.service import SessionInfo, SessionService, end_sessions
from sproutgate.infra.admin_token import AdminTokenGuard
from sproutgate.storage.db import Database
from sproutgate.storage.models import AuditEvent, User
from sproutgate.storage.repositories import (
    AuditRepository,
    CodeRepository,
    SessionRepository,
    UserRepository,
)


@dataclass(slots=True)
class UserFields:
    """Admin-settable fields; ``UNSET`` leaves a field as it is."""

    account: object = UNSET
    email: object = UNSET
    password: object = UNSET
    username: object = UNSET
    level: object = UNSET
    sprout_coins: object = UNSET
    secondary_emails: object = UNSET
    phone: object = UNSET
    avatar_url: object = UNSET
    bio: object = UNSET
    disabled: object = UNSET
    role: object = UNSET
    reset_mfa: object = UNSET  # True: turn every second factor off (MfaService.reset_in)
    locale: object = UNSET  # the language of mail to the user: "en" or "zh-CN" (any case)


@dataclass(slots=True)
class UserView:
    """A user with the secondary addresses the SproutGate user object lists."""

    user: User
    secondary_emails: list[str]
    mfa: MfaSummary | None = None


# NewUser fields an admin may set beyond the account, addresses and password.
_SET_AT_CREATION = (
    "username",
    "level",
    "sprout_coins",
    "phone",
    "avatar_url",
    "bio",
    "disabled",
    "role",
    "locale",
)


def _given(f: UserFields, name: str) -> Any:
    """The field's value, or UNSET when it was not sent or sent as null (left as it is)."""
    value = getattr(f, name)
    return UNSET if value is None else value


def _wanted(f: UserFields, clean: dict[str, Any], password_hash: str | None) -> dict[str, Any]:
    """What the request asks for, normalised like the stored values (domain field names)."""
    wanted: dict[str, Any] = {k: clean[k] for k in ("account", "email", "secondary_emails") if k in clean}
    if password_hash is not None:
        wanted["password"] = password_hash
    if _given(f, "username") is not UNSET:
        wanted["username"] = str(f.username).strip()
    for name in ("level", "sprout_coins", "role"):
        if _given(f, name) is not UNSET:
            wanted[name] = getattr(f, name)
    if _given(f, "disabled") is not UNSET:
        wanted["disabled"] = bool(f.disabled)
    for name in ("phone", "avatar_url", "bio"):
        if getattr(f, name) is not UNSET:
            wanted[name] = getattr(f, name) or None  # "" or null clears
    if f.locale is not UNSET:
        wanted["locale"] = locale_of(f.locale)  # checked by _validate: a language we speak
    if f.reset_mfa is True:
        wanted["reset_mfa"] = True  # an action, not a stored field: always a change
    return wanted


def _stored(user: User, secondary_emails: list[str]) -> dict[str, Any]:
    return {
        "account": user.account,
        "email": user.email,
        "username": user.username,
        "level": user.level,
        "sprout_coins": user.sprout_coins,
        "secondary_emails": secondary_emails,
        "phone": user.phone,
        "avatar_url": user.avatar_url,
        "bio": user.bio,
        "disabled": user.disabled,
        "role": user.role,
        "locale": user.locale,
    }


def _defaults(account: str) -> dict[str, Any]:
    """What a new user would be without the request: ``NewUser``'s defaults (the account,
    address and password are always the request's own)."""
    blank = NewUser(email="", password_hash="")
    return {
        "username": account,
        "level": blank.level,
        "sprout_coins": blank.sprout_coins,
        "secondary_emails": list(blank.secondary_emails),
        "phone": blank.phone,
        "avatar_url": blank.avatar_url,
        "bio": blank.bio,
        "disabled": blank.disabled,
        "role": blank.role,
        "locale": blank.locale,
    }


async def user_by_address_or_account(users: UserRepository, text: str) -> User:
    """The user an administrator names (``sproutgate user promote|demote|reset-mfa``): text
    with an ``@`` is any address the user signs in with, the primary one or a verified
    secondary one, in the accounts rules' one normalized form (``sign_in_key`` →
    ``normalize_email``: case, NFC and the ``xn--`` / Unicode spellings of a domain agree), as
    sign-in looks it up; other text is an account name, any case. Raises
    NotFound("user_not_found")."""
    key = sign_in_key(text)
    user = await (users.by_email(key) if "@" in key else users.by_account(key))
    if user is None:
        raise NotFound("user_not_found")
    return user


class AdminService:
    def __init__(
        self,
        db: Database,
        accounts: AccountService,
        privacy: PrivacyService,
        clock: Clock,
        mfa: MfaService | None = None,
    ) -> None:
        """``privacy``: deletes users (the rule path of a user deleting their own account);
        ``mfa``: second factors, summarised on every user view and reset on request."""
        self.privacy = privacy
        self.mfa = mfa
        self.db = db
        self.accounts = accounts
        self.clock = clock

    async def _with_mfa(self, views: list[UserView]) -> list[UserView]:
        if self.mfa is None:
            return views
        summaries = await self.mfa.summaries([v.user.id for v in views])
        for view in views:
            view.mfa = summaries.get(view.user.id, MfaSummary())
        return views

    def _audit(
        self, s, actor: str, action: str, target: str | None, details: dict[str, Any] | None, ip: str | None
    ) -> None:  # type: ignore[no-untyped-def]
        AuditRepository(s).add(
            AuditEvent(at=self.clock.now(), actor=actor, action=action, target=target, details=details, ip=ip)
        )

    async def list_users(self, q: str | None, page: int, page_size: int) -> tuple[int, list[UserView]]:
        page = max(1, page)
        page_size = max(1, min(500, page_size))
        async with self.db.read() as s:
            repo = UserRepository(s)
            q = q.strip() if q else None
            total, users = await repo.list_admin(
                unicodedata.normalize("NFC", q).lower() if q else None,
                (page - 1) * page_size,
                page_size,
                name_q=display_name_lower(q) if q else None,
                address_q=address_search_key(q) if q else None,  # any spelling of an address
            )
            extra = await repo.secondary_emails_for([u.id for u in users])
        return total, await self._with_mfa([UserView(u, extra.get(u.id, [])) for u in users])

    async def get_user(self, account: str) -> UserView:
        async with self.db.read() as s:
            repo = UserRepository(s)
            user = await repo.by_account(account)
            if user is None:
                raise NotFound("user_not_found")
            view = UserView(user, await repo.secondary_emails(user.id))
        return (await self._with_mfa([view]))[0]

    def _validate(self, f: UserFields, creating: bool) -> dict[str, Any]:
        errors: dict[str, str] = {}
        clean: dict[str, Any] = {}
        if f.account is not UNSET:
            try:
                clean["account"] = require_account(str(f.account))
            except InvalidInput:
                errors["account"] = "invalid_account"
        if f.email is not UNSET:
            try:
                clean["email"] = normalize_email(str(f.email))
            except InvalidInput:
                errors["email"] = "invalid_email"
        if f.password is not UNSET:
            problem = self.accounts.policy.problems(str(f.password))
            if problem:
                errors["password"] = problem
        if f.secondary_emails is not UNSET:
            emails: list[str] = []
            # The faces' schemas hand a list of strings here.
            for e in cast(Iterable[object], f.secondary_emails or []):
                try:
                    emails.append(normalize_email(str(e)))
                except InvalidInput:
                    errors["secondary_emails"] = "invalid_email"
            clean["secondary_emails"] = list(dict.fromkeys(emails))
        for name in ("level", "sprout_coins"):
            value = getattr(f, name)
            if value is not UNSET and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                errors[name] = "invalid_value"
        if f.role is not UNSET and f.role not in ("user", "admin"):
            errors["role"] = "invalid_value"
        errors.update(
            profile_errors(
                ProfileChanges(
                    username=f.username, avatar_url=f.avatar_url, bio=f.bio, phone=f.phone, locale=f.locale
                ),
                SPROUTGATE_PROFILE,
            )
        )
        if creating:
            for required in ("account", "email", "password"):
                if getattr(f, required) is UNSET and required not in errors:
                    errors[required] = "field_required"
        if f.reset_mfa is not UNSET and f.reset_mfa is not None and not isinstance(f.reset_mfa, bool):
            errors["reset_mfa"] = "invalid_value"
        if creating and f.reset_mfa is not UNSET:
            errors["reset_mfa"] = "invalid_value"
        if errors:
            raise InvalidInput(errors)
        return clean

    async def create_user(self, f: UserFields, actor: str, ip: str | None = None) -> UserView:
        """Create a user through ``accounts.service.add_user`` (the one creation path, with
        ``NewUser``'s defaults for what is not given) and audit it: the fields that differ from
        those defaults. Raises InvalidInput, Conflict(account_taken | email_taken)."""
        clean = self._validate(f, creating=True)
        password_hash = await self.accounts.hasher.hash(str(f.password))
        wanted = _wanted(f, clean, password_hash)
        changed = changed_fields(wanted, _defaults(clean["account"]))
        new = NewUser(
            email=clean["email"],
            password_hash=password_hash,
            account=clean["account"],
            secondary_emails=tuple(clean.get("secondary_emails", ())),
            **{k: v for k, v in changed.items() if k in _SET_AT_CREATION},
        )
        async with self.db.write() as s:
            user = await add_user(s, new, self.clock.now(), self.accounts.holds)
            self._audit(s, actor, "user.create", user.account, audit_details(changed), ip)
        return (await self._with_mfa([UserView(user, list(new.secondary_emails))]))[0]

    async def update_user(self, account: str, f: UserFields, actor: str, ip: str | None = None) -> UserView:
        """Change what differs from the stored user, in one transaction, and audit exactly that
        (``admin.rules.audit_details``), whichever face asked. A new password or disabling ends
        the user's sessions and every outstanding code; an address that leaves the account
        (primary replaced, secondary dropped) ends the codes mailed to it; a new primary address
        follows ``accounts.rules.secondaries_after_primary_change``; ``reset_mfa`` turns the
        user's second factors off and ends their sessions. The user is mailed a notice of each
        security change (password, addresses, primary address, disabling, second factors) in
        *their* language, never the administrator's.
        Raises NotFound, InvalidInput, Conflict(email_taken | account_taken)."""
        clean = self._validate(f, creating=False)
        password_hash = await self.accounts.hasher.hash(str(f.password)) if f.password is not UNSET else None
        async with self.db.write() as s:
            users = UserRepository(s)
            user = await users.by_account(account)
            if user is None:
                raise NotFound("user_not_found")
            await self._change(s, user, _wanted(f, clean, password_hash), actor, ip)
            secondary = await users.secondary_emails(user.id)
        self.accounts.outbox.notify()
        return (await self._with_mfa([UserView(user, secondary)]))[0]

    async def _change(
        self,
        s: AsyncSession,
        user: User,
        wanted: dict[str, Any],
        actor: str,
        ip: str | None,
    ) -> bool:
        """Apply ``wanted`` to ``user`` inside ``s`` and add its audit record, and queue the
        user's notices (call ``outbox.notify`` after the commit). Returns whether second factors
        were reset."""
        users = UserRepository(s)
        secondaries_before = await users.secondary_emails(user.id)
        addresses_before = {user.email, *secondaries_before}
        changed = changed_fields(wanted, _stored(user, secondaries_before))
        now = self.clock.now()
        if "account" in changed:
            # Other apps key their data on the account name: it never changes once given.
            raise InvalidInput({"account": "account_immutable"})
        listed = wanted.get("secondary_emails")
        holds = self.accounts.holds  # a deleted account's addresses count as taken
        old_primary = user.email
        was_disabled = user.disabled
        if "email" in changed:
            owner = await users.email_owner(changed["email"])
            if (owner is not None and owner != user.id) or (
                owner is None and await holds.email_held(s, changed["email"])
            ):
                raise Conflict("email_taken")
            await replace_primary_email(users, user, changed["email"], now, keep=listed or ())
        if listed is not None:
            for e in listed:
                owner = await users.email_owner(e)
                if (owner is not None and owner != user.id) or e == user.email:
                    raise Conflict("email_taken")
                if owner is None and await holds.email_held(s, e):
                    raise Conflict("email_taken")
            if set(listed) != set(await users.secondary_emails(user.id)):
                await users.replace_secondary_emails(user.id, listed, now)
        if "password" in changed:
            user.password_hash = changed["password"]
            await end_sessions(s, user.id, now, SessionEndReason.ADMIN_PASSWORD)
        if "username" in changed:
            user.username = changed["username"]
            user.username_lower = display_name_lower(user.username)
        for name in ("level", "sprout_coins", "role", "phone", "avatar_url", "bio", "locale"):
            if name in changed:
                setattr(user, name, changed[name])
        if "disabled" in changed:
            user.disabled = changed["disabled"]
            if user.disabled:
                await end_sessions(s, user.id, now, SessionEndReason.DISABLED)
        user.updated_at = now
        try:
            await s.flush()
        except IntegrityError as exc:
            raise Conflict("email_taken") from exc
        if "password" in changed or user.disabled:
            await end_outstanding_codes(CodeRepository(s), user.id)
        else:
            gone = addresses_before - {user.email, *await users.secondary_emails(user.id)}
            await end_outstanding_codes(CodeRepository(s), user.id, sent_to=gone)
        await self._notify(s, user, changed, old_primary, secondaries_before, was_disabled)
        reset = False
        if "reset_mfa" in changed and self.mfa is not None:
            reset = await self.mfa.reset_in(s, user)
        self._audit(s, actor, "user.update", user.account, audit_details(changed), ip)
        return reset

    async def _notify(
        self,
        s: AsyncSession,
        user: User,
        changed: dict[str, Any],
        old_primary: str,
        secondaries_before: Sequence[str],
        was_disabled: bool,
    ) -> None:
        """The notices an administrator's change owes the user (``Notices``, by an
        administrator), in their language: one per security-relevant change."""
        notices = self.accounts.notices
        if user.disabled and not was_disabled:
            await notices.account_disabled(s, user)
            return  # a disabled account signs in no more: the other changes are moot to it
        secondaries_after = await UserRepository(s).secondary_emails(user.id)
        if user.email != old_primary:
            await notices.primary_changed(
                s, user, old_primary, BY_ADMIN, old_kept=old_primary in secondaries_after
            )
        moved = {old_primary, user.email}
        for address in sorted(set(secondaries_after) - set(secondaries_before) - moved):
            await notices.address_added(s, user, address, BY_ADMIN)
        for address in sorted(set(secondaries_before) - set(secondaries_after) - moved):
            await notices.address_removed(s, user, address, BY_ADMIN)
        if "password" in changed:
            await notices.password_changed(s, user, BY_ADMIN)

    async def delete_user(self, account: str, actor: str, ip: str | None = None) -> None:
        """Delete a user the way a user deletes their own account (``PrivacyService``): every
        session, token, code and chat ends at once, the addresses and the account name are held,
        the audit trail records ``user.delete`` by ``actor``, the address gets a notice.
        Raises NotFound(user_not_found)."""
        await self.privacy.delete_account_by_admin(account, actor, ip)

    async def user_sessions(self, account: str) -> tuple[UserView, list[SessionInfo]]:
        """The user named ``account`` and their active sessions, newest first (the list the user
        sees: ``SessionService.list_for_user``). Raises NotFound(user_not_found)."""
        view = await self.get_user(account)
        return view, await self.accounts.sessions.list_for_user(view.user.id)

    async def end_user_session(
        self, account: str, session_id: str, actor: str, ip: str | None = None
    ) -> None:
        """End one active session of the user named ``account`` (its access and refresh tokens
        stop at once, through ``sessions.service.end_sessions``) and audit it as
        ``user.session.revoke`` with the session's id, in one transaction; the user is mailed a
        notice (``Notices.session_revoked_by_admin``).
        Raises NotFound(user_not_found), SessionNotFound (not an active session of that user)."""
        async with self.db.write() as s:
            user = await UserRepository(s).by_account(account)
            if user is None:
                raise NotFound("user_not_found")
            await self.accounts.sessions.end_active_session(
                s, user.id, session_id, SessionEndReason.ADMIN_REVOKED
            )
            self._audit(s, actor, "user.session.revoke", user.account, {"session": session_id}, ip)
            ended = await SessionRepository(s).get(session_id)
            if ended is not None:  # the user is told which session, in their language
                await self.accounts.notices.session_revoked_by_admin(
                    s, user, RevokedSession(ended.created_at, ended.ip, ended.user_agent)
                )
        self.accounts.outbox.notify()

    async def set_role(self, email_or_account: str, role: str, actor: str) -> User:
        """Give the user (``user_by_address_or_account``) ``role``: an update like any other,
        audited the same way. Raises NotFound, InvalidInput for an unknown role."""
        self._validate(UserFields(role=role), creating=False)
        async with self.db.write() as s:
            user = await user_by_address_or_account(UserRepository(s), email_or_account)
            await self._change(s, user, {"role": role}, actor, None)
        return user

    async def reset_mfa(self, email_or_account: str, actor: str) -> tuple[User, bool]:
        """Turn every second factor of a user (``user_by_address_or_account``) off (a
        locked-out user's way back in): their sessions end, a notice is mailed, the change is
        audited. Returns the user and whether they had a factor on. Raises NotFound."""
        if self.mfa is None:
            raise NotFound("user_not_found")
        async with self.db.write() as s:
            user = await user_by_address_or_account(UserRepository(s), email_or_account)
            had = await self.mfa.reset_in(s, user)
            self._audit(s, actor, "user.mfa.reset", user.account, {"hadFactors": had}, None)
        if had:
            self.mfa.outbox.notify()
        return user, had

    async def record(
        self, actor: str, action: str, target: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        """Add an audit event for a change made outside this service (CLI, import)."""
        async with self.db.write() as s:
            self._audit(s, actor, action, target, details, None)

    async def audit_log(self, limit: int = 100, offset: int = 0) -> list[AuditEvent]:
        async with self.db.read() as s:
            return await AuditRepository(s).latest(limit, offset)


ADMIN_TOKEN_ACTOR = "admin-token"  # the audit trail's actor for changes made with the admin token


class AdminAccess:
    """The one check of administrator credentials, whichever face presents them (the SproutGate
    admin API, the admin console's sign-in): the admin token, compared in constant time, or an
    admin-role user's access token. Failures are throttled per client address."""

    def __init__(self, guard: AdminTokenGuard, sessions: SessionService, limiter: RateLimits) -> None:
        self.guard = guard
        self.sessions = sessions
        self.limiter = limiter

    async def authenticate(self, ip: str, tokens: Sequence[str | None], bearer: str | None = None) -> str:
        """The actor to audit: ``ADMIN_TOKEN_ACTOR`` when one of ``tokens`` (or ``bearer``) is the
        admin token, ``user:<account>`` when ``bearer`` is the access token of an admin-role user.

        Raises RateLimited when ``ip`` failed too often (checked before any comparison), else
        NotAuthenticated("admin_token_required"), counting one failure for ``ip``."""
        await self.limiter.check("admin_auth_fail_ip", ip)
        for candidate in (*tokens, bearer):
            if candidate and self.guard.matches(candidate):
                return ADMIN_TOKEN_ACTOR
        if bearer:
            try:
                principal = await self.sessions.authenticate(bearer)
            except DomainError:
                principal = None
            if principal is not None and principal.user.role == "admin":
                return f"user:{principal.user.account}"
        await self.limiter.hit("admin_auth_fail_ip", ip)
        raise NotAuthenticated("admin_token_required")

    def token_fingerprint(self) -> str:
        """SHA-256 (hex) of the current admin token: it changes when the token is rotated, so
        whatever is bound to it (the console cookie) ends with the rotation."""
        return hashlib.sha256(self.guard.token.encode()).hexdigest()
