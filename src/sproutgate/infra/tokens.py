"""Access tokens: ES256 JWTs with ``kid``; public keys published as a JWKS."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from jwt.algorithms import ECAlgorithm

ALGORITHM = "ES256"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    session_id: str
    issued_at: int
    expires_at: int


class InvalidToken(Exception):
    """The token is malformed, badly signed, expired or from another issuer."""


class TokenSigner(Protocol):
    def issue(self, user_id: str, session_id: str, ttl_seconds: int) -> tuple[str, int]:
        """Sign a token; returns it with its expiry (unix seconds)."""
        ...

    def verify(self, token: str) -> TokenClaims:
        """Check signature, algorithm, issuer and expiry. Raises InvalidToken."""
        ...

    def jwks(self) -> dict[str, Any]: ...


class JwtSigner:
    def __init__(self, keys: list[tuple[str, Any]], issuer: str) -> None:
        if not keys:
            raise ValueError("at least one signing key is required")
        self._issuer = issuer
        self._active_kid, self._active_key = keys[-1]
        self._public = {kid: key.public_key() for kid, key in keys}
        self._jwks = {"keys": [self._jwk(kid, pub) for kid, pub in self._public.items()]}

    @staticmethod
    def _jwk(kid: str, public_key: Any) -> dict[str, Any]:
        jwk = json.loads(ECAlgorithm.to_jwk(public_key))
        jwk.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
        return jwk

    def issue(self, user_id: str, session_id: str, ttl_seconds: int) -> tuple[str, int]:
        now = int(time.time())
        exp = now + ttl_seconds
        claims = {"iss": self._issuer, "sub": user_id, "sid": session_id, "iat": now, "exp": exp}
        token = jwt.encode(claims, self._active_key, algorithm=ALGORITHM, headers={"kid": self._active_kid})
        return token, exp

    def verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
            public = self._public.get(header.get("kid", ""))
            if public is None:
                raise InvalidToken("unknown key")
            claims = jwt.decode(
                token,
                public,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={"require": ["exp", "iss", "sub", "sid"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        sub, sid = claims.get("sub"), claims.get("sid")
        if not isinstance(sub, str) or not isinstance(sid, str):
            raise InvalidToken("bad claims")
        return TokenClaims(sub, sid, int(claims.get("iat", 0)), int(claims["exp"]))

    def jwks(self) -> dict[str, Any]:
        return self._jwks
