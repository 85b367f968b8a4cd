"""Account rules: sign-up with emailed codes, sign-in, password reset and change, profile,
secondary emails and search. Both API faces and the pages call these; none of them holds a rule.

Security invariants kept here, not in routes:
- sign-up, resend and reset answer the same whether or not the address is registered, and do
  the same expensive work either way (a taken address gets a notice mail instead of a code);
- unknown accounts are verified against a dummy hash, so they cost as much as a wrong password;
- passwords are hashed before a transaction opens, never while holding the SQLite write lock;
- failed sign-ins are counted per account+IP, per account and per IP, keyed on what was typed;
- a contested sign-up (a second attempt with another password while one is pending) creates
  the account without a usable password: nobody who has not proved control of the mailbox ever
  chose the password of the account its owner verifies;
- recovery channels (secondary addresses) are added only with the current password or a recent
  sign-in, and the primary address is told when one is added or removed;
- a user's outstanding codes end whenever the credential they protect changes
  (``codes.service.end_outstanding_codes``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.config import Settings
from sproutgate.domain.accounts.errors import (
    AccountDisabled,
    InvalidCredentials,
    RecentAuthRequired,
    WrongCurrentPassword,
    WrongPassword,
)
from sproutgate.domain.accounts.rules import (
    KNOWN_CLIENT_SECONDS,
    NewUser,
    PasswordPolicy,
    account_base_from_email,
    allowed_redirect,
    failure_key,
    has_usable_password,
    normalize_email,
    parse_redirect_entries,
    require_account,
    require_all,
    secondaries_after_primary_change,
    sign_in_key,
    unusable_password_hash,
)
from sproutgate.domain.clock import Clock
from sproutgate.domain.codes.errors import InvalidCode
from sproutgate.domain.codes.rules import CodePurpose, require_code_shape
from sproutgate.domain.codes.service import CodeService, end_outstanding_codes
from sproutgate.domain.context import CallerContext
from sproutgate.domain.errors import Conflict, InvalidInput, NotFound, RateLimited
from sproutgate.domain.limits import RateLimits
from sproutgate.domain.mail.notices import Notices, user_lang
from sproutgate.domain.mail.service import Outbox
from sproutgate.domain.metrics import NO_METRICS, Metrics, SignInOutcome
from sproutgate.domain.mfa.errors import MfaRequired
from sproutgate.domain.mfa.service import MfaService
from sproutgate.domain.privacy.holds import IdentifierHolds
from sproutgate.domain.profiles.errors import UserNotFound
from sproutgate.domain.profiles.rules import (
    SPROUTGATE_PROFILE,
    ProfileChanges,
    ProfileRules,
    apply_profile,
    display_name_lower,
    profile_errors,
    require_valid_profile,
)
from sproutgate.domain.sessions.rules import SessionEndReason, SessionKind
from sproutgate.domain.sessions.service import IssuedSession, Principal, SessionService, end_sessions
from sproutgate.i18n import LANGS
from sproutgate.infra.hasher import PasswordHasher
from sproutgate.storage.db import Database
from sproutgate.storage.models import PendingSignup, User
from sproutgate.storage.repositories import (
    CodeRepository,
    PendingSignupRepository,
    SessionRows,
    UserRepository,
    known_client,
    known_client_now,
    lock_for_transaction,
    login_candidate,
    login_candidate_now,
    user_from_row,
)

log = logging.getLogger(__name__)


# -- the one way a user is created, and the one way a primary address is replaced ------------
async def add_user(
    s: AsyncSession, new: NewUser, now: datetime, holds: IdentifierHolds | None = None
) -> User:
    """Create the user ``new`` describes, with its addresses, inside the caller's transaction:
    the only place a ``users`` row is built (sign-up, admin create, import).

    ``holds``: the addresses and names of deleted accounts (``domain/privacy/holds.py``), which
    count as taken; sign-up and administrators pass it, the importer (an operator bringing an
    old installation over on purpose) does not.

    Raises Conflict(email_taken) when the address or a secondary one belongs to anyone (or a
    secondary repeats the primary) or is held, Conflict(account_taken) for a taken or held
    account name; the caller's transaction then rolls back."""
    users = UserRepository(s)
    if await users.email_owner(new.email) is not None:
        raise Conflict("email_taken")
    for address in new.secondary_emails:
        if address == new.email or await users.email_owner(address) is not None:
            raise Conflict("email_taken")
    if holds is not None and await holds.email_held(s, new.email, *new.secondary_emails):
        raise Conflict("email_taken")
    account = new.account
    if account is None:
        account = await _unique_account(users, new.email, holds)
    elif not await account_free(users, account, holds):
        raise Conflict("account_taken")
    created = new.created_at or now
    username = new.username or account
    user = User(
        account=account,
        account_lower=account.lower(),
        email=new.email,
        username=username,
        username_lower=display_name_lower(username),
        password_hash=new.password_hash,
        role=new.role,
        disabled=new.disabled,
        level=new.level,
        sprout_coins=new.sprout_coins,
        phone=new.phone,
        avatar_url=new.avatar_url,
        bio=new.bio,
        locale=new.locale,
        email_confirmed_at=created,
        created_at=created,
        updated_at=new.updated_at or created,
    )
    try:
        users.add(user)
        await s.flush()
        await users.add_email(user.id, new.email, True, created)
        for address in dict.fromkeys(new.secondary_emails):
            await users.add_email(user.id, address, False, created)
        await s.flush()
    except IntegrityError as exc:
        # A concurrent transaction took the name or an address after our check (PostgreSQL
        # runs them in parallel); the whole transaction rolls back.
        raise Conflict("account_taken" if "account_lower" in str(exc.orig) else "email_taken") from exc
    return user


async def account_free(users: UserRepository, account: str, holds: IdentifierHolds | None = None) -> bool:
    """Whether ``account`` (any case) is neither taken nor, with ``holds``, held for a deleted
    account."""
    if await users.account_taken(account.lower()):
        return False
    return holds is None or not await holds.account_held(users.s, account)


async def _unique_account(users: UserRepository, email: str, holds: IdentifierHolds | None = None) -> str:
    base = account_base_from_email(email) or "user"
    # Two sign-ups whose addresses give the same name (alice@a.example, alice@b.example)
    # verified at once on PostgreSQL: the second waits here for the first to commit, then
    # sees the name taken and takes a numbered one, instead of failing on the unique index.
    await lock_for_transaction(users.s, f"account:{base.lower()}")
    if base != "user" and await account_free(users, base, holds):
        return base
    for _ in range(20):
        candidate = f"{base[:26]}{secrets.randbelow(10**6):d}"
        if await account_free(users, candidate, holds):
            return candidate
    return f"user{secrets.token_hex(6)}"


async def replace_primary_email(
    users: UserRepository, user: User, new_primary: str, now: datetime, keep: Sequence[str] = ()
) -> None:
    """Make ``new_primary`` (normalised, not owned by anyone else: the caller checks) the user's
    primary address, inside the caller's transaction, by the one rule
    ``accounts.rules.secondaries_after_primary_change``: a secondary address being promoted
    stops being one, the old primary address is dropped unless ``keep`` (the secondary
    addresses the same change names) lists it, and the codes mailed to a dropped address end
    (``codes.service.end_outstanding_codes``). Nothing happens when it is the same address."""
    old_primary = user.email
    if new_primary == old_primary:
        return
    before = await users.secondary_emails(user.id)
    after = secondaries_after_primary_change(old_primary, before, new_primary, keep)
    await users.remove_secondary_emails(user.id, [e for e in before if e not in after])
    await users.set_primary_email(user, new_primary, now)  # the old primary row goes here
    for address in after:
        if address not in before:  # the old primary address, kept as a secondary one
            await users.add_email(user.id, address, False, now)
    if old_primary not in after:
        # It left the account: a code mailed to it no longer protects anything of this user.
        await end_outstanding_codes(CodeRepository(users.s), user.id, sent_to=[old_primary])
    await users.s.flush()  # sessions do not autoflush: later reads in the transaction see this


class AccountService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        hasher: PasswordHasher,
        codes: CodeService,
        sessions: SessionService,
        limiter: RateLimits,
        outbox: Outbox,
        clock: Clock,
        holds: IdentifierHolds,
        metrics: Metrics = NO_METRICS,
        mfa: MfaService | None = None,
        *,
        notices: Notices,
    ) -> None:
        """``notices``: every mail this service sends (codes and notices).
        ``mfa``: second factors; when given, a sign-in of a user with one on ends its password
        step with ``MfaRequired`` (see ``login``). ``holds``: the addresses and names of deleted
        accounts, unavailable for a while (``domain/privacy/holds.py``); every "is it taken"
        check here asks it too."""
        self.mfa = mfa
        self.notices = notices
        self.settings = settings
        self.metrics = metrics
        self.db = db
        self.hasher = hasher
        self.codes = codes
        self.sessions = sessions
        self.limiter = limiter
        self.outbox = outbox
        self.clock = clock
        self.holds = holds
        self.redirect_targets, warnings = parse_redirect_entries(settings.allowed_redirects)
        for warning in warnings:
            log.warning(warning)
        self.policy = PasswordPolicy(
            settings.password_min_length, settings.password_max_length, settings.password_check_common
        )

    # -- helpers ------------------------------------------------------------------------------
    def _link(self, path: str, **params: str) -> str:
        return self.notices.link(path, **params)

    async def _mail(self, s: AsyncSession, to: str, kind: str, lang: str, **params: object) -> None:
        """Queue a code (or code-request) mail to ``to`` in ``s``'s transaction. ``lang``: the
        language of the account it concerns when there is one, else the request's."""
        await self.notices.send(s, to, kind, lang, **params)

    async def _lang_of_address(self, s: AsyncSession, email: str, ctx: CallerContext) -> str:
        """The language of mail to ``email``: its owner's when it belongs to an account, else
        the request's (nobody else has said which they read)."""
        owner = await UserRepository(s).by_email(email)
        return user_lang(owner) if owner is not None else ctx.lang

    def _committed(self, code_mailed: CodePurpose | None = None) -> None:
        """After a transaction that queued mail committed: wake the worker, count the code."""
        self.outbox.notify()
        if code_mailed is not None:
            self.metrics.code_mailed(code_mailed)

    def allowed_redirect(self, redirect_to: str | None) -> str | None:
        """The redirect if SPROUTGATE_ALLOWED_REDIRECTS permits it, else None (never an open
        redirect); the rule is ``accounts.rules.allowed_redirect``."""
        return allowed_redirect(redirect_to, self.redirect_targets)

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
        rules: ProfileRules = SPROUTGATE_PROFILE,
    ) -> datetime:
        """Register a pending sign-up and mail its code. Returns the code's expiry.

        A second attempt for an address whose sign-up is pending replaces the pending one (its
        fields, a new code); when it comes with another password the sign-up is *contested*
        and ``complete_signup`` creates the account without a usable password, so neither party
        gets an account whose password the other chose. The same password again is the same
        person: not contested.

        Raises InvalidInput, Conflict(account_taken) for a taken account name (account names are
        public), RateLimited. A registered email answers exactly like a new one."""
        require_all(
            lambda: normalize_email(email),
            lambda: require_valid_profile(ProfileChanges(username=username), rules),
            lambda: self.policy.require(password, "password"),
            lambda: account is None or require_account(account, "account"),
        )
        email = normalize_email(email)
        username = username.strip()
        # Counted before the account name is looked up: whether a name is taken (409, names
        # are public) is answered only as fast as code requests are (per client address).
        await self._code_rate_limits(email, ctx)
        if account is not None:
            async with self.db.read() as s:
                if not await account_free(UserRepository(s), account, self.holds):
                    raise Conflict("account_taken")
        prior = await self._pending_password(email)
        password_hash = await self.hasher.hash(password)
        # Is this the person who started the pending sign-up? One password check either way (a
        # dummy one when nothing is pending), so the time taken does not tell.
        if prior is not None:
            same_person = await self.hasher.verify(prior[1], password)
        else:
            await self.hasher.burn(password)
            same_person = False
        now = self.clock.now()
        expires = now + timedelta(seconds=self.settings.code_ttl_seconds)
        mailed = None
        async with self.db.write() as s:
            # Concurrent sign-ups for one address queue here instead of racing on its pending row.
            await CodeRepository(s).lock(CodePurpose.SIGNUP.value, email)
            users = UserRepository(s)
            if await users.email_owner(email) is not None:
                await self._mail(
                    s,
                    email,
                    "signup_existing",
                    await self._lang_of_address(s, email, ctx),
                    email=email,
                    link=self._link("/forgot-password", email=email),
                )
            elif await self.holds.email_held(s, email):
                # The address of an account deleted within the hold: answered like a taken one.
                await self._mail(s, email, "signup_held", ctx.lang, email=email)
            else:
                pendings = PendingSignupRepository(s)
                old = await pendings.by_email(email)
                contested = False
                if old is not None:
                    # Another live attempt, unless it is the one whose password was just checked
                    # (a pending row that changed meanwhile counts as another attempt).
                    contested = old.expires_at > now and not (
                        same_person and prior is not None and prior[0] == old.id
                    )
                    await pendings.delete(old)
                    await s.flush()
                pendings.add(
                    PendingSignup(
                        email=email,
                        account=account,
                        account_lower=account.lower() if account else None,
                        username=username,
                        password_hash=unusable_password_hash() if contested else password_hash,
                        redirect_to=self.allowed_redirect(redirect_to),
                        # The language of mail to the new user; a contested sign-up's is the
                        # verifying request's (neither party's start is trusted with it).
                        locale=None if contested else ctx.lang,
                        created_at=now,
                        expires_at=now + timedelta(seconds=self.settings.pending_signup_ttl_seconds),
                    )
                )
                expires = await self._mail_signup_code(s, email, ctx)
                mailed = CodePurpose.SIGNUP
            await self._count_code_mail(s, email)
        self._committed(mailed)
        return expires

    async def _mail_signup_code(self, s: AsyncSession, email: str, ctx: CallerContext) -> datetime:
        """Issue a sign-up code for ``email`` (replacing the last) and queue its mail in the
        caller's transaction; returns the code's expiry."""
        code, expires = await self.codes.issue(CodeRepository(s), CodePurpose.SIGNUP, email)
        await self._mail(
            s, email, "signup_code", ctx.lang, code=code, link=self._link("/register/verify", email=email)
        )
        return expires

    async def _pending_password(self, email: str) -> tuple[str, str] | None:
        """Id and stored password hash of the live pending sign-up for ``email``, if any."""
        async with self.db.read() as s:
            pending = await PendingSignupRepository(s).by_email(email)
        if pending is None or pending.expires_at <= self.clock.now():
            return None
        return pending.id, pending.password_hash

    async def resend_signup_code(self, email: str, ctx: CallerContext) -> None:
        """Mail a fresh code for a pending sign-up, replacing the previous one. Silent otherwise."""
        email = normalize_email(email)
        await self._code_rate_limits(email, ctx)
        now = self.clock.now()
        mailed = None
        async with self.db.write() as s:
            pending = await PendingSignupRepository(s).by_email(email)
            if pending is not None and pending.expires_at > now:
                await self._mail_signup_code(s, email, ctx)
                mailed = CodePurpose.SIGNUP
            await self._count_code_mail(s, email)
        self._committed(mailed)

    async def complete_signup(
        self,
        code: str,
        ctx: CallerContext,
        *,
        email: str | None = None,
        account: str | None = None,
        session: SessionKind | None = None,
    ) -> tuple[User, IssuedSession | None, str | None]:
        """Check the sign-up code and create the user, and in the same transaction a session of
        kind ``session`` when one is given.

        A contested sign-up (see ``start_signup``) creates the user without a usable password
        (``rules.has_usable_password`` is False) and mails a reset code to choose one; the
        person who entered the code proved control of the mailbox, so the session still opens.

        Returns the user, the session and the allowed redirect. Raises InvalidCode,
        Conflict(account_taken) when the name was claimed meanwhile, RateLimited."""
        await self.limiter.hit("verify_ip", ctx.ip)
        require_all(lambda: require_code_shape(code), lambda: email is None or normalize_email(email))
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
                if await users.email_owner(pending.email) is not None or await self.holds.email_held(
                    s, pending.email
                ):
                    await pendings.delete(pending)
                    failed = True
                else:
                    user = await add_user(
                        s,
                        NewUser(
                            email=pending.email,
                            password_hash=pending.password_hash,
                            account=pending.account,
                            username=pending.username,
                            locale=pending.locale if pending.locale in LANGS else ctx.lang,
                        ),
                        self.clock.now(),
                        self.holds,
                    )
                    redirect = pending.redirect_to
                    await pendings.delete(pending)
                    if not has_usable_password(user.password_hash):
                        await self._mail_set_password_code(s, user, ctx)
                    issued = None
                    if session is not None:
                        issued = await self.sessions.issue_session(
                            s, user, session, ip=ctx.ip, user_agent=ctx.user_agent
                        )
                        # The client that signed up is known at its next sign-in: no notice.
                        issued.device_cookie, _ = await self.sessions.remember_device(s, user, session, ctx)
                    result = (user, issued, redirect)
        if failed or result is None:
            raise InvalidCode()
        if not has_usable_password(result[0].password_hash):
            self._committed(CodePurpose.RESET)  # the code that sets a first password
        return result

    async def _mail_set_password_code(self, s: AsyncSession, user: User, ctx: CallerContext) -> None:
        """Mail the owner of a just created account without a password a reset code to choose one."""
        code, _ = await self.codes.issue(CodeRepository(s), CodePurpose.RESET, user.email, user.id)
        await self._mail(
            s,
            user.email,
            "signup_set_password",
            user_lang(user),
            code=code,
            account=user.account,
            link=self._link("/forgot-password/confirm", email=user.email),
        )

    # -- sign-in ------------------------------------------------------------------------------
    async def login(
        self,
        identifier: str,
        password: str,
        ctx: CallerContext,
        kind: SessionKind,
    ) -> IssuedSession:
        """Open a session of ``kind`` for the owner of ``identifier``: an email (primary or
        verified secondary) or an account name.

        Failures are counted per client address, per account and client address, and per
        account (NIST SP 800-63B-4 §3.2.2: at most 100 consecutive failures); the per-account
        count does not apply to a client address that signed in to the account successfully
        within ``KNOWN_CLIENT_SECONDS``, and a password change starts fresh counts
        (``failure_key``), so nobody can lock the owner out.

        Raises InvalidCredentials (same answer, same cost for unknown accounts), AccountDisabled
        only after a correct password, MfaRequired after a correct password when a second factor
        is on (its ``mfa_token`` goes to ``MfaService.complete_sign_in``), RateLimited.

        Every outcome is counted (``Metrics.sign_in``)."""
        try:
            issued = await self._login(identifier, password, ctx, kind)
        except InvalidCredentials:
            self.metrics.sign_in(SignInOutcome.WRONG_PASSWORD)
            raise
        except AccountDisabled:
            self.metrics.sign_in(SignInOutcome.DISABLED)
            raise
        except RateLimited:
            self.metrics.sign_in(SignInOutcome.RATE_LIMITED)
            raise
        except MfaRequired:
            self.metrics.sign_in(SignInOutcome.SECOND_FACTOR_REQUIRED)
            raise
        self.metrics.sign_in(SignInOutcome.SUCCESS)
        return issued

    async def _login(
        self,
        identifier: str,
        password: str,
        ctx: CallerContext,
        kind: SessionKind,
    ) -> IssuedSession:
        """The sign-in itself; ``login`` counts how it ended."""
        typed = sign_in_key(identifier)
        await self.limiter.check("login_fail_ip", ctx.ip)
        # Two indexed reads as Core statements (inline on SQLite), the same for unknown
        # identifiers: besides the hash, a sign-in should cost next to nothing.
        since = self.clock.now() - timedelta(seconds=KNOWN_CLIENT_SECONDS)
        if self.db.reads_now:
            conn = self.db.read_now()
            found = login_candidate_now(conn, typed)
            known = known_client_now(conn, found["id"] if found else "", ctx.ip, since)
        else:
            async with self.db.read() as s:
                found = await login_candidate(s, typed)
                known = await known_client(s, found["id"] if found else "", ctx.ip, since)
        key = failure_key(typed, found["id"] if found else None, found["password_hash"] if found else None)
        await self.limiter.check("login_fail_account_ip", key, ctx.ip)
        if not known:
            await self.limiter.check("login_fail_account", key)
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
                await end_sessions(s, user_id, self.clock.now(), SessionEndReason.DISABLED)
            raise AccountDisabled()
        stored_hash = found["password_hash"]
        new_hash = await self.hasher.hash(password) if self.hasher.needs_rehash(stored_hash) else None
        # Core statements (inline on SQLite): after the hash, this is all a sign-in waits on.
        second_step: MfaRequired | None = None
        issued: IssuedSession | None = None
        async with self.db.write_now() as run:
            rows = SessionRows(run)
            values = await rows.active_user(user_id)
            if values is None:
                raise InvalidCredentials()
            if new_hash:
                await rows.set_password_hash(user_id, new_hash)
                values["password_hash"] = new_hash
            # A second factor on: the password step ends with an mfa_token instead of a session
            # (MfaService.complete_sign_in opens it).
            if self.mfa is not None:
                second_step = await self.mfa.open_challenge(run, user_id, kind)
            if second_step is None:
                issued = await self.sessions.open_signed_in(run, user_from_row(values), kind, ctx)
        # Consecutive failures end with a success (NIST SP 800-63B-4 §3.2.2).
        await self.limiter.reset("login_fail_account", key)
        await self.limiter.reset("login_fail_account_ip", key, ctx.ip)
        if second_step is not None:
            raise second_step
        assert issued is not None
        return issued

    # -- password reset -----------------------------------------------------------------------
    async def request_password_reset(
        self, email: str, ctx: CallerContext, account: str | None = None, redirect_to: str | None = None
    ) -> datetime:
        """Mail a reset code when the address (and account, if given) belong to an active user,
        else a notice that no account can be reset with it. Either way the request writes one
        code row and one sealed mail, so that neither the answer nor the time it takes tells
        whether the address is registered (a decoy code stands in for the real one). Returns
        the code's expiry."""
        email = normalize_email(email)
        await self._code_rate_limits(email, ctx)
        expires = self.clock.now() + timedelta(seconds=self.settings.code_ttl_seconds)
        mailed = None
        async with self.db.write() as s:
            user = await UserRepository(s).by_email(email)
            if user is not None and account is not None and user.account_lower != account.lower():
                user = None
            if user is not None and not user.disabled:
                code, expires = await self.codes.issue(CodeRepository(s), CodePurpose.RESET, email, user.id)
                await self._mail(
                    s,
                    email,
                    "reset_code",
                    user_lang(user),
                    code=code,
                    link=self._link("/forgot-password/confirm", email=email),
                )
                mailed = CodePurpose.RESET
            else:
                _, expires = await self.codes.issue(CodeRepository(s), CodePurpose.DECOY, email)
                await self._mail(
                    s,
                    email,
                    "reset_unknown",
                    await self._lang_of_address(s, email, ctx),
                    email=email,
                    link=self._link("/register"),
                )
            await self._count_code_mail(s, email)
        self._committed(mailed)
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
        """Check a reset code and set the new password; every session and every other outstanding
        code of the user ends and a notice is mailed. A code whose credential changed between
        the check and the write (password set meanwhile, address gone, account disabled) is
        refused. Raises InvalidInput, InvalidCode, RateLimited."""
        await self.limiter.hit("verify_ip", ctx.ip)
        require_all(
            lambda: self.policy.require(new_password, "new_password"),
            lambda: require_code_shape(code),
            lambda: email is None or normalize_email(email),
        )
        row = None
        checked_hash = None
        async with self.db.write() as s:
            codes = CodeRepository(s)
            if email is not None:
                row = await self.codes.consume(codes, CodePurpose.RESET, normalize_email(email), code)
            else:
                user = await UserRepository(s).by_account(account or "")
                if user is not None:
                    for candidate in (await codes.current_for_user(CodePurpose.RESET.value, user.id))[:1]:
                        row = await self.codes.consume(codes, CodePurpose.RESET, candidate.email, code)
            if row is not None and row.user_id is not None:
                owner = await UserRepository(s).get(row.user_id)
                checked_hash = owner.password_hash if owner is not None else None
        if row is None or row.user_id is None or checked_hash is None:
            raise InvalidCode()
        password_hash = await self.hasher.hash(new_password)
        async with self.db.write() as s:
            users = UserRepository(s)
            user = await users.get(row.user_id)
            # The code protected the credential as it was when checked: not a password set since,
            # an address no longer the user's, or a disabled account.
            if (
                user is None
                or user.disabled
                or user.password_hash != checked_hash
                or await users.email_owner(row.email) != user.id
            ):
                raise InvalidCode()
            now = self.clock.now()
            user.password_hash = password_hash
            user.updated_at = now
            await end_outstanding_codes(CodeRepository(s), user.id)
            await end_sessions(s, user.id, now, SessionEndReason.PASSWORD_RESET)
            await self.notices.password_changed(s, user, ctx)
        self.outbox.notify()
        if self.mfa is not None:  # the password's failure counts start afresh by its new hash
            await self.mfa.forget_failures(user.id)
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
        """The rule for changing a credential (the password, or adding a secondary address that
        can sign in and receive reset codes): the current password, or a sign-in within
        ``recent_auth_seconds``. Raises WrongCurrentPassword (counted like a failed sign-in),
        RecentAuthRequired."""
        user = principal.user
        if current_password is not None:
            key = failure_key(user.account_lower, user.id, user.password_hash)
            await self.limiter.check("login_fail_account", key)
            if not await self.hasher.verify(user.password_hash, current_password):
                await self.limiter.hit("login_fail_account", key)
                raise WrongCurrentPassword()
            return
        auth_time = await self.sessions.session_auth_time(principal.session_id)
        if auth_time is None or self.clock.now() - auth_time > timedelta(
            seconds=self.settings.recent_auth_seconds
        ):
            raise RecentAuthRequired()

    async def verify_own_password(self, principal: Principal, password: str, ctx: CallerContext) -> None:
        """Re-authenticate the signed-in caller with their password before an irreversible
        operation (deleting the account), whatever the age of their sign-in.

        Counted exactly like a sign-in with that password: a failure counts per client address,
        per account and client address, and per account (``failure_key``; a client address
        that signed in successfully lately is exempt from the per-account count), and the same
        limits refuse further tries. Raises WrongPassword, RateLimited."""
        user = principal.user
        key = failure_key(user.account_lower, user.id, user.password_hash)
        since = self.clock.now() - timedelta(seconds=KNOWN_CLIENT_SECONDS)
        async with self.db.read() as s:
            known = await known_client(s, user.id, ctx.ip, since)
        await self.limiter.check("login_fail_ip", ctx.ip)
        await self.limiter.check("login_fail_account_ip", key, ctx.ip)
        if not known:
            await self.limiter.check("login_fail_account", key)
        if len(password) > self.settings.password_max_length * 4:
            await self.hasher.burn(password[:1024])
            ok = False
        else:
            ok = await self.hasher.verify(user.password_hash, password)
        if not ok:
            await self.limiter.hit("login_fail_account_ip", key, ctx.ip)
            await self.limiter.hit("login_fail_account", key)
            await self.limiter.hit("login_fail_ip", ctx.ip)
            raise WrongPassword()

    async def update_own_profile(
        self,
        principal: Principal,
        changes: ProfileChanges,
        ctx: CallerContext,
        *,
        new_password: str | None = None,
        current_password: str | None = None,
        rules: ProfileRules = SPROUTGATE_PROFILE,
    ) -> User:
        """Apply the caller's profile changes and, when ``new_password`` is given, change the
        password in the same transaction: nothing is written unless every part is allowed.

        A password change needs ``current_password`` or a sign-in within
        ``recent_auth_seconds``; it ends the caller's other sessions and every outstanding code
        of the user, and mails a notice.
        Raises InvalidInput (all field errors at once), WrongCurrentPassword,
        RecentAuthRequired, RateLimited, NotFound."""
        errors = profile_errors(changes, rules)
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
                raise UserNotFound()
            now = self.clock.now()
            apply_profile(live, changes)
            live.updated_at = now
            if password_hash is not None:
                live.password_hash = password_hash
                await end_outstanding_codes(CodeRepository(s), live.id)
                await end_sessions(
                    s, live.id, now, SessionEndReason.PASSWORD_CHANGED, keep=principal.session_id
                )
                await self.notices.password_changed(s, live, ctx)
        if password_hash is not None:
            self.outbox.notify()
        return live

    # -- secondary emails ---------------------------------------------------------------------
    async def request_secondary_email(
        self, principal: Principal, email: str, ctx: CallerContext, current_password: str | None = None
    ) -> datetime:
        """Mail a code to a new address for the caller. A secondary address signs in and
        receives reset codes, so adding one follows the rule of a password change: it needs
        ``current_password`` or a sign-in within ``recent_auth_seconds``. An address already in
        use by anyone gets no code but a notice, and a decoy code row is written, so neither the
        answer nor its time tells (no enumeration). The code is the caller's: another user
        asking for the same address neither replaces nor burns it.

        Raises InvalidInput, WrongCurrentPassword, RecentAuthRequired, RateLimited."""
        email = normalize_email(email)
        await self._authorize_password_change(principal, current_password)
        return await self._code_to_new_address(
            principal,
            email,
            ctx,
            CodePurpose.SECONDARY_EMAIL,
            "secondary_code",
            "secondary_taken",
            own_ok=False,
        )

    async def verify_secondary_email(
        self, principal: Principal, email: str, code: str, ctx: CallerContext
    ) -> User:
        """Attach a verified secondary address (the caller's own code only) and tell the primary
        address. Raises InvalidCode, Conflict(email_taken), RateLimited."""
        await self.limiter.hit("verify_ip", ctx.ip)
        require_all(lambda: normalize_email(email), lambda: require_code_shape(code))
        email = normalize_email(email)
        taken = False
        user: User | None = None
        async with self.db.write() as s:
            row = await self.codes.consume(
                CodeRepository(s), CodePurpose.SECONDARY_EMAIL, email, code, user_id=principal.user.id
            )
            if row is not None:
                users = UserRepository(s)
                user = await users.get(principal.user.id)
                if user is None:
                    row = None
                elif await users.email_owner(email) is not None or await self.holds.email_held(s, email):
                    taken = True
                else:
                    await users.add_email(user.id, email, False, self.clock.now())
                    user.updated_at = self.clock.now()
                    await self.notices.address_added(s, user, email, ctx)
        if taken:
            raise Conflict("email_taken")
        if row is None or user is None:
            raise InvalidCode()
        self.outbox.notify()
        return user

    async def remove_secondary_email(self, principal: Principal, email: str, ctx: CallerContext) -> User:
        """Detach one of the caller's secondary addresses: it no longer signs in, its
        outstanding codes end, and the primary address gets a notice.

        Raises InvalidInput (a malformed address; ``primary_email`` for the primary one),
        NotFound(email_not_found) when it is not one of the caller's secondary addresses
        (whoever else may own it), UserNotFound."""
        email = normalize_email(email)
        async with self.db.write() as s:
            users = UserRepository(s)
            user = await users.get(principal.user.id)
            if user is None:
                raise UserNotFound()
            if email == user.email:
                raise InvalidInput({"email": "primary_email"})
            if not await users.remove_secondary_email(user.id, email):
                raise NotFound("email_not_found")
            await end_outstanding_codes(CodeRepository(s), user.id, sent_to=[email])
            user.updated_at = self.clock.now()
            await self.notices.address_removed(s, user, email, ctx)
        self.outbox.notify()
        return user

    # -- changing the primary address ---------------------------------------------------------
    async def request_primary_email_change(
        self, principal: Principal, new_email: str, ctx: CallerContext, current_password: str | None = None
    ) -> datetime:
        """Mail a code to the address the caller wants as their primary one. The primary address
        signs in and receives reset codes, so the rule of a password change applies: the current
        password, or a sign-in within ``recent_auth_seconds``. An address that belongs to anyone
        else (or is held for a deleted account) gets no code but a notice, and a decoy code row
        is written, so neither the answer nor its time tells (no enumeration); such a change
        never completes. Rate limited like every code request. The code is the caller's only.
        One of the caller's own secondary addresses may become the primary one (it is promoted,
        ``secondaries_after_primary_change``).

        Returns the code's expiry. Raises InvalidInput (malformed; ``same_email`` for the
        current primary address), WrongCurrentPassword, RecentAuthRequired, RateLimited."""
        email = normalize_email(new_email)
        if email == principal.user.email:
            raise InvalidInput({"email": "same_email"})
        await self._authorize_password_change(principal, current_password)
        return await self._code_to_new_address(
            principal,
            email,
            ctx,
            CodePurpose.PRIMARY_EMAIL,
            "primary_change_code",
            "primary_change_taken",
            own_ok=True,
        )

    async def _code_to_new_address(
        self,
        principal: Principal,
        email: str,
        ctx: CallerContext,
        purpose: CodePurpose,
        code_mail: str,
        taken_mail: str,
        *,
        own_ok: bool,
    ) -> datetime:
        """Mail the caller a ``purpose`` code at ``email`` (normalized) when the address is free
        (no account, no hold after a deletion; with ``own_ok`` also when it is already one of the
        caller's); otherwise write a decoy code row and mail the address's owner the
        ``taken_mail`` notice instead, so that neither the answer nor its time tells whether the
        address is in use. Rate limited like every code request. Returns the code's expiry."""
        await self._code_rate_limits(email, ctx)
        expires = self.clock.now() + timedelta(seconds=self.settings.code_ttl_seconds)
        mailed = None
        async with self.db.write() as s:
            owner = await UserRepository(s).email_owner(email)
            free = owner is None and not await self.holds.email_held(s, email)
            if free or (own_ok and owner == principal.user.id):
                code, expires = await self.codes.issue(CodeRepository(s), purpose, email, principal.user.id)
                await self._mail(
                    s, email, code_mail, user_lang(principal.user), code=code, account=principal.user.account
                )
                mailed = purpose
            else:
                _, expires = await self.codes.issue(CodeRepository(s), CodePurpose.DECOY, email)
                await self._mail(
                    s, email, taken_mail, await self._lang_of_address(s, email, ctx), email=email
                )
            await self._count_code_mail(s, email)
        self._committed(mailed)
        return expires

    async def confirm_primary_email_change(
        self, principal: Principal, new_email: str, code: str, ctx: CallerContext
    ) -> User:
        """Check the caller's code for ``new_email`` and make it their primary address by the one
        rule (``replace_primary_email``): the old address stops signing in and the codes sent to
        it end; it gets a notice naming the new one. Sessions stay.

        Raises InvalidInput (malformed address or code), InvalidCode (wrong, expired, used up,
        someone else's, or a decoy), Conflict(email_taken) when the address was taken meanwhile,
        RateLimited."""
        await self.limiter.hit("verify_ip", ctx.ip)
        require_all(lambda: normalize_email(new_email), lambda: require_code_shape(code))
        email = normalize_email(new_email)
        taken = False
        user: User | None = None
        async with self.db.write() as s:
            row = await self.codes.consume(
                CodeRepository(s), CodePurpose.PRIMARY_EMAIL, email, code, user_id=principal.user.id
            )
            if row is not None:
                users = UserRepository(s)
                user = await users.get(principal.user.id)
                owner = await users.email_owner(email)
                if user is None or user.disabled:
                    row = None
                elif (owner is not None and owner != user.id) or (
                    owner is None and await self.holds.email_held(s, email)
                ):
                    taken = True
                elif email != user.email:
                    old = user.email
                    now = self.clock.now()
                    await replace_primary_email(users, user, email, now)
                    user.updated_at = now
                    # Both addresses are told, in the user's language (domain/mail/notices.py).
                    await self.notices.primary_changed(s, user, old, ctx)
        if taken:
            raise Conflict("email_taken")
        if row is None or user is None:
            raise InvalidCode()
        self.outbox.notify()
        return user
