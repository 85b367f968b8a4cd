"""Account rules: sign-up with emailed codes, sign-in, password reset and change, profile,
secondary emails and search. Both API faces and the pages call these; none of them holds a rule.

Security invariants kept here, not in routes:
- sign-up, resend and reset answer the same whether or not the address is registered, and do
  the same expensive work either way (a taken address gets a notice mail instead of a code);
- unknown accounts are verified against a dummy hash, so they cost as much as a wrong password;
- passwords are hashed before a transaction opens, never while holding the SQLite write lock;
- failed sign-ins are counted per account+IP, per account and per IP, keyed on what was typed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate import i18n
from sproutgate.config import Settings
from sproutgate.domain.clock import Clock
from sproutgate.domain.codes.service import CodePurpose, CodeService
from sproutgate.domain.context import CallerContext
from sproutgate.domain.errors import (
    AccountDisabled,
    Conflict,
    Forbidden,
    InvalidCode,
    InvalidCredentials,
    InvalidInput,
    NotFound,
    RecentAuthRequired,
    WrongCurrentPassword,
)
from sproutgate.domain.accounts.rules import (
    CODE_RE,
    PasswordPolicy,
    account_base_from_email,
    display_name_lower,
    normalize_email,
    require_account,
    require_http_url,
    require_length,
    require_phone,
)
from sproutgate.domain.sessions.service import IssuedSession, Principal, SessionService
from sproutgate.infra.hasher import PasswordHasher
from sproutgate.infra.mailer import Outbox
from sproutgate.infra.ratelimit import RateLimiter
from sproutgate.storage.db import Database
from sproutgate.storage.models import PendingSignup, User
from sproutgate.storage.repositories import (
    CodeRepository,
    OutboxRepository,
    PendingSignupRepository,
    SessionRepository,
    SessionRows,
    UserRepository,
    lock_for_transaction,
    login_candidate,
    login_candidate_now,
    user_from_row,
)
from sproutgate.storage.search import ConnectionSearchRows, SessionSearchRows, search_users

UNSET = object()


@dataclass(slots=True)
class ProfileChanges:
    """Fields to change; ``UNSET`` leaves a field alone, None clears an optional one."""

    username: object = UNSET
    avatar_url: object = UNSET
    bio: object = UNSET
    phone: object = UNSET


class AccountService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        hasher: PasswordHasher,
        codes: CodeService,
        sessions: SessionService,
        limiter: RateLimiter,
        outbox: Outbox,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.db = db
        self.hasher = hasher
        self.codes = codes
        self.sessions = sessions
        self.limiter = limiter
        self.outbox = outbox
        self.clock = clock
        self.policy = PasswordPolicy(
            settings.password_min_length, settings.password_max_length, settings.password_check_common
        )

    # -- helpers ------------------------------------------------------------------------------
    def _link(self, path: str, **params: str) -> str:
        query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
        return f"{self.settings.public_url.rstrip('/')}{path}" + (f"?{query}" if query else "")

    def _mail(self, s, to: str, kind: str, lang: str, **params: object) -> None:  # type: ignore[no-untyped-def]
        params.setdefault("minutes", self.settings.code_ttl_seconds // 60)
        subject, body = i18n.mail(kind, lang, **params)
        self.outbox.enqueue(OutboxRepository(s), to, subject, body, kind)

    def allowed_redirect(self, redirect_to: str | None) -> str | None:
        """The redirect if it is on the allow-list, else None (never an open redirect)."""
        if not redirect_to:
            return None
        for allowed in self.settings.allowed_redirects:
            if redirect_to == allowed or (allowed.endswith("*") and redirect_to.startswith(allowed[:-1])):
                return redirect_to
        return None

    async def _code_rate_limits(self, email: str, ctx: CallerContext) -> None:
        """Before any work: count the request against the caller's address, and refuse early
        when the email address has had all the code mail it may have. The address is counted
        by ``_count_code_mail``, at the end of the transaction that queues the mail."""
        await self.limiter.hit("code_request_ip", ctx.ip)
        await self.limiter.check("code_mail_address", email)

    async def _count_code_mail(self, s: AsyncSession, email: str) -> None:
        """Count one code mail for ``email`` once the transaction's work is done, just before it
        commits (counted whether or not a mail was queued: the answer must not tell). Over the
        limit, RateLimited rolls the transaction back; a request the database could not serve
        (503) uses up nothing, so a retry after an outage is not refused for a minute."""
        await s.flush()
        await self.limiter.hit("code_mail_address", email)

    # -- sign-up ------------------------------------------------------------------------------
    async def start_signup(
        self,
        email: str,
        password: str,
        username: str,
        ctx: CallerContext,
        account: str | None = None,
        redirect_to: str | None = None,
        username_min: int = 1,
    ) -> datetime:
        """Register a pending sign-up and mail its code. Returns the code's expiry.

        Raises InvalidInput, Conflict(account_taken) for a taken account name (account names are
        public), RateLimited. A registered email answers exactly like a new one."""
        email = normalize_email(email)
        self.policy.require(password)
        username = require_length(username.strip(), "username", username_min, 30)
        if account is not None:
            require_account(account, "account")
            async with self.db.read() as s:
                if await UserRepository(s).account_taken(account.lower()):
                    raise Conflict("account_taken")
        await self._code_rate_limits(email, ctx)
        password_hash = await self.hasher.hash(password)
        now = self.clock.now()
        expires = now + timedelta(seconds=self.settings.code_ttl_seconds)
        async with self.db.write() as s:
            # Concurrent sign-ups for one address queue here instead of racing on its pending row.
            await CodeRepository(s).lock(CodePurpose.SIGNUP.value, email)
            users = UserRepository(s)
            if await users.email_owner(email) is not None:
                self._mail(
                    s,
                    email,
                    "signup_existing",
                    ctx.lang,
                    email=email,
                    link=self._link("/forgot-password", email=email),
                )
            else:
                pendings = PendingSignupRepository(s)
                old = await pendings.by_email(email)
                if old is not None:
                    await pendings.delete(old)
                    await s.flush()
                pendings.add(
                    PendingSignup(
                        email=email,
                        account=account,
                        account_lower=account.lower() if account else None,
                        username=username,
                        password_hash=password_hash,
                        redirect_to=self.allowed_redirect(redirect_to),
                        created_at=now,
                        expires_at=now + timedelta(seconds=self.settings.pending_signup_ttl_seconds),
                    )
                )
                code, expires = await self.codes.issue(CodeRepository(s), CodePurpose.SIGNUP, email)
                self._mail(
                    s,
                    email,
                    "signup_code",
                    ctx.lang,
                    code=code,
                    link=self._link("/register/verify", email=email),
                )
            await self._count_code_mail(s, email)
        self.outbox.notify()
        return expires

    async def resend_signup_code(self, email: str, ctx: CallerContext) -> None:
        """Mail a fresh code for a pending sign-up, replacing the previous one. Silent otherwise."""
        email = normalize_email(email)
        await self._code_rate_limits(email, ctx)
        now = self.clock.now()
        async with self.db.write() as s:
            pending = await PendingSignupRepository(s).by_email(email)
            if pending is not None and pending.expires_at > now:
                code, _ = await self.codes.issue(CodeRepository(s), CodePurpose.SIGNUP, email)
                self._mail(
                    s,
                    email,
                    "signup_code",
                    ctx.lang,
                    code=code,
                    link=self._link("/register/verify", email=email),
                )
            await self._count_code_mail(s, email)
        self.outbox.notify()

    async def complete_signup(
        self,
        code: str,
        ctx: CallerContext,
        *,
        email: str | None = None,
        account: str | None = None,
        open_session: bool = True,
        session_kind: str = "runtime",
    ) -> tuple[User, IssuedSession | None, str | None]:
        """Check the sign-up code and create the user (and a session when asked).

        Returns the user, the session and the allowed redirect. Raises InvalidCode,
        Conflict(account_taken) when the name was claimed meanwhile, RateLimited."""
        await self.limiter.hit("verify_ip", ctx.ip)
        if not CODE_RE.match(code):
            raise InvalidCode()
        failed = False
        result: tuple[User, IssuedSession | None, str | None] | None = None
        async with self.db.write() as s:
            pendings = PendingSignupRepository(s)
            if email is not None:
                candidates = [p for p in [await pendings.by_email(normalize_email(email))] if p]
            else:
                candidates = await pendings.by_account(account or "")
            pending = None
            for candidate in candidates[:1]:
                if await self.codes.consume(CodeRepository(s), CodePurpose.SIGNUP, candidate.email, code):
                    pending = candidate
            if pending is None or pending.expires_at <= self.clock.now():
                failed = True
            else:
                users = UserRepository(s)
                if await users.email_owner(pending.email) is not None:
                    await pendings.delete(pending)
                    failed = True
                else:
                    user = await self._create_user(
                        s,
                        email=pending.email,
                        account=pending.account,
                        username=pending.username,
                        password_hash=pending.password_hash,
                    )
                    redirect = pending.redirect_to
                    await pendings.delete(pending)
                    session = None
                    if open_session:
                        session = await self.sessions.issue_session(
                            s, user, kind=session_kind, ip=ctx.ip, user_agent=ctx.user_agent
                        )
                    result = (user, session, redirect)
        if failed or result is None:
            raise InvalidCode()
        return result

    async def _unique_account(self, users: UserRepository, email: str) -> str:
        base = account_base_from_email(email) or "user"
        # Two sign-ups whose addresses give the same name (alice@a.example, alice@b.example)
        # verified at once on PostgreSQL: the second waits here for the first to commit, then
        # sees the name taken and takes a numbered one, instead of failing on the unique index.
        await lock_for_transaction(users.s, f"account:{base.lower()}")
        if base != "user" and not await users.account_taken(base.lower()):
            return base
        for _ in range(20):
            candidate = f"{base[:26]}{secrets.randbelow(10**6):d}"
            if not await users.account_taken(candidate.lower()):
                return candidate
        return f"user{secrets.token_hex(6)}"

    async def _create_user(
        self,
        s,  # type: ignore[no-untyped-def]
        *,
        email: str,
        account: str | None,
        username: str,
        password_hash: str,
        **fields: object,
    ) -> User:
        users = UserRepository(s)
        if account is None:
            account = await self._unique_account(users, email)
        elif await users.account_taken(account.lower()):
            raise Conflict("account_taken")
        now = self.clock.now()
        user = User(
            account=account,
            account_lower=account.lower(),
            email=email,
            username=username,
            username_lower=display_name_lower(username),
            password_hash=password_hash,
            role="user",
            disabled=False,
            level=0,
            sprout_coins=0,
            email_confirmed_at=now,
            created_at=now,
            updated_at=now,
        )
        for key, value in fields.items():
            setattr(user, key, value)
        try:
            users.add(user)
            await s.flush()
            await users.add_email(user.id, email, True, now)
            await s.flush()
        except IntegrityError as exc:
            # A concurrent transaction took the name or the address after our check (PostgreSQL
            # runs them in parallel); the whole transaction rolls back, the code stays usable.
            raise Conflict("account_taken" if "account_lower" in str(exc.orig) else "email_taken") from exc
        return user

    # -- sign-in ------------------------------------------------------------------------------
    async def login(
        self,
        identifier: str,
        password: str,
        ctx: CallerContext,
        *,
        session_kind: str = "runtime",
        with_refresh: bool = True,
        ttl_seconds: int | None = None,
    ) -> IssuedSession:
        """Sign in with an email (primary or verified secondary) or an account name.

        Raises InvalidCredentials (same answer, same cost for unknown accounts), AccountDisabled
        only after a correct password, RateLimited."""
        key = identifier.strip().lower()[:320]
        await self.limiter.check("login_fail_account_ip", key, ctx.ip)
        await self.limiter.check("login_fail_account", key)
        await self.limiter.check("login_fail_ip", ctx.ip)
        # One indexed read of three columns, as a Core statement (inline on SQLite): besides the
        # hash, a sign-in should cost next to nothing.
        if self.db.reads_now:
            found = login_candidate_now(self.db.read_now(), key)
        else:
            async with self.db.read() as s:
                found = await login_candidate(s, key)
        if found is None or len(password) > self.settings.password_max_length * 4:
            await self.hasher.burn(password[:1024])
            ok = False
        else:
            ok = await self.hasher.verify(found["password_hash"], password)
        if not ok or found is None:
            await self.limiter.hit("login_fail_account_ip", key, ctx.ip)
            await self.limiter.hit("login_fail_account", key)
            await self.limiter.hit("login_fail_ip", ctx.ip)
            raise InvalidCredentials()
        user_id = found["id"]
        if found["disabled"]:
            # Sessions of a disabled user are refused anyway; end them for good, so that
            # re-enabling the account never revives a token issued before.
            async with self.db.write() as s:
                await SessionRepository(s).revoke_all(user_id, self.clock.now(), "disabled")
            raise AccountDisabled()
        stored_hash = found["password_hash"]
        new_hash = await self.hasher.hash(password) if self.hasher.needs_rehash(stored_hash) else None
        # Core statements (inline on SQLite): after the hash, this is all a sign-in waits on.
        async with self.db.write_now() as run:
            rows = SessionRows(run)
            values = await rows.active_user(user_id)
            if values is None:
                raise InvalidCredentials()
            if new_hash:
                await rows.set_password_hash(user_id, new_hash)
                values["password_hash"] = new_hash
            issued = await self.sessions.issue_session(
                run,
                user_from_row(values),
                kind=session_kind,
                ip=ctx.ip,
                user_agent=ctx.user_agent,
                with_refresh=with_refresh,
                ttl_seconds=ttl_seconds,
            )
        return issued

    # -- password reset -----------------------------------------------------------------------
    async def request_password_reset(
        self, email: str, ctx: CallerContext, account: str | None = None, redirect_to: str | None = None
    ) -> datetime:
        """Mail a reset code when the address (and account, if given) belong to an active user.
        Answers the same either way. Returns the nominal expiry."""
        email = normalize_email(email)
        await self._code_rate_limits(email, ctx)
        expires = self.clock.now() + timedelta(seconds=self.settings.code_ttl_seconds)
        async with self.db.write() as s:
            user = await UserRepository(s).by_email(email)
            if user is not None and account is not None and user.account_lower != account.lower():
                user = None
            if user is not None and not user.disabled:
                code, expires = await self.codes.issue(CodeRepository(s), CodePurpose.RESET, email, user.id)
                self._mail(
                    s,
                    email,
                    "reset_code",
                    ctx.lang,
                    code=code,
                    link=self._link("/forgot-password/confirm", email=email),
                )
            await self._count_code_mail(s, email)
        self.outbox.notify()
        return expires

    async def confirm_password_reset(
        self,
        code: str,
        new_password: str,
        ctx: CallerContext,
        *,
        email: str | None = None,
        account: str | None = None,
    ) -> User:
        """Check a reset code and set the new password; every session of the user ends and a
        notice is mailed. Raises InvalidInput, InvalidCode, RateLimited."""
        await self.limiter.hit("verify_ip", ctx.ip)
        self.policy.require(new_password, "new_password" if email is not None else "newPassword")
        if not CODE_RE.match(code):
            raise InvalidCode()
        row = None
        async with self.db.write() as s:
            codes = CodeRepository(s)
            if email is not None:
                row = await self.codes.consume(codes, CodePurpose.RESET, normalize_email(email), code)
            else:
                user = await UserRepository(s).by_account(account or "")
                if user is not None:
                    for candidate in (await codes.current_for_user(CodePurpose.RESET.value, user.id))[:1]:
                        row = await self.codes.consume(codes, CodePurpose.RESET, candidate.email, code)
        if row is None or row.user_id is None:
            raise InvalidCode()
        password_hash = await self.hasher.hash(new_password)
        async with self.db.write() as s:
            user = await UserRepository(s).get(row.user_id)
            if user is None:
                raise InvalidCode()
            now = self.clock.now()
            user.password_hash = password_hash
            user.updated_at = now
            await SessionRepository(s).revoke_all(user.id, now, "password_reset")
            self._mail(
                s,
                user.email,
                "password_changed",
                ctx.lang,
                account=user.account,
                link=self._link("/forgot-password", email=user.email),
            )
        self.outbox.notify()
        return user

    async def change_password(
        self, principal: Principal, new_password: str, ctx: CallerContext, current_password: str | None = None
    ) -> User:
        """Change the caller's password. Needs the current password, or a sign-in within
        ``recent_auth_seconds``. Ends the caller's other sessions and mails a notice.
        Raises InvalidInput, WrongCurrentPassword, RecentAuthRequired, RateLimited."""
        return await self.update_own_profile(
            principal, ProfileChanges(), ctx, new_password=new_password, current_password=current_password
        )

    async def _authorize_password_change(self, principal: Principal, current_password: str | None) -> None:
        """Raises WrongCurrentPassword (counted like a failed sign-in), RecentAuthRequired."""
        user = principal.user
        if current_password is not None:
            await self.limiter.check("login_fail_account", user.account_lower)
            if not await self.hasher.verify(user.password_hash, current_password):
                await self.limiter.hit("login_fail_account", user.account_lower)
                raise WrongCurrentPassword()
            return
        auth_time = await self.sessions.session_auth_time(principal.session_id)
        if auth_time is None or self.clock.now() - auth_time > timedelta(
            seconds=self.settings.recent_auth_seconds
        ):
            raise RecentAuthRequired()

    async def update_own_profile(
        self,
        principal: Principal,
        changes: ProfileChanges,
        ctx: CallerContext,
        *,
        new_password: str | None = None,
        current_password: str | None = None,
        **limits: int,
    ) -> User:
        """Apply the caller's profile changes and, when ``new_password`` is given, change the
        password in the same transaction: nothing is written unless every part is allowed.

        A password change needs ``current_password`` or a sign-in within
        ``recent_auth_seconds``; it ends the caller's other sessions and mails a notice.
        Raises InvalidInput (all field errors at once), WrongCurrentPassword,
        RecentAuthRequired, RateLimited, NotFound."""
        errors: dict[str, str] = {}
        try:
            self.validate_profile(changes, **limits)
        except InvalidInput as exc:
            errors.update(exc.fields)
        if new_password is not None:
            problem = self.policy.problems(new_password)
            if problem:
                errors["password"] = problem
        if errors:
            raise InvalidInput(errors)
        password_hash = None
        if new_password is not None:
            await self._authorize_password_change(principal, current_password)
            password_hash = await self.hasher.hash(new_password)
        async with self.db.write() as s:
            live = await UserRepository(s).get(principal.user.id)
            if live is None:
                raise NotFound("user_not_found")
            now = self.clock.now()
            self._apply_profile(live, changes)
            live.updated_at = now
            if password_hash is not None:
                live.password_hash = password_hash
                await SessionRepository(s).revoke_all(
                    live.id, now, "password_changed", except_id=principal.session_id
                )
                self._mail(
                    s,
                    live.email,
                    "password_changed",
                    ctx.lang,
                    account=live.account,
                    link=self._link("/forgot-password", email=live.email),
                )
        if password_hash is not None:
            self.outbox.notify()
        return live

    # -- profile ------------------------------------------------------------------------------
    def validate_profile(
        self, changes: ProfileChanges, *, bio_max: int = 2000, username_min: int = 1
    ) -> None:
        errors: dict[str, str] = {}
        if changes.username is not UNSET:
            name = changes.username
            if not isinstance(name, str) or not username_min <= len(name.strip()) <= 30:
                errors["username"] = "invalid_length"
        if changes.avatar_url not in (UNSET, None, ""):
            try:
                require_http_url(str(changes.avatar_url), "avatar_url")
            except InvalidInput:
                errors["avatar_url"] = "invalid_url"
        if changes.bio not in (UNSET, None) and len(str(changes.bio)) > bio_max:
            errors["bio"] = "too_long"
        if changes.phone not in (UNSET, None, ""):
            try:
                require_phone(str(changes.phone))
            except InvalidInput:
                errors["phone"] = "invalid_phone"
        if errors:
            raise InvalidInput(errors)

    async def update_profile(self, user_id: str, changes: ProfileChanges, **limits: int) -> User:
        """Apply profile changes after validating them. Raises InvalidInput, NotFound."""
        self.validate_profile(changes, **limits)
        async with self.db.write() as s:
            user = await UserRepository(s).get(user_id)
            if user is None:
                raise NotFound("user_not_found")
            self._apply_profile(user, changes)
            user.updated_at = self.clock.now()
        return user

    @staticmethod
    def _apply_profile(user: User, changes: ProfileChanges) -> None:
        if changes.username is not UNSET:
            user.username = str(changes.username).strip()
            user.username_lower = display_name_lower(user.username)
        if changes.avatar_url is not UNSET:
            user.avatar_url = changes.avatar_url or None  # type: ignore[assignment]
        if changes.bio is not UNSET:
            user.bio = changes.bio  # type: ignore[assignment]
        if changes.phone is not UNSET:
            user.phone = changes.phone or None  # type: ignore[assignment]

    async def secondary_emails(self, user_id: str) -> list[str]:
        async with self.db.read() as s:
            return await UserRepository(s).secondary_emails(user_id)

    # -- secondary emails ---------------------------------------------------------------------
    async def request_secondary_email(self, principal: Principal, email: str, ctx: CallerContext) -> datetime:
        """Mail a code to a new address for the caller. An address already in use by anyone
        gets no code, and the answer is the same (no enumeration)."""
        email = normalize_email(email)
        await self._code_rate_limits(email, ctx)
        expires = self.clock.now() + timedelta(seconds=self.settings.code_ttl_seconds)
        async with self.db.write() as s:
            if await UserRepository(s).email_owner(email) is None:
                code, expires = await self.codes.issue(
                    CodeRepository(s), CodePurpose.SECONDARY_EMAIL, email, principal.user.id
                )
                self._mail(s, email, "secondary_code", ctx.lang, code=code, account=principal.user.account)
            await self._count_code_mail(s, email)
        self.outbox.notify()
        return expires

    async def verify_secondary_email(
        self, principal: Principal, email: str, code: str, ctx: CallerContext
    ) -> User:
        """Attach a verified secondary address. Raises InvalidCode, Conflict(email_taken)."""
        await self.limiter.hit("verify_ip", ctx.ip)
        email = normalize_email(email)
        if not CODE_RE.match(code):
            raise InvalidCode()
        taken = False
        async with self.db.write() as s:
            row = await self.codes.consume(CodeRepository(s), CodePurpose.SECONDARY_EMAIL, email, code)
            if row is not None and row.user_id == principal.user.id:
                users = UserRepository(s)
                if await users.email_owner(email) is not None:
                    taken = True
                else:
                    await users.add_email(principal.user.id, email, False, self.clock.now())
                    user = await users.get(principal.user.id)
                    assert user is not None
                    user.updated_at = self.clock.now()
            else:
                row = None
        if taken:
            raise Conflict("email_taken")
        if row is None:
            raise InvalidCode()
        return user

    # -- lookups ------------------------------------------------------------------------------
    async def user_by_email_for_admin(self, principal: Principal, email: str) -> User:
        """Raises Forbidden for non-admins, NotFound for unknown addresses."""
        if principal.user.role != "admin":
            raise Forbidden()
        email = normalize_email(email)
        async with self.db.read() as s:
            user = await UserRepository(s).by_email(email)
        if user is None:
            raise NotFound("user_not_found")
        return user

    async def search(self, principal: Principal, query: str) -> list[User]:
        """An address (contains @) matches one primary email exactly; anything else is a fuzzy
        display-name match, best first, at most 20. Rate limited per user."""
        await self.limiter.hit("search_user", principal.user.id)
        query = query.strip()
        if not query or "\x00" in query:
            # No stored name holds a NUL (PostgreSQL cannot store one, FTS5 cannot match one).
            return []
        if "@" not in query:
            query = display_name_lower(query)
        if self.db.reads_now:  # SQLite: the statements without the session and ORM around them
            return await search_users(ConnectionSearchRows(self.db.read_now()), query, 20)
        async with self.db.read() as s:
            return await search_users(SessionSearchRows(s), query, 20)
