"""Passkeys (WebAuthn): adding and removing them, signing in with one alone (a discoverable
credential, no account name typed), and one as the second step after a password. The pages'
JSON endpoints call these (API clients cannot perform a ceremony).

Security invariants kept here, not in routes:
- challenges are random (32 bytes), stored only as SHA-256, single use (taken, i.e. deleted,
  by the first response that names them, whatever comes of it), live ``CHALLENGE_TTL_SECONDS``,
  and bound: a registration to its user and session, a passwordless sign-in to the browser
  that asked (a random handle in its cookie), a second step to its password step;
- user verification is required in every ceremony, so a passkey counts as two factors and never
  asks for a code after it; the signature counter never goes back (§6.1.1, also against a
  concurrent assertion) and BE never changes (§6.3.3);
- adding a passkey needs the password or a recent sign-in (``MfaService.reauthenticate``);
  adding and removing mail the owner, and removing ends the owner's other sessions;
- refused assertions count against the same limits as wrong second-factor codes (``mfa_fail_*``),
  and one at a second step counts against its ``mfa_token`` like a wrong code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.config import Settings
from sproutgate.domain.accounts.errors import AccountDisabled
from sproutgate.domain.clock import Clock
from sproutgate.domain.context import CallerContext
from sproutgate.domain.errors import RateLimited
from sproutgate.domain.limits import RateLimits
from sproutgate.domain.mail.notices import FactorChange
from sproutgate.domain.mail.service import Outbox
from sproutgate.domain.metrics import NO_METRICS, Metrics, SignInOutcome, counted_sign_in
from sproutgate.domain.mfa.errors import InvalidMfaToken
from sproutgate.domain.mfa.rules import MFA_TOKEN_MAX_ATTEMPTS, hash_mfa_token
from sproutgate.domain.mfa.service import MfaService, PasskeyInfo
from sproutgate.domain.passkeys.errors import (
    NoPasskeys,
    PasskeyAlreadyRegistered,
    PasskeyChallengeInvalid,
    PasskeyNotFound,
    PasskeyNotRecognized,
    PasskeyRejected,
    TooManyPasskeys,
)
from sproutgate.domain.passkeys.rules import (
    CHALLENGE_TTL_SECONDS,
    MAX_PASSKEYS_PER_USER,
    Ceremony,
    RelyingParty,
    StoredCredential,
    VerifiedAssertion,
    challenge_of,
    creation_options,
    credential_id_of,
    hash_binding,
    hash_challenge,
    new_binding,
    new_challenge,
    new_user_handle,
    passkey_amr,
    request_options,
    require_passkey_name,
    require_user_handle,
    verify_assertion,
    verify_registration,
)
from sproutgate.domain.sessions.rules import SessionEndReason, SessionKind
from sproutgate.domain.sessions.service import IssuedSession, Principal, SessionService, end_sessions
from sproutgate.storage.db import Database
from sproutgate.storage.mfa import MfaRepository
from sproutgate.storage.models import MfaChallenge, Passkey, PasskeyChallenge, User
from sproutgate.storage.passkeys import PasskeyRepository
from sproutgate.storage.repositories import SessionRows, user_from_row
from sproutgate.storage.statements import SessionStatements

log = logging.getLogger(__name__)

# How a passkey step that opened nothing is counted (``counted_sign_in``).
PASSKEY_OUTCOMES: dict[type[Exception], SignInOutcome] = {
    PasskeyChallengeInvalid: SignInOutcome.PASSKEY_REFUSED,
    PasskeyNotRecognized: SignInOutcome.PASSKEY_REFUSED,
    PasskeyRejected: SignInOutcome.PASSKEY_REFUSED,
    AccountDisabled: SignInOutcome.DISABLED,
    RateLimited: SignInOutcome.RATE_LIMITED,
}


@dataclass(frozen=True, slots=True)
class PasskeySignIn:
    """A sign-in completed with a passkey: the session, and the RFC 8176 ``amr`` of the sign-in
    (``["pwd", "hwk", "mfa"]`` after a password, ``["swk", "mfa"]`` for a synced passkey
    alone)."""

    issued: IssuedSession
    amr: list[str]


@dataclass(frozen=True, slots=True)
class _Taken:
    """A challenge as it was when a response took it."""

    challenge: bytes
    purpose: str
    user_id: str | None
    binding_hash: str | None
    user_handle: str | None
    mfa_challenge_id: str | None
    expires_at: datetime


class PasskeyService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        sessions: SessionService,
        mfa: MfaService,
        limiter: RateLimits,
        outbox: Outbox,
        clock: Clock,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        """The relying party is ``settings.public_url``'s host and origin (``RelyingParty``);
        ``mfa`` lends re-authentication, the second-factor limits and the password steps;
        ``metrics`` counts how each passkey sign-in ended (``Metrics.sign_in``)."""
        self.settings = settings
        self.db = db
        self.sessions = sessions
        self.mfa = mfa
        self.limiter = limiter
        self.outbox = outbox
        self.clock = clock
        self.metrics = metrics
        self.rp = RelyingParty.from_public_url(settings.public_url)

    # -- helpers ------------------------------------------------------------------------------
    async def _notice(
        self, s: AsyncSession, user: User, change: FactorChange, ctx: CallerContext, name: str
    ) -> None:
        """A passkey was added or removed: the same notice machinery as every factor change."""
        link = self.mfa.notices.link("/account#passkeys")
        await self.mfa.notices.factor_changed(s, user, change, ctx, name=name, link=link)

    def _new_challenge_row(self, purpose: Ceremony, **bound: Any) -> tuple[bytes, PasskeyChallenge]:
        challenge = new_challenge()
        now = self.clock.now()
        row = PasskeyChallenge(
            challenge_hash=hash_challenge(challenge),
            purpose=purpose.value,
            created_at=now,
            expires_at=now + timedelta(seconds=CHALLENGE_TTL_SECONDS),
            **bound,
        )
        return challenge, row

    async def _take(self, credential: dict[str, Any]) -> _Taken | None:
        """Take (delete) the challenge a response answers, in a transaction of its own that
        commits whatever comes next: a challenge is used up by the first response naming it.
        None when the response names none that is stored."""
        challenge = challenge_of(credential)
        if challenge is None:
            return None
        async with self.db.write() as s:
            row = await PasskeyRepository(s).take_challenge(hash_challenge(challenge))
            if row is None:
                return None
            return _Taken(
                challenge=challenge,
                purpose=row.purpose,
                user_id=row.user_id,
                binding_hash=row.binding_hash,
                user_handle=row.user_handle,
                mfa_challenge_id=row.mfa_challenge_id,
                expires_at=row.expires_at,
            )

    def _live(self, taken: _Taken | None, purpose: Ceremony) -> _Taken:
        """``taken`` when it is a challenge of ``purpose`` still in time; else raises
        PasskeyChallengeInvalid."""
        if taken is None or taken.purpose != purpose.value or taken.expires_at <= self.clock.now():
            raise PasskeyChallengeInvalid()
        return taken

    @staticmethod
    def _stored(passkey: Passkey) -> StoredCredential:
        return StoredCredential(
            credential_id=passkey.credential_id,
            public_key=passkey.public_key,
            sign_count=passkey.sign_count,
            backup_eligible=passkey.backup_eligible,
            user_handle=passkey.user_handle,
        )

    async def _find(self, credential: dict[str, Any]) -> Passkey | None:
        credential_id = credential_id_of(credential)
        if credential_id is None:
            return None
        async with self.db.read() as s:
            return await PasskeyRepository(s).by_credential_id(credential_id)

    async def _open_session(
        self,
        passkey: Passkey,
        verified: VerifiedAssertion,
        ctx: CallerContext,
        kind: SessionKind,
        amr: list[str],
        mfa_challenge: MfaChallenge | None = None,
    ) -> PasskeySignIn:
        """Store the assertion's counter and backup state and open the session signed in as
        ``amr`` says, in one transaction; with ``mfa_challenge``, that password step is used up
        too. Raises
        PasskeyRejected (a concurrent assertion moved the counter first), InvalidMfaToken (the
        password step was used meanwhile), AccountDisabled."""
        now = self.clock.now()
        async with self.db.write() as s:
            if mfa_challenge is not None and not await MfaRepository(s).delete_challenge(mfa_challenge.id):
                raise InvalidMfaToken()
            recorded = await PasskeyRepository(s).record_use(
                passkey.id, passkey.sign_count, verified.sign_count, verified.backup_state, now
            )
            if not recorded:
                raise PasskeyRejected()
            statements = SessionStatements(s)
            values = await SessionRows(statements).active_user(passkey.user_id)
            if values is None:
                raise AccountDisabled()
            # The session records how it was signed in, for the ID tokens of apps (domain/oidc).
            issued = await self.sessions.open_signed_in(
                statements, user_from_row(values), kind, ctx, tuple(amr)
            )
        if issued.mail_queued:  # a new-device notice, now committed
            self.outbox.notify()
        return PasskeySignIn(issued=issued, amr=amr)

    # -- the owner's passkeys -----------------------------------------------------------------
    async def of_user(self, user_id: str) -> list[PasskeyInfo]:
        """The user's passkeys, oldest first (``MfaService.status`` lists them too)."""
        async with self.db.read() as s:
            rows = await PasskeyRepository(s).of_user(user_id)
        return [
            PasskeyInfo(id=p.id, name=p.name, created_at=p.created_at, last_used_at=p.last_used_at)
            for p in rows
        ]

    async def start_registration(
        self, principal: Principal, ctx: CallerContext, password: str | None = None
    ) -> str:
        """Begin adding a passkey: the creation options (JSON, WebAuthn L3 serialization) for
        ``PublicKeyCredential.parseCreationOptionsFromJSON``. Needs ``password`` or a sign-in
        within ``recent_auth_seconds``. The challenge is bound to the user and this session.

        Raises WrongPassword, ReauthenticationRequired, TooManyPasskeys, RateLimited."""
        await self.limiter.check("passkey_options_ip", ctx.ip)
        await self.mfa.reauthenticate(principal, password)
        user = principal.user
        async with self.db.write() as s:
            repo = PasskeyRepository(s)
            existing = await repo.of_user(user.id)
            if len(existing) >= MAX_PASSKEYS_PER_USER:
                raise TooManyPasskeys()
            # One user handle for all of a user's passkeys (an authenticator keeps one
            # discoverable credential per RP ID and user handle; excludeCredentials stops a second).
            handle = existing[0].user_handle if existing else new_user_handle()
            challenge, row = self._new_challenge_row(
                Ceremony.REGISTRATION,
                user_id=user.id,
                binding_hash=hash_binding(principal.session_id),
                user_handle=handle,
            )
            await repo.add_challenge(row)
        await self.limiter.hit("passkey_options_ip", ctx.ip)
        return creation_options(
            self.rp,
            challenge=challenge,
            user_handle=handle,
            account=user.account,
            display_name=user.username,
            exclude=[(p.credential_id, list(p.transports or [])) for p in existing],
        )

    async def finish_registration(
        self, principal: Principal, name: str, credential: dict[str, Any], ctx: CallerContext
    ) -> PasskeyInfo:
        """Add the passkey of a registration response (§7.1) to a challenge from
        ``start_registration`` of this user and session, named ``name``. Mails the owner.

        Raises InvalidInput (the name), PasskeyChallengeInvalid, PasskeyRegistrationFailed,
        PasskeyAlreadyRegistered, TooManyPasskeys."""
        name = require_passkey_name(name)
        user = principal.user
        taken = self._live(await self._take(credential), Ceremony.REGISTRATION)
        if taken.user_id != user.id or taken.binding_hash != hash_binding(principal.session_id):
            raise PasskeyChallengeInvalid()
        assert taken.user_handle is not None  # stored by start_registration
        new = verify_registration(self.rp, credential, taken.challenge)
        now = self.clock.now()
        passkey = Passkey(
            user_id=user.id,
            credential_id=new.credential_id,
            user_handle=taken.user_handle,
            public_key=new.public_key,
            sign_count=new.sign_count,
            backup_eligible=new.backup_eligible,
            backup_state=new.backup_state,
            aaguid=new.aaguid,
            transports=new.transports,
            name=name,
            created_at=now,
        )
        async with self.db.write() as s:
            repo = PasskeyRepository(s)
            if await repo.by_credential_id(new.credential_id) is not None:
                raise PasskeyAlreadyRegistered()
            if await repo.count(user.id) >= MAX_PASSKEYS_PER_USER:
                raise TooManyPasskeys()
            await repo.add(passkey)
            await self._notice(s, user, FactorChange.PASSKEY_ADDED, ctx, name)
        self.outbox.notify()
        return PasskeyInfo(id=passkey.id, name=name, created_at=now, last_used_at=None)

    async def remove(
        self, principal: Principal, passkey_id: str, ctx: CallerContext, password: str | None = None
    ) -> None:
        """Remove one of the caller's passkeys: the owner's other sessions end and a notice is
        mailed. Needs ``password`` or a sign-in within ``recent_auth_seconds``, as adding one
        does (``MfaService.reauthenticate``): a factor is a credential, and a stolen session
        alone must neither add nor take away one. The peers agree: Keycloak removes a credential
        through its ``delete_credential`` action, which re-authenticates a sign-in older than its
        maximum authentication age; Supabase Auth unenrols a verified factor only from an
        ``aal2`` session.

        Raises WrongPassword (counted like a failed sign-in), ReauthenticationRequired,
        RateLimited, PasskeyNotFound."""
        await self.mfa.reauthenticate(principal, password)
        user = principal.user
        async with self.db.write() as s:
            removed = await PasskeyRepository(s).delete_one(user.id, passkey_id)
            if removed is None:
                raise PasskeyNotFound()
            await end_sessions(
                s, user.id, self.clock.now(), SessionEndReason.PASSKEY_REMOVED, keep=principal.session_id
            )
            await self._notice(s, user, FactorChange.PASSKEY_REMOVED, ctx, removed.name)
        self.outbox.notify()

    async def _counted(self, sign_in: Awaitable[PasskeySignIn]) -> PasskeySignIn:
        """Await a passkey sign-in and count how it ended, with a password sign-in's outcomes:
        ``success``, ``disabled``, ``rate_limited``, and ``passkey_refused`` for an assertion
        that opened nothing (unknown or stale challenge, unknown passkey, failed verification)."""
        return await counted_sign_in(self.metrics, sign_in, PASSKEY_OUTCOMES)

    # -- signing in with a passkey alone --------------------------------------------------------
    async def start_sign_in(self, ctx: CallerContext) -> tuple[str, str]:
        """Begin a passwordless sign-in: (the request options as JSON, with no allowed
        credentials so the authenticator offers its discoverable ones; the handle the browser
        keeps, which the challenge is bound to). Raises RateLimited."""
        await self.limiter.check("passkey_options_ip", ctx.ip)
        binding = new_binding()
        challenge, row = self._new_challenge_row(Ceremony.SIGN_IN, binding_hash=hash_binding(binding))
        async with self.db.write() as s:
            await PasskeyRepository(s).add_challenge(row)
        await self.limiter.hit("passkey_options_ip", ctx.ip)
        return request_options(self.rp, challenge=challenge, allow=[]), binding

    async def finish_sign_in(
        self, credential: dict[str, Any], binding: str | None, ctx: CallerContext, kind: SessionKind
    ) -> PasskeySignIn:
        """Open a session of ``kind`` for the owner of the passkey that signed a challenge from
        ``start_sign_in`` in this browser (``binding``). The passkey with user verification is
        both factors: no code is asked for after it.

        Raises PasskeyChallengeInvalid (unknown, used, expired, another browser's),
        PasskeyNotRecognized (no such passkey here), PasskeyRejected, AccountDisabled,
        RateLimited.

        Every outcome is counted like a password sign-in's (``Metrics.sign_in``, ``_counted``)."""
        return await self._counted(self._finish_sign_in(credential, binding, ctx, kind))

    async def _finish_sign_in(
        self, credential: dict[str, Any], binding: str | None, ctx: CallerContext, kind: SessionKind
    ) -> PasskeySignIn:
        await self.limiter.check("mfa_fail_ip", ctx.ip)
        try:
            taken = self._live(await self._take(credential), Ceremony.SIGN_IN)
            if not binding or taken.binding_hash != hash_binding(binding):
                raise PasskeyChallengeInvalid()
            passkey = await self._find(credential)
            if passkey is None:
                raise PasskeyNotRecognized()
        except (PasskeyChallengeInvalid, PasskeyNotRecognized):
            await self.limiter.hit("mfa_fail_ip", ctx.ip)
            raise
        await self.mfa.check_limits(passkey.user_id, ctx)
        try:
            require_user_handle(credential)
            verified = verify_assertion(self.rp, credential, taken.challenge, self._stored(passkey))
            signed_in = await self._open_session(
                passkey, verified, ctx, kind, passkey_amr(passkey.backup_eligible)
            )
        except PasskeyRejected:
            await self.mfa.count_failure(passkey.user_id, ctx)
            raise
        await self.mfa.count_success(passkey.user_id, ctx)
        return signed_in

    # -- a passkey as the second step after a password ----------------------------------------
    async def _password_step(self, mfa_token: str, kind: SessionKind) -> MfaChallenge | None:
        now = self.clock.now()
        async with self.db.read() as s:
            challenge = await MfaRepository(s).challenge(hash_mfa_token(mfa_token))
        if (
            challenge is None
            or challenge.session_kind != kind.value
            or challenge.expires_at <= now
            or challenge.attempts >= MFA_TOKEN_MAX_ATTEMPTS
        ):
            return None
        return challenge

    async def start_second_step(self, mfa_token: str, ctx: CallerContext, kind: SessionKind) -> str:
        """The request options (JSON) for completing the password step of ``mfa_token`` with one
        of its user's passkeys (they are the allowed credentials). Raises InvalidMfaToken,
        NoPasskeys, RateLimited."""
        await self.limiter.check("passkey_options_ip", ctx.ip)
        step = await self._password_step(mfa_token, kind)
        if step is None:
            await self.limiter.hit("mfa_fail_ip", ctx.ip)
            raise InvalidMfaToken()
        async with self.db.write() as s:
            repo = PasskeyRepository(s)
            passkeys = await repo.of_user(step.user_id)
            if not passkeys:
                raise NoPasskeys()
            challenge, row = self._new_challenge_row(
                Ceremony.SECOND_STEP, user_id=step.user_id, mfa_challenge_id=step.id
            )
            await repo.add_challenge(row)
        await self.limiter.hit("passkey_options_ip", ctx.ip)
        allow = [(p.credential_id, list(p.transports or [])) for p in passkeys]
        return request_options(self.rp, challenge=challenge, allow=allow)

    async def finish_second_step(
        self, mfa_token: str, credential: dict[str, Any], ctx: CallerContext, kind: SessionKind
    ) -> PasskeySignIn:
        """Trade ``mfa_token`` and an assertion by one of its user's passkeys, to a challenge
        from ``start_second_step`` for that token, for the session the password step would have
        opened. The token is used up on success; a refused assertion counts against it like a
        wrong code, and against the limits.

        Raises InvalidMfaToken, PasskeyChallengeInvalid, PasskeyNotRecognized, PasskeyRejected,
        AccountDisabled, RateLimited.

        Every outcome but InvalidMfaToken (no sign-in to count: its password step was counted,
        ``second_factor_required``) is counted (``Metrics.sign_in``, ``_counted``)."""
        return await self._counted(self._finish_second_step(mfa_token, credential, ctx, kind))

    async def _finish_second_step(
        self, mfa_token: str, credential: dict[str, Any], ctx: CallerContext, kind: SessionKind
    ) -> PasskeySignIn:
        await self.limiter.check("mfa_fail_ip", ctx.ip)
        step = await self._password_step(mfa_token, kind)
        if step is None:
            await self.limiter.hit("mfa_fail_ip", ctx.ip)
            raise InvalidMfaToken()
        await self.mfa.check_limits(step.user_id, ctx)
        try:
            taken = self._live(await self._take(credential), Ceremony.SECOND_STEP)
            if taken.mfa_challenge_id != step.id:
                raise PasskeyChallengeInvalid()
            passkey = await self._find(credential)
            if passkey is None or passkey.user_id != step.user_id:
                raise PasskeyNotRecognized()
            verified = verify_assertion(self.rp, credential, taken.challenge, self._stored(passkey))
            amr = ["pwd", *passkey_amr(passkey.backup_eligible)]
            signed_in = await self._open_session(passkey, verified, ctx, kind, amr, mfa_challenge=step)
        except (PasskeyChallengeInvalid, PasskeyNotRecognized, PasskeyRejected):
            await self._count_wrong_answer(step)
            await self.mfa.count_failure(step.user_id, ctx)
            raise
        await self.mfa.count_success(step.user_id, ctx)
        return signed_in

    async def _count_wrong_answer(self, step: MfaChallenge) -> None:
        """A refused passkey at a second step counts against its ``mfa_token`` like a wrong
        code: after ``MFA_TOKEN_MAX_ATTEMPTS`` the token is dead."""
        async with self.db.write() as s:
            repo = MfaRepository(s)
            live = await repo.challenge(step.token_hash)
            if live is None:
                return
            if live.attempts + 1 >= MFA_TOKEN_MAX_ATTEMPTS:
                await repo.delete_challenge(live.id)
            else:
                await repo.count_challenge_attempt(live.id)
