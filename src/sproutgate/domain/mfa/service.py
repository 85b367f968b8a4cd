"""Second factors: enrolling an authenticator app, recovery codes, turning factors off, and the
second step of a password sign-in. The API faces, the pages and the admin service call these.

Security invariants kept here, not in routes:
- authenticator secrets are sealed at rest (``SecretSealer``, ``data/keys/mfa.key``), bound to
  their user; recovery codes and ``mfa_token`` values are stored only as hashes;
- each accepted 30-second step is recorded, so a code is never accepted twice (RFC 6238 §5.2),
  also when two requests race (a conditional UPDATE decides);
- wrong codes are counted per client address, per account and address, and per account
  (``mfa_fail_*``), like wrong passwords, with the same exemption for client addresses that
  signed in to the account lately; an ``mfa_token`` is single use, expires after
  ``mfa_token_ttl_seconds`` and dies after ``MFA_TOKEN_MAX_ATTEMPTS`` wrong codes;
- changing factors needs the password or a recent sign-in; every change mails the owner, and
  turning a factor off ends the owner's other sessions.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.config import Settings
from sproutgate.domain.accounts.errors import AccountDisabled
from sproutgate.domain.accounts.rules import KNOWN_CLIENT_SECONDS, failure_key
from sproutgate.domain.clock import Clock
from sproutgate.domain.context import CallerContext
from sproutgate.domain.errors import RateLimited, ServiceUnavailable
from sproutgate.domain.limits import RateLimits
from sproutgate.domain.mail.notices import BY_ADMIN, FactorChange, Notices
from sproutgate.domain.mail.service import Outbox
from sproutgate.domain.metrics import NO_METRICS, Metrics, SignInOutcome, counted_sign_in
from sproutgate.domain.mfa.errors import (
    InvalidMfaCode,
    InvalidMfaToken,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    MfaRequired,
    NoPendingEnrolment,
    ReauthenticationRequired,
    WrongPassword,
)
from sproutgate.domain.mfa.rules import (
    ENROLMENT_TTL_SECONDS,
    MFA_TOKEN_MAX_ATTEMPTS,
    RECOVERY_CODES_LOW,
    Factor,
    hash_mfa_token,
    new_mfa_token,
    new_recovery_codes,
    new_totp_secret,
    normalize_recovery_code,
    otpauth_uri,
    recovery_code_hash,
    require_mfa_code,
    require_totp_code,
    sign_in_factors,
    totp_matched_step,
)
from sproutgate.domain.sessions.rules import (
    AMR_PASSWORD_AND_RECOVERY_CODE,
    AMR_PASSWORD_AND_TOTP,
    SessionEndReason,
    SessionKind,
)
from sproutgate.domain.sessions.service import IssuedSession, Principal, SessionService, end_sessions
from sproutgate.infra.hasher import PasswordHasher
from sproutgate.infra.qr import qr_svg
from sproutgate.infra.sealing import SecretSealer, UnsealError
from sproutgate.storage.db import Database
from sproutgate.storage.mfa import MfaRepository, MfaRows
from sproutgate.storage.models import TotpFactor, User, new_id
from sproutgate.storage.passkeys import PasskeyRepository, PasskeyRows
from sproutgate.storage.repositories import (
    SessionRows,
    known_client,
    user_from_row,
)
from sproutgate.storage.statements import SessionStatements, Statements

log = logging.getLogger(__name__)

# How a sign-in's code step that opened nothing is counted (``counted_sign_in``).
CODE_STEP_OUTCOMES: dict[type[Exception], SignInOutcome] = {
    InvalidMfaCode: SignInOutcome.WRONG_CODE,
    AccountDisabled: SignInOutcome.DISABLED,
    RateLimited: SignInOutcome.RATE_LIMITED,
}


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """A pending authenticator enrolment, shown to its owner once: the base32 ``secret`` (for
    typing in), the ``otpauth_uri`` and that URI as a QR code (``qr_svg``, an SVG element).
    ``started_at`` (UTC, to the microsecond) names this enrolment among those its user may start:
    a page shows a waiting enrolment again only by it (``MfaService.pending_totp``)."""

    secret: str
    otpauth_uri: str
    qr_svg: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class PasskeyInfo:
    """A registered passkey as its owner sees it (domain/passkeys): our id for it, the name its
    owner gave it, when it was added and last used. Never the key."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class MfaStatus:
    """The caller's second factors: whether an authenticator app is on, their passkeys, and how
    many unused recovery codes remain."""

    totp: bool
    recovery_codes_left: int
    passkeys: list[PasskeyInfo] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MfaSummary:
    """What an administrator sees of a user's factors: never a secret."""

    totp: bool = False
    passkeys: int = 0


def _enrolment(secret: str, account: str, started_at: datetime) -> TotpEnrolment:
    uri = otpauth_uri(secret, account)
    return TotpEnrolment(
        secret=secret,
        otpauth_uri=uri,
        qr_svg=qr_svg(uri, title=f"SproutGate: {account}"),
        started_at=started_at,
    )


@dataclass(frozen=True, slots=True)
class ResealReport:
    """One pass of ``MfaService.reseal_secrets``: how many secrets were re-sealed under the
    newest mfa key, how many it had sealed already, and the users whose secret opens with no
    key at all (left as they are: restore the key, or reset their factors)."""

    resealed: int
    current: int
    unopened: list[str] = field(default_factory=list)


class MfaService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        hasher: PasswordHasher,
        sessions: SessionService,
        limiter: RateLimits,
        outbox: Outbox,
        sealer: SecretSealer,
        code_key: bytes,
        clock: Clock,
        notices: Notices,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        """``sealer`` seals authenticator secrets (keys ``data/keys/mfa.key``); ``code_key`` (32
        bytes, ``data/keys/code-hmac.key``) keys the hashes of recovery codes; ``notices``
        mails every change of a factor (``Notices.factor_changed``); ``metrics`` counts the
        second steps of sign-ins."""
        self.notices = notices
        self.metrics = metrics
        self.settings = settings
        self.db = db
        self.hasher = hasher
        self.sessions = sessions
        self.limiter = limiter
        self.outbox = outbox
        self.sealer = sealer
        self._code_key = code_key
        self.clock = clock

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _aad(user_id: str) -> bytes:
        return f"sproutgate:mfa_totp:v1\x1f{user_id}".encode()

    def _open_secret(self, factor: TotpFactor) -> str:
        """The clear secret. Raises ServiceUnavailable("second_factor_unavailable") when it opens
        with none of the keys (``data/keys/mfa.key`` was replaced or lost): the operator's to fix
        (restore the key, or reset the user's factors), not the user's."""
        try:
            return self.sealer.open(factor.secret_sealed, self._aad(factor.user_id))
        except UnsealError:
            log.error(
                "the authenticator secret of user %s does not open with data/keys/mfa.key or a later "
                "mfa key: restore the key (a rotation keeps older ones in data/keys/retired), or "
                "reset the user's factors (sproutgate user reset-mfa)",
                factor.user_id,
            )
            raise ServiceUnavailable("second_factor_unavailable") from None

    def _link(self, path: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}{path}"

    async def reauthenticate(self, principal: Principal, password: str | None) -> None:
        """The caller proves it is the owner: the current password, or a sign-in within
        ``recent_auth_seconds``. Every factor change that adds a way in asks this (an
        authenticator here, a passkey in domain/passkeys). Raises WrongPassword (counted like a
        failed sign-in), ReauthenticationRequired, RateLimited."""
        user = principal.user
        if password is not None:
            key = failure_key(user.account_lower, user.id, user.password_hash)
            await self.limiter.check("login_fail_account", key)
            if not await self.hasher.verify(user.password_hash, password):
                await self.limiter.hit("login_fail_account", key)
                raise WrongPassword()
            return
        auth_time = await self.sessions.session_auth_time(principal.session_id)
        if auth_time is None or self.clock.now() - auth_time > timedelta(
            seconds=self.settings.recent_auth_seconds
        ):
            raise ReauthenticationRequired()

    async def check_limits(self, user_id: str, ctx: CallerContext) -> None:
        """Before a code (or a passkey's assertion, domain/passkeys) is looked at: refuse
        (RateLimited) when the caller's address, or the account from this address, or the
        account from anywhere, has had its wrong codes. The account-wide count spares an address
        that signed in to the account lately."""
        await self.limiter.check("mfa_fail_ip", ctx.ip)
        await self.limiter.check("mfa_fail_account_ip", user_id, ctx.ip)
        since = self.clock.now() - timedelta(seconds=KNOWN_CLIENT_SECONDS)
        async with self.db.read() as s:
            known = await known_client(s, user_id, ctx.ip, since)
        if not known:
            await self.limiter.check("mfa_fail_account", user_id)

    async def count_failure(self, user_id: str, ctx: CallerContext) -> None:
        """A wrong code or a refused passkey assertion, counted against the client address, the
        account from that address and the account."""
        await self.limiter.hit("mfa_fail_account_ip", user_id, ctx.ip)
        await self.limiter.hit("mfa_fail_account", user_id)
        await self.limiter.hit("mfa_fail_ip", ctx.ip)

    async def count_success(self, user_id: str, ctx: CallerContext) -> None:
        """A proof that held: the account's runs of wrong codes end."""
        # A right code ends a run of wrong ones, as a right password does.
        await self.limiter.reset("mfa_fail_account", user_id)
        await self.limiter.reset("mfa_fail_account_ip", user_id, ctx.ip)

    async def forget_failures(self, user_id: str) -> None:
        """A completed password reset: the account-wide count of wrong codes starts afresh, as
        the password's does (issue 11 item 10). Whoever ran it up needed the old password, and
        the reset ended their second steps (``end_outstanding_codes``, the challenges with the
        sessions), so the owner's new device is not held back an hour by their guesses. The
        per-address counts are left: they hold only the addresses that guessed.

        Once per ``SPROUTGATE_LIMIT_MFA_FAIL_RESETS_PER_ACCOUNT`` (1/hour): a reset needs only
        the mailbox, so someone reading the owner's mail could otherwise reset, guess until
        held, and reset again, a fresh budget of authenticator guesses per reset mail (ten an
        hour) where the count allows one. A further reset within the window leaves the count."""
        try:
            await self.limiter.hit("mfa_fail_reset_account", user_id)
        except RateLimited:
            return
        await self.limiter.reset("mfa_fail_account", user_id)

    def _recovery_hashes(self, user_id: str, codes: list[str]) -> list[str]:
        hashes = []
        for code in codes:
            bare = normalize_recovery_code(code)
            assert bare is not None  # made by new_recovery_codes
            hashes.append(recovery_code_hash(self._code_key, user_id, bare))
        return hashes

    async def _use_code(self, s: AsyncSession, user_id: str, code: str, now: datetime) -> Factor | None:
        """Check ``code`` (an authenticator code or a recovery code, already shape-checked) for the
        user's active factors and use it up: the step is recorded, the recovery code marked used.
        Returns the factor it proved, or None (wrong, replayed, used, or no factor on)."""
        repo = MfaRepository(s)
        factor = await repo.totp(user_id)
        if factor is None or factor.activated_at is None:
            return None
        kind = require_mfa_code(code)
        if kind is Factor.TOTP:
            secret = self._open_secret(factor)
            step = totp_matched_step(secret, code, now, factor.last_used_step)
            if step is None or not await repo.accept_step(user_id, step, now):
                return None
            return Factor.TOTP
        bare = normalize_recovery_code(code)
        assert bare is not None  # require_mfa_code said it has the shape
        wanted = recovery_code_hash(self._code_key, user_id, bare)
        match = None
        for row in await repo.unused_recovery_codes(user_id):
            # Every stored hash is compared, in constant time, whichever matches.
            if hmac.compare_digest(row.code_hash, wanted) and match is None:
                match = row
        if match is None or not await repo.use_recovery_code(match.id, now):
            return None
        return Factor.RECOVERY_CODE

    async def _mail_recovery_used(self, s: AsyncSession, user: User, ctx: CallerContext) -> None:
        left = await MfaRepository(s).recovery_codes_left(user.id)
        change = FactorChange.RECOVERY_LOW if left <= RECOVERY_CODES_LOW else FactorChange.RECOVERY_USED
        await self.notices.factor_changed(s, user, change, ctx, left=left)

    # -- status -------------------------------------------------------------------------------
    async def status(self, user_id: str) -> MfaStatus:
        """The user's factors (``MfaStatus``); secrets never leave."""
        async with self.db.read() as s:
            repo = MfaRepository(s)
            factor = await repo.totp(user_id)
            active = factor is not None and factor.activated_at is not None
            left = await repo.recovery_codes_left(user_id) if active else 0
            passkeys = [
                PasskeyInfo(id=p.id, name=p.name, created_at=p.created_at, last_used_at=p.last_used_at)
                for p in await PasskeyRepository(s).of_user(user_id)
            ]
        return MfaStatus(totp=active, recovery_codes_left=left, passkeys=passkeys)

    async def summaries(self, user_ids: list[str]) -> dict[str, MfaSummary]:
        """Per user id, what an administrator sees of the factors."""
        async with self.db.read() as s:
            with_totp = await MfaRepository(s).active_totp_users(user_ids)
            passkeys = await PasskeyRepository(s).counts(user_ids)
        return {uid: MfaSummary(totp=uid in with_totp, passkeys=passkeys.get(uid, 0)) for uid in user_ids}

    # -- enrolment ----------------------------------------------------------------------------
    async def start_totp(
        self, principal: Principal, ctx: CallerContext, password: str | None = None
    ) -> TotpEnrolment:
        """Begin enrolling an authenticator app: a new secret, pending until ``confirm_totp``
        (for ``ENROLMENT_TTL_SECONDS``); a pending enrolment started earlier is replaced.
        Needs ``password`` or a sign-in within ``recent_auth_seconds``.

        Raises WrongPassword, ReauthenticationRequired, MfaAlreadyEnabled, RateLimited."""
        await self.reauthenticate(principal, password)
        user = principal.user
        secret = new_totp_secret()
        now = self.clock.now()
        async with self.db.write() as s:
            repo = MfaRepository(s)
            current = await repo.totp(user.id, lock=True)
            if current is not None and current.activated_at is not None:
                raise MfaAlreadyEnabled()
            await repo.replace_totp(
                TotpFactor(
                    user_id=user.id,
                    secret_sealed=self.sealer.seal(secret, self._aad(user.id)),
                    created_at=now,
                )
            )
        return _enrolment(secret, user.account, now)

    async def pending_totp(self, principal: Principal, started_at: datetime) -> TotpEnrolment | None:
        """The caller's own enrolment still waiting for its first code, shown again so a page
        can be reloaded or a wrong code retried without a new secret: the one ``start_totp``
        answered with ``started_at``, within ``ENROLMENT_TTL_SECONDS``; None when nothing waits
        or another enrolment has replaced it since. Only the session that is signed in as the
        owner asks, and ``start_totp`` re-authenticated it.

        Never another start's secret: a start elsewhere (another session of the user, on any
        face) replaces the waiting enrolment, and showing its secret here would have the owner
        scan and confirm a secret that other party knows (takeover through pending state).

        Raises ServiceUnavailable when the secret opens with none of the keys."""
        user = principal.user
        async with self.db.read() as s:
            factor = await MfaRepository(s).totp(user.id)
        if (
            factor is None
            or factor.activated_at is not None
            or factor.created_at != started_at
            or factor.created_at + timedelta(seconds=ENROLMENT_TTL_SECONDS) <= self.clock.now()
        ):
            return None
        return _enrolment(self._open_secret(factor), user.account, factor.created_at)

    async def confirm_totp(self, principal: Principal, code: str, ctx: CallerContext) -> list[str]:
        """Turn the pending authenticator on with a current code from it, and issue the first
        set of recovery codes: returned in clear this once, stored only as hashes. Mails the
        owner. Raises InvalidInput (not six digits), NoPendingEnrolment, InvalidMfaCode,
        RateLimited."""
        require_totp_code(code)
        user = principal.user
        await self.check_limits(user.id, ctx)
        now = self.clock.now()
        codes: list[str] | None = None
        async with self.db.write() as s:
            repo = MfaRepository(s)
            factor = await repo.totp(user.id, lock=True)
            if (
                factor is None
                or factor.activated_at is not None
                or factor.created_at + timedelta(seconds=ENROLMENT_TTL_SECONDS) <= now
            ):
                raise NoPendingEnrolment()
            secret = self._open_secret(factor)
            step = totp_matched_step(secret, code, now, None)
            if step is not None:
                factor.activated_at = now
                factor.last_used_step = step
                factor.last_used_at = now
                codes = new_recovery_codes()
                await repo.replace_recovery_codes(user.id, self._recovery_hashes(user.id, codes), now)
                await self.notices.factor_changed(s, user, FactorChange.ENABLED, ctx)
        if codes is None:
            await self.count_failure(user.id, ctx)
            raise InvalidMfaCode()
        await self.count_success(user.id, ctx)
        self.outbox.notify()
        return codes

    async def disable_totp(self, principal: Principal, code: str, ctx: CallerContext) -> None:
        """Turn the authenticator app off with a current code from it or a recovery code. The
        recovery codes go with it, the owner's other sessions end and a notice is mailed.
        Raises InvalidInput, MfaNotEnabled, InvalidMfaCode, RateLimited."""
        require_mfa_code(code)
        user = principal.user
        await self.check_limits(user.id, ctx)
        now = self.clock.now()
        used = None
        async with self.db.write() as s:
            repo = MfaRepository(s)
            factor = await repo.totp(user.id, lock=True)
            if factor is None or factor.activated_at is None:
                raise MfaNotEnabled()
            used = await self._use_code(s, user.id, code, now)
            if used is not None:
                await repo.delete_totp(user.id)
                # Recovery codes stand in for the app; with no other factor they have no use.
                await repo.delete_recovery_codes(user.id)
                await repo.delete_challenges_of(user.id)
                await end_sessions(s, user.id, now, SessionEndReason.MFA_DISABLED, keep=principal.session_id)
                await self.notices.factor_changed(s, user, FactorChange.DISABLED, ctx)
        if used is None:
            await self.count_failure(user.id, ctx)
            raise InvalidMfaCode()
        await self.count_success(user.id, ctx)
        self.outbox.notify()

    async def regenerate_recovery_codes(
        self, principal: Principal, code: str, ctx: CallerContext
    ) -> list[str]:
        """A new set of recovery codes for a current authenticator code or a recovery code; the
        old set dies at once. Returned in clear this once; mails the owner.
        Raises InvalidInput, MfaNotEnabled, InvalidMfaCode, RateLimited."""
        require_mfa_code(code)
        user = principal.user
        await self.check_limits(user.id, ctx)
        now = self.clock.now()
        codes: list[str] | None = None
        async with self.db.write() as s:
            repo = MfaRepository(s)
            factor = await repo.totp(user.id, lock=True)
            if factor is None or factor.activated_at is None:
                raise MfaNotEnabled()
            if await self._use_code(s, user.id, code, now) is not None:
                codes = new_recovery_codes()
                await repo.replace_recovery_codes(user.id, self._recovery_hashes(user.id, codes), now)
                await self.notices.factor_changed(s, user, FactorChange.RECOVERY_REGENERATED, ctx)
        if codes is None:
            await self.count_failure(user.id, ctx)
            raise InvalidMfaCode()
        await self.count_success(user.id, ctx)
        self.outbox.notify()
        return codes

    # -- sign-in ------------------------------------------------------------------------------
    async def open_challenge(self, run: Statements, user_id: str, kind: SessionKind) -> MfaRequired | None:
        """The second step of a password sign-in, in its transaction (Core statements, which
        never suspend: this runs inside ``Database.write_now``). None when the user has no
        second factor on (the password alone opens the session); else a challenge is stored and
        the ``MfaRequired`` to raise once the transaction has committed is returned."""
        rows = MfaRows(run)
        factors = sign_in_factors(
            await rows.has_active_totp(user_id), await PasskeyRows(run).has_passkey(user_id)
        )
        if not factors:
            return None
        token = new_mfa_token()
        now = self.clock.now()
        until = now + timedelta(seconds=self.settings.mfa_token_ttl_seconds)
        await rows.add_challenge(new_id(), hash_mfa_token(token), user_id, kind.value, now, until)
        return MfaRequired(mfa_token=token, factors=[f.value for f in factors])

    async def complete_sign_in(
        self, mfa_token: str, code: str, ctx: CallerContext, kind: SessionKind
    ) -> IssuedSession:
        """Trade an ``mfa_token`` and a code (a current authenticator code or a recovery code)
        for the session of ``kind`` the password step would have opened; a token from another
        face's sign-in (another kind) is refused. The token is used up on success;
        a wrong code counts against it and against the limits. Using a recovery code mails the
        owner (saying so when two or fewer remain).

        Raises InvalidInput (the code's shape), InvalidMfaToken (unknown, used, expired, or dead
        after ``MFA_TOKEN_MAX_ATTEMPTS`` wrong codes), InvalidMfaCode, AccountDisabled,
        RateLimited.

        Counted in ``Metrics.sign_in`` like a passkey's second step: ``success``, ``wrong_code``,
        ``disabled``, ``rate_limited``; bad input and a dead or unknown ``mfa_token`` are no
        sign-in step and count nothing (the password step counted ``second_factor_required``)."""
        require_mfa_code(code)
        return await counted_sign_in(
            self.metrics, self._complete_sign_in(mfa_token, code, ctx, kind), CODE_STEP_OUTCOMES
        )

    async def _complete_sign_in(
        self, mfa_token: str, code: str, ctx: CallerContext, kind: SessionKind
    ) -> IssuedSession:
        await self.limiter.check("mfa_fail_ip", ctx.ip)
        token_hash = hash_mfa_token(mfa_token)
        now = self.clock.now()
        async with self.db.read() as s:
            challenge = await MfaRepository(s).challenge(token_hash)
        if (
            challenge is None
            or challenge.session_kind != kind.value
            or challenge.expires_at <= now
            or challenge.attempts >= MFA_TOKEN_MAX_ATTEMPTS
        ):
            await self.limiter.hit("mfa_fail_ip", ctx.ip)
            raise InvalidMfaToken()
        user_id = challenge.user_id
        await self.check_limits(user_id, ctx)
        wrong = False
        issued: IssuedSession | None = None
        recovery_used = False
        async with self.db.write() as s:
            repo = MfaRepository(s)
            live = await repo.challenge(token_hash)
            if live is None or live.attempts >= MFA_TOKEN_MAX_ATTEMPTS:
                raise InvalidMfaToken()
            used = await self._use_code(s, user_id, code, now)
            if used is None:
                wrong = True
                if live.attempts + 1 >= MFA_TOKEN_MAX_ATTEMPTS:
                    await repo.delete_challenge(live.id)
                else:
                    await repo.count_challenge_attempt(live.id)
            else:
                # Single use: only the request whose DELETE removed it goes on (a concurrent one
                # rolls back, and the code it used stays unused).
                if not await repo.delete_challenge(live.id):
                    raise InvalidMfaToken()
                statements = SessionStatements(s)
                values = await SessionRows(statements).active_user(user_id)
                if values is None:
                    raise AccountDisabled()
                user = user_from_row(values)
                amr = (
                    AMR_PASSWORD_AND_RECOVERY_CODE if used is Factor.RECOVERY_CODE else AMR_PASSWORD_AND_TOTP
                )
                issued = await self.sessions.open_signed_in(statements, user, kind, ctx, amr)
                if used is Factor.RECOVERY_CODE:
                    recovery_used = True
                    await self._mail_recovery_used(s, user, ctx)
        if wrong or issued is None:
            await self.count_failure(user_id, ctx)
            raise InvalidMfaCode()
        await self.count_success(user_id, ctx)
        if recovery_used or issued.mail_queued:
            self.outbox.notify()
        return issued

    # -- administration -----------------------------------------------------------------------
    async def reseal_secrets(self) -> ResealReport:
        """Re-seal every authenticator secret (pending or active) that the newest mfa key did not
        seal, under that key, in one transaction: every row moves or none does, and until it
        commits the rows still open with the key that sealed them. The keys are re-read first,
        so the key ``sproutgate keys rotate-mfa`` just added is the one that seals. Run again
        until ``resealed`` is 0 to catch an enrolment another instance committed meanwhile."""
        self.sealer.refresh()
        resealed = current = 0
        unopened: list[str] = []
        async with self.db.write() as s:
            for factor in await MfaRepository(s).all_totp(lock=True):
                aad = self._aad(factor.user_id)
                if self.sealer.sealed_with_newest(factor.secret_sealed, aad):
                    current += 1
                    continue
                try:
                    clear = self.sealer.open(factor.secret_sealed, aad)
                except UnsealError:
                    unopened.append(factor.user_id)
                    continue
                factor.secret_sealed = self.sealer.seal(clear, aad, reread=False)
                resealed += 1
        return ResealReport(resealed=resealed, current=current, unopened=unopened)

    async def reset_in(self, s: AsyncSession, user: User) -> bool:
        """Turn every second factor of ``user`` off, in the caller's (the admin service's)
        transaction: the authenticator, recovery codes, passkeys and open sign-in challenges go,
        every session of the user ends, and a notice is mailed. False (and nothing written) when
        the user had no factor."""
        repo = MfaRepository(s)
        factor = await repo.totp(user.id, lock=True)
        had = factor is not None and factor.activated_at is not None
        had = await PasskeyRepository(s).delete_all(user.id) > 0 or had
        await repo.delete_totp(user.id)
        await repo.delete_recovery_codes(user.id)
        await repo.delete_challenges_of(user.id)
        if not had:
            return False
        await end_sessions(s, user.id, self.clock.now(), SessionEndReason.MFA_RESET)
        await self.notices.factor_changed(s, user, FactorChange.RESET, BY_ADMIN)
        return True
