"""The OpenID Connect provider's rules, as pure functions: what an authorization request must
hold, PKCE, which claims each scope releases, the claims of ID tokens and access tokens, when a
sign-in is fresh enough, when consent is needed and when a refresh token is issued.

Standards: OAuth 2.0 (RFC 6749), PKCE (RFC 7636), JWT access tokens (RFC 9068), OpenID Connect
Core 1.0, Authentication Method Reference values (RFC 8176)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sproutgate.domain.clients.rules import is_loopback_redirect
from sproutgate.domain.oidc.errors import AuthorizationError

# -- scopes and claims ------------------------------------------------------------------------
OPENID = "openid"
OFFLINE_ACCESS = "offline_access"
SCOPES = ("openid", "profile", "email", "offline_access", "sproutgate")

# The claims each scope releases (OpenID Connect Core §5.4, plus SproutGate's own scope). Nothing
# outside the granted scopes reaches an ID token or the userinfo answer.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": ("name", "preferred_username", "picture", "updated_at"),
    "email": ("email", "email_verified"),
    "sproutgate": ("level", "sprout_coins"),
    "offline_access": (),
}
CLAIMS_SUPPORTED = tuple(dict.fromkeys(c for claims in SCOPE_CLAIMS.values() for c in claims))

AUTHORIZATION_CODE_TTL_SECONDS = 60
ID_TOKEN_TYPE = "JWT"
ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068 §2.1

GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type's name
GRANT_CLIENT_CREDENTIALS = "client_credentials"
PROMPTS = frozenset({"none", "login", "consent", "select_account"})


class ClientView(Protocol):
    """What the rules read of a registered client (``domain.clients`` ``Client``)."""

    @property
    def client_id(self) -> str: ...
    @property
    def public(self) -> bool: ...
    @property
    def first_party(self) -> bool: ...
    @property
    def scopes(self) -> tuple[str, ...]: ...
    @property
    def grant_types(self) -> tuple[str, ...]: ...
    @property
    def secret_rotated_at(self) -> datetime | None: ...


def parse_scope(value: str | None) -> tuple[str, ...]:
    """The scope parameter (RFC 6749 §3.3: space-delimited, case-sensitive) as a tuple without
    duplicates, in the order given."""
    return tuple(dict.fromkeys(s for s in (value or "").split(" ") if s))


def scope_text(scopes: Iterable[str]) -> str:
    """Scopes as the space-delimited ``scope`` string, in SproutGate's fixed order."""
    wanted = set(scopes)
    return " ".join(s for s in SCOPES if s in wanted)


def still_registered(scopes: Iterable[str], client: ClientView) -> tuple[str, ...]:
    """The granted ``scopes`` the client is still registered for, in the order given. A grant
    never outlives its client's registration: when an administrator takes a scope away from a
    client, its refreshes and userinfo answers no longer carry that scope or its claims
    (docs/security.md, "OpenID Connect provider")."""
    return tuple(s for s in scopes if s in client.scopes)


def client_credentials_token_current(issued_at: object, client: ClientView) -> bool:
    """Whether a client-credentials access token (no user, no grant session behind it) still
    stands for ``client``: the client may still use the grant, and the token was not issued
    before the client's secret was last replaced. Rotating a secret is the answer to a leaked
    one, so what the leaked secret obtained ends with it (issue 11 item 3's rule for clients).
    ``issued_at`` is the token's ``iat`` (unix seconds, whole): a token of the rotation's own
    second still stands, so a client that fetches a token at once with its new secret is never
    refused."""
    if GRANT_CLIENT_CREDENTIALS not in client.grant_types:
        return False
    if not isinstance(issued_at, int) or isinstance(issued_at, bool):
        return False
    rotated = client.secret_rotated_at
    return rotated is None or issued_at >= int(rotated.timestamp())


def introspection_username(scopes: Iterable[str], account: str) -> dict[str, str]:
    """The ``username`` member of an introspection answer (RFC 7662 §2.2): the account name,
    but only when the token's scopes release it (``profile`` releases ``preferred_username``,
    OpenID Connect Core §5.4); a token granted ``openid`` alone tells no name."""
    return {"username": account} if "profile" in set(scopes) else {}


def claims_for(
    scopes: Iterable[str],
    *,
    user_id: str,
    username: str,
    account: str,
    avatar_url: str | None,
    updated_at: datetime,
    email: str,
    email_verified: bool,
    level: int,
    sprout_coins: int,
) -> dict[str, Any]:
    """The user's claims that ``scopes`` release, and no others (OpenID Connect Core §5.4):
    openid ``sub``; profile ``name`` (the display name), ``preferred_username`` (the account
    name), ``picture`` (when set) and ``updated_at`` (unix seconds); email ``email`` and
    ``email_verified``; sproutgate ``level`` and ``sprout_coins``."""
    granted = set(scopes)
    claims: dict[str, Any] = {"sub": user_id}
    if "profile" in granted:
        claims.update(name=username, preferred_username=account, updated_at=int(updated_at.timestamp()))
        if avatar_url:
            claims["picture"] = avatar_url
    if "email" in granted:
        claims.update(email=email, email_verified=email_verified)
    if "sproutgate" in granted:
        claims.update(level=level, sprout_coins=sprout_coins)
    return claims


# -- PKCE (RFC 7636) --------------------------------------------------------------------------
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 §4.1
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")  # BASE64URL of 32 bytes, no padding
_MAX_AGE = re.compile(r"[0-9]{1,10}")  # seconds, OpenID Connect Core §3.1.2.1


def s256(verifier: str) -> str:
    """``BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def pkce_matches(verifier: str | None, challenge: str) -> bool:
    """Whether ``verifier`` answers the S256 ``challenge`` stored with the code (RFC 7636 §4.6);
    a verifier of the wrong shape never matches. Constant time."""
    if not verifier or not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)


# -- authorization requests -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A checked authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1).
    ``max_age`` in seconds; ``prompt`` a set of the values given."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str | None
    ui_locales: tuple[str, ...]


def check_authorization_params(
    params: Mapping[str, str], client: ClientView, redirect_uri: str
) -> AuthorizationRequest:
    """Check what an authorization request asks for, once its client and ``redirect_uri`` are
    known good (so errors can go back by redirect).

    Rules: ``response_type`` must be ``code`` (the only flow; no implicit or hybrid);
    ``scope`` must hold ``openid`` and only scopes the client is registered for; PKCE
    (RFC 7636): ``code_challenge_method`` must be ``S256`` (``plain`` is refused), and a
    challenge is required of public clients, optional for confidential ones; ``prompt=none``
    goes with no other prompt; ``max_age`` a non-negative integer; ``request``/``request_uri``
    objects are not supported (OpenID Connect Core §6), nor a ``response_mode`` other than
    ``query``.

    Raises AuthorizationError (carrying ``redirect_uri`` and ``state``)."""
    state = params.get("state") or None

    def refuse(code: str, description: str) -> AuthorizationError:
        return AuthorizationError(code, description, redirect_uri=redirect_uri, state=state)

    if GRANT_AUTHORIZATION_CODE not in client.grant_types:
        raise refuse("unauthorized_client", "the client may not use the authorization code grant")
    response_type = params.get("response_type")
    if not response_type:
        raise refuse("invalid_request", "response_type is required")
    if response_type != "code":
        raise refuse("unsupported_response_type", "only response_type=code is supported")
    if params.get("response_mode", "query") != "query":
        raise refuse("invalid_request", "only response_mode=query is supported")
    if "request" in params:
        raise refuse("request_not_supported", "request objects are not supported")
    if "request_uri" in params:
        raise refuse("request_uri_not_supported", "request_uri is not supported")
    scopes = parse_scope(params.get("scope"))
    if OPENID not in scopes:
        raise refuse("invalid_scope", "the openid scope is required")
    unknown = [s for s in scopes if s not in SCOPES or s not in client.scopes]
    if unknown:
        raise refuse("invalid_scope", f"scope not allowed for this client: {' '.join(unknown)}")
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or None
    if challenge is None and method is not None:
        raise refuse("invalid_request", "code_challenge_method without code_challenge")
    if challenge is not None:
        if method != "S256":
            raise refuse("invalid_request", "code_challenge_method must be S256 (plain is not accepted)")
        if not _S256_CHALLENGE.match(challenge):
            raise refuse("invalid_request", "code_challenge must be 43 base64url characters (S256)")
    elif client.public:
        raise refuse("invalid_request", "PKCE (code_challenge with S256) is required of public clients")
    prompt = frozenset(parse_scope(params.get("prompt")))
    if prompt - PROMPTS:
        raise refuse("invalid_request", "unknown prompt value")
    if "none" in prompt and len(prompt) > 1:
        raise refuse("invalid_request", "prompt=none cannot be combined with other values")
    max_age: int | None = None
    raw_max_age = params.get("max_age")
    if raw_max_age:
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses (a 500).
        if not _MAX_AGE.fullmatch(raw_max_age):
            raise refuse("invalid_request", "max_age must be a non-negative integer")
        max_age = int(raw_max_age)
    nonce = params.get("nonce") or None
    if nonce is not None and len(nonce) > 512:
        raise refuse("invalid_request", "nonce is too long")
    if state is not None and len(state) > 2048:
        raise refuse("invalid_request", "state is too long")
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        prompt=prompt,
        max_age=max_age,
        login_hint=(params.get("login_hint") or "")[:320] or None,
        ui_locales=parse_scope(params.get("ui_locales")),
    )


def replay_proves_possession(
    *,
    code_challenge: str | None,
    verifier: str | None,
    code_redirect_uri: str,
    presented_redirect_uri: str,
) -> bool:
    """Whether a second presentation of an authorization code proves what its redemption
    proved (the ``redirect_uri`` it went to and, when the request had a challenge, the PKCE
    verifier: RFC 7636 §4.6), so that it may revoke what the first use gave (RFC 6749
    §4.1.2). A bare replay proves nothing: a used code lingers in browser history, logs and
    ``Referer`` headers for the day it is kept, and a public client authenticates with its
    ``client_id`` alone, so anyone who saw the URL could otherwise end the person's grant."""
    if presented_redirect_uri != code_redirect_uri:
        return False
    return code_challenge is None or pkce_matches(verifier, code_challenge)


def sign_in_is_fresh(
    auth_time: datetime,
    now: datetime,
    request: AuthorizationRequest,
    signed_in_after: datetime | None = None,
) -> bool:
    """Whether the SSO session's sign-in may answer ``request``: not when the request says
    ``prompt=login``, nor when it was longer ago than ``max_age`` seconds, nor when it is older
    than ``signed_in_after``, a fresh sign-in an earlier request with the same binding asked
    for (``sign_in_demand``; OpenID Connect Core §3.1.2.1). The sign-in page that follows
    returns to the request without ``prompt=login`` and ``max_age`` (``after_sign_in``), so a
    fresh sign-in is asked for once; the stored demand, not that link, makes it required."""
    if "login" in request.prompt:
        return False
    if request.max_age is not None and (now - auth_time).total_seconds() > request.max_age:
        return False
    return signed_in_after is None or auth_time >= signed_in_after


def sign_in_demand(request: AuthorizationRequest, now: datetime) -> datetime | None:
    """The earliest sign-in that may answer ``request``, as a demand to store when the browser's
    sign-in is older (None: the request asks for no fresh sign-in): ``now`` for
    ``prompt=login``, ``now - max_age`` for ``max_age`` (the later of the two when both are
    given). OpenID Connect Core §3.1.2.1: the provider must re-authenticate, and a person who
    edits the request the sign-in page returns to must not escape that."""
    after: list[datetime] = []
    if "login" in request.prompt:
        after.append(now)
    if request.max_age is not None:
        after.append(now - timedelta(seconds=request.max_age))
    return max(after) if after else None


def sign_in_demand_key(request: AuthorizationRequest) -> str:
    """What a demand for a fresh sign-in is stored under: the SHA-256 of the request's client,
    redirect URI, ``state``, ``nonce`` and PKCE challenge. An edited request that keeps them
    finds the demand; one that changes them fails the client's own checks of the answer
    (``state``, RFC 6749 §10.12; ``nonce``, OpenID Connect Core §3.1.3.7; PKCE, RFC 7636).
    ``prompt``, ``max_age`` and ``scope`` are left out, so removing them escapes nothing."""
    parts = [request.client_id, request.redirect_uri, request.state, request.nonce, request.code_challenge]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def consent_needed(
    client: ClientView, remembered: Iterable[str] | None, request: AuthorizationRequest
) -> bool:
    """Whether the person must be asked: never for first-party clients (the family's own apps);
    for others when ``prompt=consent`` asks, or when the scopes requested are not all among
    those the person consented to for this client before (``remembered``)."""
    if client.first_party:
        return False
    if "consent" in request.prompt or remembered is None:
        return True
    return not set(request.scopes) <= set(remembered)


def stands_without_first_party(grant_scopes: Iterable[str], consented: Iterable[str] | None) -> bool:
    """Whether a grant made while its client was first-party (no consent asked) may stay once
    the client is third-party: only when the person consented to the client for every scope
    the grant holds (a consent given while it was third-party before). Else the person never
    agreed to share those scopes with a third party, so the grant ends (like Keycloak's consent
    at the next login, but for tokens already out too: an app that stops being one of the
    family's own is often in other hands, and an ``offline_access`` grant would keep its access
    to the account for as long as it refreshes)."""
    return consented is not None and set(grant_scopes) <= set(consented)


def refresh_allowed(client: ClientView, scopes: Iterable[str]) -> bool:
    """A refresh token comes with a grant when the client may use the refresh grant and either
    ``offline_access`` was granted or the client is first-party (issue 12)."""
    if GRANT_REFRESH_TOKEN not in client.grant_types:
        return False
    return OFFLINE_ACCESS in set(scopes) or client.first_party


TOKEN_LIMIT_ADDRESS = "oidc_token_ip"
TOKEN_LIMIT_CLIENT = "oidc_token_client"


def token_limit(client: ClientView, ip: str) -> tuple[str, str]:
    """The rate-limit rule and key a token request of an authenticated ``client`` counts
    against: a confidential client proved itself with its secret, so its requests count per
    client (``SPROUTGATE_LIMIT_OIDC_TOKEN_PER_CLIENT``; its backend's one address is its own,
    and no one else can spend its budget without that secret); a public client proves nothing
    (anyone may name it, RFC 6749 §2.1), so its requests count per address
    (``SPROUTGATE_LIMIT_OIDC_TOKEN_PER_IP``) like those whose client failed to authenticate."""
    if client.public:
        return TOKEN_LIMIT_ADDRESS, ip
    return TOKEN_LIMIT_CLIENT, client.client_id


def survives_sign_out(scopes: Iterable[str]) -> bool:
    """An ``offline_access`` grant lives on when the browser signs out (OpenID Connect Core
    §11: access "even when the End-User is not present"); every other grant ends with the
    sign-in it came from. Both end with "sign out everywhere", a password reset, disabling."""
    return OFFLINE_ACCESS in set(scopes)


def lasting_grant_needs_recent_sign_in(
    client: ClientView,
    requested: Iterable[str],
    held: Iterable[Iterable[str]],
    auth_time: datetime,
    now: datetime,
    recent_seconds: int,
    *,
    redirect_uri: str = "",
) -> bool:
    """Whether an authorization request asking for ``requested`` scopes must wait for a recent
    sign-in: it would give a grant that outlives the sign-out (``survives_sign_out``), the
    browser's sign-in (``auth_time``) is older than ``recent_seconds``
    (``SPROUTGATE_RECENT_AUTH_SECONDS``), and it adds access: always for a public client or a
    code sent to a loopback ``redirect_uri`` (``is_loopback_redirect``), for a confidential
    client's server otherwise unless a grant the person holds for it already outlives the
    sign-out with every scope asked for (``held``: the scopes of each of their active grants to it).

    Such a grant is a new way into the account (issue 11 item 2: re-authentication before
    adding one): its holder keeps access when the owner signs out. So the provider
    re-authenticates the person first, as for ``prompt=login`` (OpenID Connect Core §3.1.2.1).
    A confidential client's tokens stay on its server, which already holds that access, so a
    repeat grant (another device of the same app) hands nobody anything new; a public
    client's tokens land on whatever machine ran the request (a native app on a loopback port
    is anyone's, RFC 8252 §8.6), so a copy of the session cookie must not get them there; so
    does a confidential client's code sent to a loopback port (a desktop build carrying the
    secret, say), whatever the app's server holds. The
    request is its own binding: the same request after the sign-in passes, and an edit that
    drops ``offline_access`` gets a grant that ends with the sign-in."""
    wanted = set(requested)
    if not survives_sign_out(wanted):
        return False
    if (now - auth_time).total_seconds() <= recent_seconds:
        return False
    if client.public or is_loopback_redirect(redirect_uri):
        return True
    return not any(survives_sign_out(scopes) and wanted <= set(scopes) for scopes in map(set, held))


def after_sign_in(params: Mapping[str, str]) -> dict[str, str]:
    """The authorization request to come back to after the sign-in it asked for: without
    ``prompt=login`` and ``max_age``, which that sign-in has answered (else ``max_age=0`` would
    ask again forever); the ID token's ``auth_time`` tells the app when it was."""
    out = without_prompt(params, "login")
    out.pop("max_age", None)
    return out


def without_prompt(params: Mapping[str, str], value: str) -> dict[str, str]:
    """The authorization request's parameters with ``value`` taken out of ``prompt``: the
    request to come back to after the sign-in or consent that value asked for."""
    out = dict(params)
    rest = [p for p in parse_scope(out.pop("prompt", None)) if p != value]
    if rest:
        out["prompt"] = " ".join(rest)
    return out


# -- tokens -----------------------------------------------------------------------------------
def id_token_claims(
    *,
    issuer: str,
    client_id: str,
    user_claims: Mapping[str, Any],
    auth_time: datetime,
    sid: str | None,
    amr: Iterable[str] | None,
    nonce: str | None,
) -> dict[str, Any]:
    """An ID token's claims besides ``iat`` and ``exp`` (OpenID Connect Core §2): ``iss``,
    ``sub`` and the other claims of the granted scopes, ``aud`` = the client id, ``azp``,
    ``auth_time`` (unix seconds), ``sid`` (the SSO session, OpenID Connect Front/Back-Channel
    Logout), ``amr`` (RFC 8176) when known, ``nonce`` only when the request had one."""
    claims: dict[str, Any] = {
        **user_claims,
        "iss": issuer,
        "aud": client_id,
        "azp": client_id,
        "auth_time": int(auth_time.timestamp()),
    }
    if sid:
        claims["sid"] = sid
    if amr:
        claims["amr"] = list(amr)
    if nonce is not None:
        claims["nonce"] = nonce
    return claims


def access_token_claims(
    *,
    issuer: str,
    client_id: str,
    subject: str,
    grant_id: str | None,
    scopes: Iterable[str],
    jti: str,
) -> dict[str, Any]:
    """An RFC 9068 access token's claims besides ``iat`` and ``exp``: ``iss``, ``sub`` (the
    user, or the client for client credentials), ``aud`` = the client id (so the family's apps
    each accept only their own, and the SproutGate APIs, whose ``aud`` is ``sproutgate:api``,
    none), ``client_id``, ``scope``, ``jti``, and ``sid`` naming the grant's SproutGate session
    that every check looks up (none for client credentials, which have no user)."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": client_id,
        "client_id": client_id,
        "scope": scope_text(scopes),
        "jti": jti,
    }
    if grant_id is not None:
        claims["sid"] = grant_id
    return claims


# -- discovery --------------------------------------------------------------------------------
AUTHORIZATION_PATH = "/oauth2/authorize"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path
USERINFO_PATH = "/oauth2/userinfo"
REVOCATION_PATH = "/oauth2/revoke"
INTROSPECTION_PATH = "/oauth2/introspect"
END_SESSION_PATH = "/oauth2/logout"
JWKS_PATH = "/.well-known/jwks.json"
UI_LOCALES = ("zh-CN", "en")


def issuer_of(public_url: str) -> str:
    """The provider's issuer identifier (OpenID Connect Discovery §3), the ``iss`` of every
    token it issues (ID, access and logout tokens): ``SPROUTGATE_PUBLIC_URL`` without a
    trailing slash."""
    return public_url.rstrip("/")


def provider_metadata(issuer: str) -> dict[str, Any]:
    """The OpenID Provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2): what this
    provider supports, every endpoint under ``issuer``."""
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + AUTHORIZATION_PATH,
        "token_endpoint": issuer + TOKEN_PATH,
        "userinfo_endpoint": issuer + USERINFO_PATH,
        "revocation_endpoint": issuer + REVOCATION_PATH,
        "introspection_endpoint": issuer + INTROSPECTION_PATH,
        "end_session_endpoint": issuer + END_SESSION_PATH,
        "jwks_uri": issuer + JWKS_PATH,
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, GRANT_CLIENT_CREDENTIALS],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": [
            *CLAIMS_SUPPORTED,
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "amr",
            "azp",
        ],
        "ui_locales_supported": list(UI_LOCALES),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        # Back-Channel Logout 1.0 §2.1 (domain/backchannel): logout tokens always carry ``sid``.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }


def ui_language(ui_locales: Iterable[str], languages: Iterable[str]) -> str | None:
    """The first of ``ui_locales`` (BCP 47 tags, in preference order) that one of
    ``languages`` serves, matched by primary subtag (``zh-Hans`` -> ``zh-CN``); None if none."""
    offered = {lang.split("-")[0].lower(): lang for lang in languages}
    for tag in ui_locales:
        found = offered.get(tag.split("-")[0].lower())
        if found:
            return found
    return None
