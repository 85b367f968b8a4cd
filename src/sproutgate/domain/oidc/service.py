"""The OpenID Connect provider's operations: deciding an authorization request against the
browser's sign-in (single sign-on), consent, the token endpoint's grants, userinfo, revocation
(RFC 7009), introspection (RFC 7662), and the apps a person is connected to.

Every token an app gets is bound to a SproutGate session of kind ``oidc`` (a *grant*): its
access tokens name it (``sid``), its refresh tokens are that session's chain, and every check
asks ``session_is_active`` of it, so signing out (for grants that end with the browser's
sign-in), "sign out everywhere", a password reset, disabling or deleting the user, revoking the
app, or deleting the client ends them at once. docs/oidc.md, "Provider endpoints and behaviour".
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.config import Settings
from sproutgate.domain.clients.errors import ClientNotFound, InvalidClient
from sproutgate.domain.clients.rules import Client, is_client_id_shaped, is_loopback_redirect
from sproutgate.domain.clients.service import ClientService
from sproutgate.domain.clock import Clock
from sproutgate.domain.context import CallerContext
from sproutgate.domain.errors import RateLimited
from sproutgate.domain.limits import RateLimits
from sproutgate.domain.mail.notices import Notices
from sproutgate.domain.oidc import rules
from sproutgate.domain.oidc.errors import (
    AuthorizationError,
    InvalidAccessToken,
    InvalidClientError,
    InvalidGrant,
    OAuthError,
    UnsafeAuthorizationRequest,
)
from sproutgate.domain.oidc.rules import AuthorizationRequest
from sproutgate.domain.sessions.errors import InvalidRefreshToken
from sproutgate.domain.sessions.rules import (
    SessionEndReason,
    SessionKind,
    hash_refresh_token,
    session_is_active,
)
from sproutgate.domain.sessions.service import SessionService, end_sessions
from sproutgate.infra.tokens import InvalidToken, TokenSigner
from sproutgate.storage.db import Database
from sproutgate.storage.models import AuthorizationCode, AuthSession, User, new_id
from sproutgate.storage.oidc import OidcRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """How a client authenticated at the token, revocation or introspection endpoint:
    ``method`` is ``client_secret_basic``, ``client_secret_post`` or ``none`` (a public
    client naming itself, RFC 6749 §2.3)."""

    client_id: str
    client_secret: str | None
    method: str


@dataclass(frozen=True, slots=True)
class SignInNeeded:
    """The authorization request needs a (fresh) sign-in first: show the sign-in page, then
    come back to ``return_params``. ``login_hint`` prefills it."""

    return_params: dict[str, str]
    login_hint: str | None


@dataclass(frozen=True, slots=True)
class ConsentNeeded:
    """The person must allow the client to read ``scopes`` first (the consent page)."""

    client: Client
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CodeIssued:
    """The answer to the client: ``redirect_to`` carries the code, ``state`` and ``iss``."""

    redirect_to: str


AuthorizationDecision = SignInNeeded | ConsentNeeded | CodeIssued


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    """A successful token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
    ``expires_in`` in seconds."""

    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None
    token_type: str = "Bearer"


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    """An app a person let read their account: the client, the scopes consented to (or, for
    first-party apps, granted), since when, and when last used (None: never since consent)."""

    client: Client
    scopes: tuple[str, ...]
    since: datetime
    last_used_at: datetime | None = None


@dataclass
class _Grant:
    """What a token is issued for: the user (None for client credentials), the grant session,
    the SSO session, the sign-in facts."""

    client: Client
    scopes: tuple[str, ...]
    user: User | None = None
    grant_id: str | None = None
    sso_session_id: str | None = None
    auth_time: datetime | None = None
    amr: list[str] | None = None
    nonce: str | None = None
    refresh_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class OidcService:
    """The provider. ``settings.public_url`` is the issuer (every token's ``iss``)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        signer: TokenSigner,
        sessions: SessionService,
        clients: ClientService,
        limiter: RateLimits,
        clock: Clock,
        notices: Notices | None = None,
    ) -> None:
        """``notices`` (None: no mail) tells people when an app gets lasting access."""
        self.settings = settings
        self.db = db
        self.signer = signer
        self.sessions = sessions
        self.clients = clients
        self.limiter = limiter
        self.clock = clock
        self.notices = notices
        # (client id, address) -> when this process last noted it in the limiter's memory rule
        # (time.monotonic()): noted again at most once an hour, so a client's token requests
        # cost no extra round trip to the limiter's store.
        self._noted_addresses: dict[tuple[str, str], float] = {}

    @property
    def issuer(self) -> str:
        """The issuer identifier (OpenID Connect Discovery §3): SPROUTGATE_PUBLIC_URL without a
        trailing slash."""
        return rules.issuer_of(self.settings.public_url)

    # -- authorization endpoint ---------------------------------------------------------------
    async def check_authorization_request(
        self, params: Mapping[str, str]
    ) -> tuple[Client, AuthorizationRequest]:
        """The client and the checked request. Raises UnsafeAuthorizationRequest when the
        client is unknown or ``redirect_uri`` is missing or not registered for it (nothing may
        be redirected then, RFC 6749 §4.1.2.1), AuthorizationError for every other fault (to be
        sent back to the client by redirect)."""
        client_id = params.get("client_id") or ""
        try:
            client = await self.clients.get(client_id) if client_id else None
        except ClientNotFound:
            client = None
        if client is None:
            raise UnsafeAuthorizationRequest("invalid_request", "unknown client")
        redirect_uri = params.get("redirect_uri") or ""
        if not redirect_uri or not client.allows_redirect_uri(redirect_uri):
            raise UnsafeAuthorizationRequest(
                "invalid_request", "redirect_uri is not registered for this client"
            )
        return client, rules.check_authorization_params(params, client, redirect_uri)

    async def client_for_return(self, params: Mapping[str, str]) -> tuple[Client, str] | None:
        """The client and registered redirect URI an authorization request names, or None:
        what the sign-in and consent pages may send the browser on to (their form-action)."""
        try:
            client, request = await self.check_authorization_request(params)
        except OAuthError as exc:
            if isinstance(exc, AuthorizationError):
                client = await self.clients.get(params.get("client_id") or "")
                return client, exc.redirect_uri
            return None
        return client, request.redirect_uri

    async def decide(
        self,
        client: Client,
        request: AuthorizationRequest,
        params: Mapping[str, str],
        sso_session_id: str | None,
    ) -> AuthorizationDecision:
        """What to do with a checked authorization request, for the browser signed in with
        ``sso_session_id`` (None: not signed in): sign in (again), ask for consent, or issue a
        code (OpenID Connect Core §3.1.2). A request for a new lasting grant (``offline_access``;
        for a confidential client, not yet held by it with those scopes) from a sign-in older than
        ``SPROUTGATE_RECENT_AUTH_SECONDS`` signs in again first
        (``rules.lasting_grant_needs_recent_sign_in``). ``prompt=none`` never shows anything:
        it answers ``login_required`` or ``consent_required``. Raises AuthorizationError."""
        now = self.clock.now()

        def refuse(code: str, description: str) -> AuthorizationError:
            return AuthorizationError(
                code, description, redirect_uri=request.redirect_uri, state=request.state
            )

        sso = user = None
        demanded: datetime | None = None
        if sso_session_id is not None:
            async with self.db.read() as s:
                repo = OidcRepository(s)
                found = await repo.session(sso_session_id)
                if found is not None:
                    user = await s.get(User, found.user_id)
                    demanded = await repo.sign_in_demand(rules.sign_in_demand_key(request), now)
            if (
                found is not None
                and user is not None
                and found.kind == SessionKind.WEB.value
                and session_is_active(
                    found.revoked_at,
                    found.expires_at,
                    user.disabled,
                    now,
                    last_used_at=found.last_seen_at,
                    idle_timeout=self.sessions.idle_timeout,
                )
            ):
                sso = found
        if sso is None or user is None or not rules.sign_in_is_fresh(sso.auth_time, now, request, demanded):
            if "none" in request.prompt:
                raise refuse("login_required", "the person is not signed in (or not recently enough)")
            if sso is not None:
                await self._demand_sign_in(request, now)
            return SignInNeeded(rules.after_sign_in(params), request.login_hint)
        recent = self.settings.recent_auth_seconds
        held: list[tuple[str, ...]] = []
        async with self.db.read() as s:
            repo = OidcRepository(s)
            remembered = await repo.consent(user.id, client.client_id)
            if (
                rules.survives_sign_out(request.scopes)
                and not client.public
                and not is_loopback_redirect(request.redirect_uri)
                and (now - sso.auth_time).total_seconds() > recent
            ):
                # Only then does it matter what the person already holds (one indexed read).
                granted = await repo.granted_scopes(
                    user.id, client.client_id, now, seen_since=now - self.sessions.idle_timeout
                )
                held = [rules.parse_scope(scope) for scope in granted]
        if rules.lasting_grant_needs_recent_sign_in(
            client, request.scopes, held, sso.auth_time, now, recent, redirect_uri=request.redirect_uri
        ):
            if "none" in request.prompt:
                raise refuse("login_required", "lasting access (offline_access) needs a recent sign-in")
            return SignInNeeded(rules.after_sign_in(params), request.login_hint)
        if rules.consent_needed(
            client, rules.parse_scope(remembered.scopes) if remembered else None, request
        ):
            if "none" in request.prompt:
                raise refuse("consent_required", "the person has not allowed this client yet")
            return ConsentNeeded(client, request.scopes)
        code = secrets.token_urlsafe(32)
        async with self.db.write() as s:
            repo = OidcRepository(s)
            repo.add_code(
                AuthorizationCode(
                    id=new_id(),
                    code_hash=_sha256(code),
                    client_id=client.client_id,
                    user_id=user.id,
                    session_id=sso.id,
                    redirect_uri=request.redirect_uri,
                    scope=rules.scope_text(request.scopes),
                    nonce=request.nonce,
                    code_challenge=request.code_challenge,
                    auth_time=sso.auth_time,
                    amr=sso.amr,
                    created_at=now,
                    expires_at=now + timedelta(seconds=rules.AUTHORIZATION_CODE_TTL_SECONDS),
                )
            )
            await repo.record_session_client(sso.id, client.client_id, now)
        answer = {"code": code, "state": request.state, "iss": self.issuer}
        return CodeIssued(with_query(request.redirect_uri, answer))

    async def _demand_sign_in(self, request: AuthorizationRequest, now: datetime) -> None:
        """Remember the fresh sign-in ``request`` asks of a browser signed in before it, so the
        request the sign-in page returns to (or any edit of it keeping its binding) is answered
        only after one (``rules.sign_in_demand``). Kept as long as a sign-in made before it
        can live (``SPROUTGATE_WEB_SESSION_TTL_SECONDS``). Only signed-in browsers write one:
        without a sign-in there is nothing to skip."""
        after = rules.sign_in_demand(request, now)
        if after is None:
            return
        expires_at = now + timedelta(seconds=self.settings.web_session_ttl_seconds)
        async with self.db.write() as s:
            await OidcRepository(s).demand_sign_in(rules.sign_in_demand_key(request), after, expires_at)

    async def consent(self, user_id: str, client: Client, scopes: tuple[str, ...]) -> None:
        """Remember that the person allowed ``client`` to read ``scopes`` (added to what they
        allowed it before)."""
        now = self.clock.now()
        async with self.db.write() as s:
            repo = OidcRepository(s)
            before = await repo.consent(user_id, client.client_id)
            known = rules.parse_scope(before.scopes) if before else ()
            await repo.save_consent(user_id, client.client_id, rules.scope_text((*known, *scopes)), now)

    # -- token endpoint -----------------------------------------------------------------------
    async def authenticate_client(self, credentials: ClientCredentials | None, ctx: CallerContext) -> Client:
        """The client behind ``credentials`` (RFC 6749 §2.3). Failures count per client
        address like failed sign-ins (``client_auth_fail_ip``, checked before the secret is
        looked at) and per client and address (``client_auth_fail_client_ip``, same size).

        A confidential client that authenticated from this address within 30 days
        (``client_auth_known``, in the limiter's store) is not refused for the address's count:
        failures of others behind the same address (a cloud NAT) naming other clients, or none,
        do not lock its backend out, as failures from elsewhere never lock out a sign-in from a
        known address (issue 11 item 10). Only its own count there applies, so guessing its
        secret stays limited, and also locks it out from that address while it lasts.
        Raises InvalidClientError, RateLimited."""
        client_id = credentials.client_id if credentials is not None else ""
        # A client id of the registry's shape with a secret: what a confidential client sends.
        named = (
            credentials is not None
            and credentials.client_secret is not None
            and is_client_id_shaped(client_id)
        )
        try:
            await self.limiter.check("client_auth_fail_ip", ctx.ip)
        except RateLimited:
            # The address's failures are spent: only a confidential client known here goes on.
            if not named or not await self.limiter.remembered("client_auth_known", client_id, ctx.ip):
                raise
            await self.limiter.check("client_auth_fail_client_ip", client_id, ctx.ip)
        if credentials is None or not client_id:
            await self.limiter.hit("client_auth_fail_ip", ctx.ip)
            raise InvalidClientError(description="client authentication is required")
        try:
            client = await self.clients.authenticate(client_id, credentials.client_secret)
        except InvalidClient:
            if named:
                await self.limiter.hit("client_auth_fail_client_ip", client_id, ctx.ip)
            await self.limiter.hit("client_auth_fail_ip", ctx.ip)
            raise InvalidClientError(description="client authentication failed") from None
        if not client.public:
            await self._note_address(client.client_id, ctx.ip)
        return client

    async def _note_address(self, client_id: str, ip: str) -> None:
        """Remember that ``client_id`` authenticated from ``ip`` (``client_auth_known``); this
        process writes it at most once an hour per client and address."""
        key, now = (client_id, ip), time.monotonic()
        noted = self._noted_addresses.get(key)
        if noted is not None and now - noted < 3600:
            return
        if len(self._noted_addresses) >= 10_000:
            self._noted_addresses.clear()
        self._noted_addresses[key] = now
        await self.limiter.remember("client_auth_known", client_id, ip)

    async def token(
        self, form: Mapping[str, str], credentials: ClientCredentials | None, ctx: CallerContext
    ) -> TokenAnswer:
        """The token endpoint (RFC 6749 §3.2): ``authorization_code`` (with PKCE, RFC 7636
        §4.6), ``refresh_token`` (rotating, with reuse detection) and ``client_credentials``
        (confidential clients). Raises OAuthError (invalid_request, invalid_client,
        invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope),
        RateLimited.

        Limits (``rules.token_limit``): a confidential client that authenticated is counted
        per client (``oidc_token_client``), its refreshes included; everything else, public
        clients and requests whose client did not authenticate, per address
        (``oidc_token_ip``, and ``refresh_ip`` for refreshes), with failed client
        authentications also counted per address (``client_auth_fail_ip``)."""
        grant_type = form.get("grant_type") or ""
        if grant_type not in (
            rules.GRANT_AUTHORIZATION_CODE,
            rules.GRANT_REFRESH_TOKEN,
            rules.GRANT_CLIENT_CREDENTIALS,
        ):
            await self.limiter.hit("oidc_token_ip", ctx.ip)
            if not grant_type:
                raise OAuthError("invalid_request", "grant_type is required")
            raise OAuthError(
                "unsupported_grant_type", "only authorization_code, refresh_token and client_credentials"
            )
        try:
            client = await self.authenticate_client(credentials, ctx)
        except InvalidClientError:
            await self.limiter.hit("oidc_token_ip", ctx.ip)
            raise
        await self.limiter.hit(*rules.token_limit(client, ctx.ip))
        if not client.allows_grant(grant_type):
            raise OAuthError("unauthorized_client", f"the client may not use {grant_type}")
        if grant_type == rules.GRANT_AUTHORIZATION_CODE:
            grant = await self._redeem_code(client, form)
        elif grant_type == rules.GRANT_REFRESH_TOKEN:
            grant = await self._refresh(client, form, ctx)
        else:
            grant = self._client_credentials(client, form)
        return self._tokens(grant)

    async def _redeem_code(self, client: Client, form: Mapping[str, str]) -> _Grant:
        code, redirect_uri = form.get("code") or "", form.get("redirect_uri") or ""
        verifier = form.get("code_verifier") or None
        if not code:
            raise OAuthError("invalid_request", "code is required")
        now = self.clock.now()
        reused_grant: str | None = None
        grant: _Grant | None = None
        mailed = False
        async with self.db.write() as s:
            repo = OidcRepository(s)
            row = await repo.code_by_hash(_sha256(code))
            if row is None or row.client_id != client.client_id:
                raise InvalidGrant(description="unknown authorization code")
            # The registration as this transaction sees it, held until it commits: the client
            # read when it authenticated may predate a change to third-party whose end of
            # unconsented grants (client_changed) would then miss the grant opened here.
            current = await self.clients.current(s, client.client_id)
            if current is None:
                raise InvalidGrant(description="unknown authorization code")
            client = current
            if row.used_at is not None:
                # A second use: whatever the code gave is taken back (RFC 6749 §4.1.2), when the
                # replay proves what the redemption did; a bare one is refused, nothing more.
                if rules.replay_proves_possession(
                    code_challenge=row.code_challenge,
                    verifier=verifier,
                    code_redirect_uri=row.redirect_uri,
                    presented_redirect_uri=redirect_uri,
                ):
                    reused_grant = row.grant_session_id
                    reused = await repo.session(reused_grant) if reused_grant else None
                    if reused is not None:
                        await end_sessions(
                            s, reused.user_id, now, SessionEndReason.CODE_REUSE, only=reused.id
                        )
            elif row.disconnected_at is not None:
                raise InvalidGrant(description="the app was disconnected after this code was issued")
            elif row.expires_at <= now:
                raise InvalidGrant(description="the authorization code has expired")
            elif row.redirect_uri != redirect_uri:
                raise InvalidGrant(description="redirect_uri differs from the authorization request's")
            elif not client.allows_redirect_uri(row.redirect_uri):
                # The code went to a URI the client has since been refused (a lost domain, say):
                # whoever holds that URI now holds the code, so it gives nothing.
                raise InvalidGrant(description="redirect_uri is no longer registered for this client")
            elif row.code_challenge is not None and not rules.pkce_matches(verifier, row.code_challenge):
                raise InvalidGrant(description="code_verifier does not match the code_challenge (S256)")
            elif row.code_challenge is None and verifier is not None:
                raise InvalidGrant(description="code_verifier sent for a request without code_challenge")
            else:
                sso = await repo.session(row.session_id)
                user = await s.get(User, row.user_id)
                if (
                    sso is None
                    or user is None
                    or not session_is_active(
                        sso.revoked_at,
                        sso.expires_at,
                        user.disabled,
                        now,
                        last_used_at=sso.last_seen_at,
                        idle_timeout=self.sessions.idle_timeout,
                    )
                ):
                    raise InvalidGrant(description="the sign-in behind this code has ended")
                scopes = rules.still_registered(rules.parse_scope(row.scope), client)
                if not client.first_party:
                    # A code issued while the client was first-party (no consent asked), in the
                    # moment before it was made third-party, gives nothing unconsented either.
                    consent = await repo.consent(user.id, client.client_id)
                    consented = rules.parse_scope(consent.scopes) if consent is not None else None
                    if not rules.stands_without_first_party(scopes, consented):
                        raise InvalidGrant(description="the person has not allowed this client")
                if not await repo.use_code(row.id, now):
                    raise InvalidGrant(description="unknown authorization code")
                lasting_before = await self._has_lasting_grant(repo, user.id, client.client_id, now)
                grant = _Grant(
                    client=client,
                    scopes=scopes,
                    user=user,
                    sso_session_id=sso.id,
                    auth_time=row.auth_time,
                    amr=row.amr,
                    nonce=row.nonce,
                )
                self._open_grant(repo, grant, sso, now)
                row.grant_session_id = grant.grant_id
                if self.notices is not None and rules.survives_sign_out(scopes) and not lasting_before:
                    where = CallerContext(ip=sso.ip or "", user_agent=sso.user_agent)
                    await self.notices.app_connected(s, user, client.name, where)
                    mailed = True
        if reused_grant is not None:
            log.warning("authorization code presented again: its grant %s revoked", reused_grant)
        if reused_grant is not None or grant is None:
            raise InvalidGrant(description="the authorization code was already used")
        if mailed and self.notices is not None:
            self.notices.outbox.notify()
        return grant

    @staticmethod
    async def _has_lasting_grant(repo: OidcRepository, user_id: str, client_id: str, now: datetime) -> bool:
        """Whether the user already has a grant of ``client_id`` that outlives the sign-out
        (``rules.survives_sign_out``) and may still be active."""
        granted = await repo.granted_scopes(user_id, client_id, now)
        return any(rules.survives_sign_out(rules.parse_scope(scope)) for scope in granted)

    def _open_grant(self, repo: OidcRepository, grant: _Grant, sso: AuthSession, now: datetime) -> None:
        """Store the grant session (and its first refresh token) for ``grant``."""
        assert grant.user is not None
        refresh = rules.refresh_allowed(grant.client, grant.scopes)
        offline = rules.survives_sign_out(grant.scopes)
        lifetime = (
            self.settings.refresh_token_ttl_seconds if refresh else self.settings.access_token_ttl_seconds
        )
        expires_at = now + timedelta(seconds=max(lifetime, self.settings.access_token_ttl_seconds))
        if not offline:
            expires_at = min(expires_at, sso.expires_at)  # it ends with the browser's sign-in
        grant.grant_id = new_id()
        grant.refresh_token = secrets.token_urlsafe(32) if refresh else None
        repo.add_grant(
            AuthSession(
                id=grant.grant_id,
                user_id=grant.user.id,
                kind=SessionKind.OIDC.value,
                created_at=now,
                auth_time=grant.auth_time or now,
                last_seen_at=now,
                expires_at=expires_at,
                ip=sso.ip,
                user_agent=sso.user_agent,
                amr=grant.amr,
                client_id=grant.client.client_id,
                scope=rules.scope_text(grant.scopes),
                sso_session_id=sso.id,
                parent_id=None if offline else sso.id,
            ),
            hash_refresh_token(grant.refresh_token) if grant.refresh_token else None,
            now,
        )

    async def _refresh(self, client: Client, form: Mapping[str, str], ctx: CallerContext) -> _Grant:
        presented = form.get("refresh_token") or ""
        if not presented:
            raise OAuthError("invalid_request", "refresh_token is required")

        wanted = rules.parse_scope(form.get("scope")) if form.get("scope") else None

        def ours(row: dict[str, Any]) -> bool:
            """The client's own grant; a wider scope is refused here, inside the rotation's
            transaction, so the refused request rotates nothing (RFC 6749 §5.2, §6)."""
            if row["session_kind"] != SessionKind.OIDC.value or row["session_client_id"] != client.client_id:
                return False
            # Only for the chain's current token: a rotated one goes on to the reuse check.
            if row["token_rotated_at"] is None and not scope_allowed(row):
                raise OAuthError("invalid_scope", "a refresh cannot widen the scope")
            return True

        def scope_allowed(row: dict[str, Any]) -> bool:
            return wanted is None or set(wanted) <= set(granted_of(row))

        def granted_of(row: dict[str, Any]) -> tuple[str, ...]:
            # What was granted, less what the client is no longer registered for.
            return rules.still_registered(rules.parse_scope(row["session_scope"]), client)

        try:
            row, refresh = await self.sessions.rotate_chain(
                presented, ctx, ours, counted=rules.token_limit(client, ctx.ip)[0] == rules.TOKEN_LIMIT_CLIENT
            )
        except InvalidRefreshToken as exc:
            reused = bool(exc.params.get("reused"))
            raise InvalidGrant(
                description="refresh token reused: the grant is revoked"
                if reused
                else "unknown refresh token"
            ) from None
        if not scope_allowed(row):  # a retry within the grace window
            raise OAuthError("invalid_scope", "a refresh cannot widen the scope")
        asked = wanted if wanted is not None else granted_of(row)
        user = await self._user(row["id"])
        return _Grant(
            client=client,
            scopes=asked,
            user=user,
            grant_id=row["session_id"],
            sso_session_id=row["session_sso_id"],
            auth_time=row["session_auth_time"],
            amr=row["session_amr"],
            refresh_token=refresh,
        )

    async def _user(self, user_id: str) -> User:
        async with self.db.read() as s:
            user = await s.get(User, user_id)
        if user is None:
            raise InvalidGrant(description="unknown refresh token")
        return user

    def _client_credentials(self, client: Client, form: Mapping[str, str]) -> _Grant:
        if client.public:
            raise OAuthError("unauthorized_client", "client_credentials is for confidential clients")
        asked = rules.parse_scope(form.get("scope"))
        not_for_services = {rules.OPENID, rules.OFFLINE_ACCESS}
        if any(s in not_for_services or s not in client.scopes for s in asked):
            raise OAuthError("invalid_scope", "scope not allowed for client_credentials")
        return _Grant(client=client, scopes=asked)

    def _tokens(self, grant: _Grant) -> TokenAnswer:
        ttl = self.settings.access_token_ttl_seconds
        subject = grant.user.id if grant.user is not None else grant.client.client_id
        access, _ = self.signer.sign_claims(
            rules.access_token_claims(
                issuer=self.issuer,
                client_id=grant.client.client_id,
                subject=subject,
                grant_id=grant.grant_id,
                scopes=grant.scopes,
                jti=secrets.token_urlsafe(16),
            ),
            token_type=rules.ACCESS_TOKEN_TYPE,
            ttl_seconds=ttl,
        )
        id_token = None
        if grant.user is not None and rules.OPENID in grant.scopes:
            id_token, _ = self.signer.sign_claims(
                rules.id_token_claims(
                    issuer=self.issuer,
                    client_id=grant.client.client_id,
                    user_claims=self._claims(grant.user, grant.scopes),
                    auth_time=grant.auth_time or self.clock.now(),
                    sid=grant.sso_session_id,
                    amr=grant.amr,
                    nonce=grant.nonce,
                ),
                token_type=rules.ID_TOKEN_TYPE,
                ttl_seconds=ttl,
            )
        return TokenAnswer(
            access_token=access,
            expires_in=ttl,
            scope=rules.scope_text(grant.scopes),
            refresh_token=grant.refresh_token,
            id_token=id_token,
        )

    @staticmethod
    def _claims(user: User, scopes: tuple[str, ...]) -> dict[str, Any]:
        return rules.claims_for(
            scopes,
            user_id=user.id,
            username=user.username,
            account=user.account,
            avatar_url=user.avatar_url,
            updated_at=user.updated_at,
            email=user.email,
            email_verified=user.email_confirmed_at is not None,
            level=user.level,
            sprout_coins=user.sprout_coins,
        )

    # -- access tokens ------------------------------------------------------------------------
    def _access_claims(self, token: str) -> dict[str, Any]:
        """The claims of one of our RFC 9068 access tokens, unexpired. Raises InvalidToken."""
        claims = self.signer.verify_claims(token, issuer=self.issuer, token_type=rules.ACCESS_TOKEN_TYPE)
        if not isinstance(claims.get("client_id"), str) or claims.get("aud") != claims["client_id"]:
            raise InvalidToken("not an app's access token")
        return claims

    async def _live_grant(self, claims: Mapping[str, Any]) -> tuple[AuthSession, User] | None:
        """The active grant session an access token is bound to, with its user, or None."""
        sid = claims.get("sid")
        if not isinstance(sid, str):
            return None
        async with self.db.read() as s:
            found = await OidcRepository(s).grant_with_user(sid)
        if found is None:
            return None
        grant, user = found
        if grant.user_id != claims.get("sub") or grant.client_id != claims.get("client_id"):
            return None
        if not session_is_active(
            grant.revoked_at,
            grant.expires_at,
            user.disabled,
            self.clock.now(),
            last_used_at=grant.last_seen_at,
            idle_timeout=self.sessions.idle_timeout,
        ):
            return None
        return grant, user

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """The signed-in person's claims for the scopes of ``access_token`` and nothing more
        (OpenID Connect Core §5.3), less those its client is no longer registered for
        (``rules.still_registered``). Raises InvalidAccessToken (401), OAuthError
        ``insufficient_scope`` (403) when the token lacks ``openid``."""
        try:
            claims = self._access_claims(access_token)
        except InvalidToken:
            raise InvalidAccessToken(description="the access token is invalid or expired") from None
        found = await self._live_grant(claims)
        if found is None:
            raise InvalidAccessToken(description="the access token is no longer valid")
        grant, user = found
        try:
            client = await self.clients.get(claims["client_id"])
        except ClientNotFound:
            raise InvalidAccessToken(description="the access token is no longer valid") from None
        scopes = rules.still_registered(
            (s for s in rules.parse_scope(claims.get("scope")) if s in rules.parse_scope(grant.scope)),
            client,
        )
        if rules.OPENID not in scopes:
            raise OAuthError("insufficient_scope", "the openid scope is required")
        return self._claims(user, scopes)

    # -- revocation and introspection ---------------------------------------------------------
    async def revoke(
        self, token: str, hint: str | None, credentials: ClientCredentials | None, ctx: CallerContext
    ) -> None:
        """RFC 7009: end the grant a refresh or access token of this client belongs to (both
        kinds: the grant's tokens all end). Unknown tokens, and tokens of other clients, are
        answered the same, as success. Raises InvalidClientError, OAuthError
        ``unsupported_token_type`` for client-credentials access tokens (self-contained, they
        end at their expiry), RateLimited."""
        client = await self.authenticate_client(credentials, ctx)
        if not token:
            raise OAuthError("invalid_request", "token is required")
        now = self.clock.now()
        async with self.db.write() as s:
            repo = OidcRepository(s)
            found = await repo.grant_of_refresh(hash_refresh_token(token))
            grant_id = found[0].id if found and found[0].client_id == client.client_id else None
            owner = found[0].user_id if grant_id is not None and found else None
            if found is None:
                try:
                    claims = self._access_claims(token)
                except InvalidToken:
                    claims = None
                if claims is not None and claims["client_id"] == client.client_id:
                    if not isinstance(claims.get("sid"), str):
                        raise OAuthError(
                            "unsupported_token_type", "client credentials tokens end at their expiry"
                        )
                    grant_id = claims["sid"]
                    owner = claims["sub"] if isinstance(claims.get("sub"), str) else None
            if grant_id is not None and owner is not None:
                await end_sessions(s, owner, now, SessionEndReason.APP_REVOKED, only=grant_id)

    async def introspect(
        self, token: str, credentials: ClientCredentials | None, ctx: CallerContext
    ) -> dict[str, Any]:
        """RFC 7662 §2.2 for a confidential client: ``{"active": false}`` for anything not
        currently valid, else ``active``, ``scope``, ``client_id``, ``username`` (the account
        name, only for a token whose scopes include ``profile``), ``token_type``, ``exp``,
        ``iat``, ``sub``, ``aud``, ``iss``. ``scope`` names only what the client is still
        registered for (``rules.still_registered``), like userinfo and refreshes; a
        client-credentials token is inactive once its client may no longer use the grant or has
        a secret newer than the token (``rules.client_credentials_token_current``). Raises
        InvalidClientError (public clients too), RateLimited."""
        client = await self.authenticate_client(credentials, ctx)
        if client.public:
            raise InvalidClientError(description="introspection is for confidential clients")
        inactive: dict[str, Any] = {"active": False}
        if not token:
            return inactive
        now = self.clock.now()
        async with self.db.read() as s:
            found = await OidcRepository(s).grant_of_refresh(hash_refresh_token(token))
        if found is not None:
            grant, user = found
            if not session_is_active(
                grant.revoked_at,
                grant.expires_at,
                user.disabled,
                now,
                last_used_at=grant.last_seen_at,
                idle_timeout=self.sessions.idle_timeout,
            ):
                return inactive
            async with self.db.read() as s:
                current = await OidcRepository(s).refresh_is_current(hash_refresh_token(token))
            if not current:
                return inactive
            scopes = await self._still_registered(grant.client_id, rules.parse_scope(grant.scope))
            if scopes is None:
                return inactive
            return {
                "active": True,
                "token_type": "refresh_token",
                "scope": rules.scope_text(scopes),
                "client_id": grant.client_id,
                **rules.introspection_username(scopes, user.account),
                "sub": user.id,
                "iss": self.issuer,
                "exp": int(grant.expires_at.timestamp()),
                "iat": int(grant.created_at.timestamp()),
            }
        try:
            claims = self._access_claims(token)
        except InvalidToken:
            return inactive
        answer = {
            "active": True,
            "token_type": "Bearer",
            "scope": claims.get("scope", ""),
            "client_id": claims["client_id"],
            "sub": claims["sub"],
            "aud": claims["aud"],
            "iss": claims["iss"],
            "exp": claims["exp"],
            "iat": claims.get("iat"),
            "jti": claims.get("jti"),
        }
        try:
            token_client = await self.clients.get(claims["client_id"])
        except ClientNotFound:
            return inactive
        scopes = rules.still_registered(rules.parse_scope(claims.get("scope")), token_client)
        answer["scope"] = rules.scope_text(scopes)
        if "sid" not in claims:
            # Client credentials: while its client exists, may use the grant and has the secret
            # the token was obtained with.
            if not rules.client_credentials_token_current(claims.get("iat"), token_client):
                return inactive
            return answer
        live = await self._live_grant(claims)
        if live is None:
            return inactive
        return {**answer, **rules.introspection_username(scopes, live[1].account)}

    async def _still_registered(
        self, client_id: str | None, scopes: tuple[str, ...]
    ) -> tuple[str, ...] | None:
        """``scopes`` less those ``client_id`` is no longer registered for
        (``rules.still_registered``); None when the client is gone."""
        try:
            client = await self.clients.get(client_id or "")
        except ClientNotFound:
            return None
        return rules.still_registered(scopes, client)

    # -- what other parts of SproutGate ask -----------------------------------------------------
    def id_token_hint(self, id_token: str) -> dict[str, Any]:
        """The claims of an ID token this provider issued, expired or not (an ``id_token_hint``,
        RP-Initiated Logout 1.0 §2): signature, ``typ``, ``iss`` checked. Raises
        InvalidAccessToken (``invalid_token``) for anything else."""
        try:
            return self.signer.verify_claims(
                id_token, issuer=self.issuer, token_type=rules.ID_TOKEN_TYPE, allow_expired=True
            )
        except InvalidToken:
            raise InvalidAccessToken(description="not an ID token of this provider") from None

    async def clients_of_session(self, session_id: str) -> list[Client]:
        """The clients the browser sign-in ``session_id`` was used with (oldest first), for
        back-channel logout; clients deleted since are left out."""
        async with self.db.read() as s:
            ids = await OidcRepository(s).client_ids_of_session(session_id)
        found: list[Client] = []
        for client_id in ids:
            try:
                found.append(await self.clients.get(client_id))
            except ClientNotFound:
                continue
        return found

    async def connected_apps(self, user_id: str) -> list[ConnectedApp]:
        """The apps the person let read their account: every client they consented to, and
        every client holding a grant of theirs that still counts (first-party apps, which ask
        no consent, appear by their grants). Oldest first."""
        now = self.clock.now()
        async with self.db.read() as s:
            repo = OidcRepository(s)
            consents = {c.client_id: c for c in await repo.consents_of(user_id)}
            grants = {g["client_id"]: g for g in await repo.grants_of_user(user_id, now)}
            scopes_of: dict[str, set[str]] = {}
            for client_id in grants:
                granted = await repo.granted_scopes(user_id, client_id, now)
                scopes_of[client_id] = {x for scope in granted for x in rules.parse_scope(scope)}
        apps: list[ConnectedApp] = []
        for client_id in dict.fromkeys([*consents, *grants]):
            try:
                client = await self.clients.get(client_id)
            except ClientNotFound:
                continue
            consent = consents.get(client_id)
            grant = grants.get(client_id)
            scopes = set(rules.parse_scope(consent.scopes)) if consent else set()
            scopes |= scopes_of.get(client_id, set())
            since = min(
                t for t in (consent.granted_at if consent else None, grant and grant["first_at"]) if t
            )
            apps.append(
                ConnectedApp(
                    client=client,
                    scopes=tuple(s for s in rules.SCOPES if s in scopes),
                    since=since,
                    last_used_at=grant["last_at"] if grant else None,
                )
            )
        return sorted(apps, key=lambda a: a.since)

    async def client_changed(self, s: AsyncSession, before: Client, after: Client) -> int:
        """A client's registration changed (``ClientService.on_update``, same transaction).
        When it stopped being first-party, what its users never agreed to ends: every grant of
        theirs made without consent (``rules.stands_without_first_party``), with its refresh
        and access tokens; its codes not yet redeemed give nothing unconsented (the exchange
        checks the consent of a third-party client's code), and the next authorization asks
        for consent (``rules.consent_needed``). Returns how many grants ended (0 for any
        other change)."""
        if not before.first_party or after.first_party:
            return 0
        now = self.clock.now()
        repo = OidcRepository(s)
        ended = 0
        for grant_id, user_id, scope, consented in await repo.grants_of_client(after.client_id, now):
            allowed = rules.parse_scope(consented) if consented is not None else None
            if not rules.stands_without_first_party(rules.parse_scope(scope), allowed):
                reason = SessionEndReason.APP_NOW_THIRD_PARTY
                ended += len(await end_sessions(s, user_id, now, reason, only=grant_id))
        if ended:
            log.info(
                "client %s is no longer first-party: %d grant(s) without consent ended",
                after.client_id,
                ended,
            )
        return ended

    async def revoke_app(self, user_id: str, client_id: str) -> None:
        """Disconnect an app: the person's consent to it is forgotten (it asks again next time),
        every authorization code of theirs it has not redeemed yet dies (a later exchange is
        ``invalid_grant``, RFC 6749 §4.1.2, §10.5), and every grant of theirs it holds ends,
        with its refresh tokens, all in one transaction. Silent when there was nothing."""
        now = self.clock.now()
        async with self.db.write() as s:
            repo = OidcRepository(s)
            await repo.delete_consent(user_id, client_id)
            # Before the grants: a redemption holding a code's row (FOR UPDATE on PostgreSQL,
            # the one writer on SQLite) commits first, and end_sessions below then sees and
            # ends its grant; one that comes after finds the code revoked, whatever its clock.
            await repo.revoke_unused_codes(user_id, client_id, now)
            ended = await end_sessions(s, user_id, now, SessionEndReason.APP_REVOKED, client_id=client_id)
        if ended:
            log.info("app %s disconnected by its user: %d grant(s) ended", client_id, len(ended))


def with_query(uri: str, params: Mapping[str, str | None]) -> str:
    """``uri`` with ``params`` (those not None) added to its query, its own query kept
    (RFC 6749 §3.1.2: a redirect URI may carry a query, which must be retained)."""
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query and extra else parts.query or extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


__all__ = [
    "AuthorizationDecision",
    "ClientCredentials",
    "CodeIssued",
    "ConnectedApp",
    "ConsentNeeded",
    "OidcService",
    "RateLimited",
    "SignInNeeded",
    "TokenAnswer",
    "with_query",
]
