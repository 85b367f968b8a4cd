"""Access tokens: ES256 JWTs with ``kid``; public keys published as a JWKS.

Several instances share one key directory. The signer re-reads it now and then and at once when
a token names a ``kid`` it does not know, so a key added by ``sproutgate keys rotate`` (or by
another instance) is accepted everywhere without a restart, and a removed key stops working.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

import jwt
from jwt.algorithms import ECAlgorithm

from sproutgate.infra.timesource import TimeSource

ALGORITHM = "ES256"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    session_id: str
    issued_at: int
    expires_at: int


class InvalidToken(Exception):
    """The token is malformed, badly signed, expired or from another issuer."""


class TokenSigner(Protocol):
    def issue(
        self, user_id: str, session_id: str, ttl_seconds: int, *, audience: str, token_type: str
    ) -> tuple[str, int]:
        """Sign a token for ``audience`` (the ``aud`` claim, RFC 7519 §4.1.3) of type
        ``token_type`` (the JOSE ``typ`` header, RFC 7515 §4.1.9); returns it with its expiry
        (unix seconds)."""
        ...

    def verify(self, token: str, *, audience: str, token_type: str) -> TokenClaims:
        """Check signature, algorithm, issuer, expiry, and that the token was issued for
        ``audience`` with type ``token_type``. Raises InvalidToken."""
        ...

    def sign_claims(self, claims: dict[str, Any], *, token_type: str, ttl_seconds: int) -> tuple[str, int]:
        """Sign ``claims`` as they are (the caller names ``iss``, ``aud``, ``sub`` ...), adding
        ``iat`` and ``exp`` (``ttl_seconds`` from now) and the JOSE ``typ`` header
        ``token_type``; the ID tokens and RFC 9068 access tokens of the OpenID Connect
        provider. Returns the token and its expiry (unix seconds)."""
        ...

    def verify_claims(
        self,
        token: str,
        *,
        issuer: str,
        token_type: str,
        audience: str | None = None,
        allow_expired: bool = False,
    ) -> dict[str, Any]:
        """The claims of a token ``sign_claims`` made: signature, algorithm, ``typ``,
        ``iss`` and, when given, ``aud`` checked, and ``exp`` unless ``allow_expired`` (an
        ``id_token_hint`` may have expired). Raises InvalidToken."""
        ...

    def jwks(self) -> dict[str, Any]: ...


class JwtSigner:
    """Signs with the newest key, verifies with all of them.

    ``clock`` gives ``iat`` and ``exp`` when signing and the time ``exp`` is checked against
    when verifying (the process's one clock, so a test that moves it moves token lifetimes too).
    ``reload`` (optional) returns the current keys, oldest first; it is called every
    ``refresh_seconds`` and, at most once a second, for a token signed with an unknown key."""

    def __init__(
        self,
        keys: list[tuple[str, Any]],
        issuer: str,
        *,
        clock: TimeSource,
        reload: Callable[[], list[tuple[str, Any]]] | None = None,
        refresh_seconds: float = 60.0,
    ) -> None:
        if not keys:
            raise ValueError("at least one signing key is required")
        self._issuer = issuer
        self._clock = clock
        self._reload = reload
        self._refresh_seconds = refresh_seconds
        self._loaded_at = time.monotonic()
        self._unknown_kid_at = float("-inf")
        self._use(keys)

    def _use(self, keys: list[tuple[str, Any]]) -> None:
        self._active_kid, self._active_key = keys[-1]
        self._public = {kid: key.public_key() for kid, key in keys}
        self._jwks = {"keys": [self._jwk(kid, pub) for kid, pub in self._public.items()]}

    def _refresh(self, unknown_kid: bool = False) -> None:
        if self._reload is None:
            return
        now = time.monotonic()
        if unknown_kid and now - self._unknown_kid_at >= 1.0:
            self._unknown_kid_at = now
        elif now - self._loaded_at < self._refresh_seconds:
            return
        self._loaded_at = now
        try:
            keys = self._reload()
        except Exception as exc:  # noqa: BLE001 - keep the keys we have
            log.warning("could not re-read signing keys: %s", exc)
            return
        if keys and [k for k, _ in keys] != list(self._public):
            log.info("signing keys changed: %s", ", ".join(k for k, _ in keys))
            self._use(keys)

    @staticmethod
    def _jwk(kid: str, public_key: Any) -> dict[str, Any]:
        jwk = json.loads(ECAlgorithm.to_jwk(public_key))
        jwk.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
        return jwk

    def issue(
        self, user_id: str, session_id: str, ttl_seconds: int, *, audience: str, token_type: str
    ) -> tuple[str, int]:
        self._refresh()
        now = int(self._clock.now().timestamp())
        exp = now + ttl_seconds
        claims = {
            "iss": self._issuer,
            "aud": audience,
            "sub": user_id,
            "sid": session_id,
            "iat": now,
            "exp": exp,
        }
        headers = {"kid": self._active_kid, "typ": token_type}
        token = jwt.encode(claims, self._active_key, algorithm=ALGORITHM, headers=headers)
        return token, exp

    def sign_claims(self, claims: dict[str, Any], *, token_type: str, ttl_seconds: int) -> tuple[str, int]:
        self._refresh()
        now = int(self._clock.now().timestamp())
        exp = now + ttl_seconds
        headers = {"kid": self._active_kid, "typ": token_type}
        body = {**claims, "iat": now, "exp": exp}
        return jwt.encode(body, self._active_key, algorithm=ALGORITHM, headers=headers), exp

    def _public_key_for(self, token: str, token_type: str) -> Any:
        """The public key a token names, once its ``typ`` is the one expected: a token of
        another kind (the pages' cookie as a bearer token, say) is refused before its signature
        is even checked."""
        header = jwt.get_unverified_header(token)
        kid = header.get("kid", "")
        if not isinstance(kid, str):
            raise InvalidToken("bad key id")
        if header.get("typ") != token_type:
            raise InvalidToken("wrong token type")
        self._refresh(unknown_kid=kid not in self._public)
        public = self._public.get(kid)
        if public is None:
            raise InvalidToken("unknown key")
        return public

    def verify_claims(
        self,
        token: str,
        *,
        issuer: str,
        token_type: str,
        audience: str | None = None,
        allow_expired: bool = False,
    ) -> dict[str, Any]:
        try:
            public = self._public_key_for(token, token_type)
            claims: dict[str, Any] = jwt.decode(
                token,
                public,
                algorithms=[ALGORITHM],
                issuer=issuer,
                audience=audience,
                options={
                    "require": ["exp", "iss", "sub"],
                    "verify_aud": audience is not None,
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        exp, iat = claims.get("exp"), claims.get("iat", 0)
        if not isinstance(claims.get("sub"), str) or not _is_number(exp) or not _is_number(iat):
            raise InvalidToken("bad claims")
        now = self._clock.now().timestamp()
        if exp <= now and not allow_expired:
            raise InvalidToken("Signature has expired")
        if iat > now:
            raise InvalidToken("The token is not yet valid (iat)")
        return claims

    def verify(self, token: str, *, audience: str, token_type: str) -> TokenClaims:
        try:
            public = self._public_key_for(token, token_type)
            claims = jwt.decode(
                token,
                public,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=audience,
                # Times are checked below against our clock, not PyJWT's reading of the system's.
                options={
                    "require": ["exp", "iss", "aud", "sub", "sid"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        sub, sid, exp, iat = claims.get("sub"), claims.get("sid"), claims.get("exp"), claims.get("iat", 0)
        if not isinstance(sub, str) or not isinstance(sid, str):
            raise InvalidToken("bad claims")
        if "client_id" in claims:
            # An OpenID Connect access token (RFC 9068) is an app's, never a SproutGate session
            # token, whatever its audience.
            raise InvalidToken("an app's access token")
        if not _is_number(exp) or not _is_number(iat):
            raise InvalidToken("bad time claims")
        now = self._clock.now().timestamp()
        # PyJWT's rules, with no leeway: expired from the second ``exp`` names; not valid
        # before ``iat``.
        if exp <= now:
            raise InvalidToken("Signature has expired")
        if iat > now:
            raise InvalidToken("The token is not yet valid (iat)")
        return TokenClaims(sub, sid, int(iat), int(exp))

    def jwks(self) -> dict[str, Any]:
        self._refresh()
        return self._jwks


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
